"""Shared fixtures: small folk-rnn models and the reference excerpt."""

import os

# One BLAS thread per test process (before numpy loads): `pytest -n 2` runs two
# processes on two cores, and more threads than cores only wait on each other.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest
import torch

from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig
from folkrnn_lens.tokens.format import read_token_file

ROOT = Path(__file__).resolve().parent.parent
EXCERPT = ROOT / "resources" / "data_v2_excerpt.txt"


def excerpt_vocab() -> list[str]:
    tokens = sorted({token for tune in read_token_file(EXCERPT) for token in tune.tokens})
    return ["<s>", "</s>", *tokens]


def small_model(n_units: int = 32, n_layers: int = 3, seed: int = 0, scale: float = 0.3) -> FolkRNN:
    """A model of the v2 architecture over the excerpt's vocabulary, with random
    weights (initial states too, so they are tested) in a non-chaotic range."""
    vocab = excerpt_vocab()
    model = FolkRNN(FolkRNNConfig(vocab_size=len(vocab), n_layers=n_layers, n_units=n_units), vocab)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * scale / n_units**0.5 * 4)
    return model.eval()


@pytest.fixture(scope="session")
def excerpt():
    return read_token_file(EXCERPT)


@pytest.fixture
def model():
    return small_model()


def make_probe(folder: Path, model: FolkRNN, tokens: list[str], spec: dict, gramian: str = "abs"):
    """A probe of a one-tune token file through the rule's job (tables, figure, both
    reads) and its explorer, in ``folder``; returns the ProbeResult."""
    from folkrnn_lens.config import resolve_section
    from folkrnn_lens.explorer.build import build_probe_explorer
    from folkrnn_lens.figures.style import Style
    from folkrnn_lens.model.checkpoint import save_checkpoint
    from folkrnn_lens.resemblance.probes import probe_tune
    from folkrnn_lens.tokens.format import Transcription

    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, folder / "model.safetensors")
    source = folder / "original.txt"
    source.write_text(Transcription(tokens[0], tokens[1], tuple(tokens[2:])).to_text())
    files = [folder / name for name in ("tokens.txt", "probe.parquet", "steps.parquet", "difference.png")]
    result = probe_tune(
        "probe", spec, folder / "model.safetensors", source, *files,
        colours=resolve_section("analysis")["colours"], gramian=gramian, dpi=40, reads_dir=folder,
    )  # fmt: skip
    build_probe_explorer(
        "probe", spec["of"], folder / "probed" / "steps.parquet", folder / "probed" / "activations.parquet",
        folder / "original" / "activations.parquet", folder / "probe.parquet", gramian,
        Style.from_config({}), folder / "explorer.html", folder / "explorer",
    )  # fmt: skip
    return result


def write_explorer_files(folder: Path, plan, out: Path, **kwargs) -> dict:
    """The explorer's data of the transcription "tiny" whose tables are in ``folder``."""
    from folkrnn_lens.explorer.data import write_explorer_data
    from folkrnn_lens.figures.style import Style

    tables = [folder / f for f in ("steps.parquet", "activations.parquet", "summary.parquet", "matrices.npz")]
    return write_explorer_data("tiny", *tables, plan, Style.from_config({}), out, **kwargs)
