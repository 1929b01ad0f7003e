"""The activations stage: read or generate a transcription and write its tables.

These are the functions the Snakemake rules call; each takes plain paths and
values, so tests and notebooks call them the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

from folkrnn_lens.activations.tables import Provenance, write_capture
from folkrnn_lens.model.checkpoint import file_sha256, load_model_on
from folkrnn_lens.model.folkrnn import FolkRNN
from folkrnn_lens.tokens.format import END, START, Transcription, read_token_file

log = logging.getLogger(__name__)


def capture_provenance(
    model: FolkRNN, model_path, mode: str, name: str, source_path=None, **generation
) -> Provenance:
    """What the tables of a capture say produced them."""
    return Provenance(
        model_file=str(model_path),
        model_sha256=file_sha256(model_path),
        vocab=model.vocab,
        mode=mode,
        transcription=name,
        source_file=None if source_path is None else str(source_path),
        source_sha256=None if source_path is None else file_sha256(source_path),
        **generation,
    )


def read_activations(
    model_path: str | Path,
    tokens_path: str | Path,
    steps_path: str | Path,
    activations_path: str | Path,
    layers: list[int] | None = None,
    quantities: list[str] | None = None,
    name: str = "",
    device: str = "cpu",
    threads: int = 1,
    source_path: str | Path | None = None,
) -> None:
    """Teacher-force the single tune of a token file through the model; the provenance
    names ``source_path`` (the ABC or token file the tune came from) and its SHA-256."""
    model = load_model_on(model_path, device, threads)
    tunes = read_token_file(tokens_path)
    if len(tunes) != 1:
        raise ValueError(f"{tokens_path}: expected one tune, found {len(tunes)}")
    try:
        capture = model.read([tunes[0].tokens])[0]
    except ValueError as error:
        raise ValueError(f"transcription {name!r} ({tokens_path}): {error}") from error
    provenance = capture_provenance(model, model_path, "read", name, source_path)
    write_capture(capture, provenance, steps_path, activations_path, layers, quantities)
    log.info("%s: read %d steps", name, len(capture.input_tokens))


def generate_activations(
    model_path: str | Path,
    tokens_path: str | Path,
    steps_path: str | Path,
    activations_path: str | Path,
    seed: int,
    temperature: float,
    prime: list[str],
    max_length: int,
    layers: list[int] | None = None,
    quantities: list[str] | None = None,
    name: str = "",
    device: str = "cpu",
    threads: int = 1,
) -> None:
    """Generate a tune from a seed, recording every step, and write its tokens."""
    model = load_model_on(model_path, device, threads)
    prime = list(prime)
    capture = model.generate([seed], temperature, prime, max_length)[0]
    provenance = capture_provenance(
        model, model_path, "generate", name, seed=seed, temperature=temperature, prime=prime
    )
    write_capture(capture, provenance, steps_path, activations_path, layers, quantities)
    write_generated_tokens(tokens_path, capture.input_tokens[1:], capture.output_tokens[-1] == END)
    log.info("%s: generated %d steps", name, len(capture.input_tokens))


def write_generated_tokens(path: str | Path, tokens: list[str], finished: bool) -> None:
    """In the data_v2 format where the tokens make a tune (meter, mode, body); otherwise,
    as an untrained model may write, the raw tokens on one line, with a warning."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    body = tokens[2:]
    valid = (
        len(tokens) >= 2
        and tokens[0].startswith("M:")
        and tokens[1].startswith("K:")
        and not any(t.startswith(("M:", "K:")) or t in (START, END) for t in body)
    )
    if valid:
        text = Transcription(tokens[0], tokens[1], tuple(body)).to_text()
    else:
        log.warning("%s: the generated tokens are not a tune (meter, mode, body); writing them raw", path)
        text = " ".join(tokens) + "\n"
    if not finished:
        log.warning("%s: generation stopped at max_length before </s>", path)
    Path(path).write_text(text, encoding="utf-8")
