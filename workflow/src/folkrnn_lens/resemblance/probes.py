"""Invariance probes: a transcription with its mode or one token changed, read by
the model next to the original, and the two set against each other layer by layer.

A probe (config ``probes.<name>``) names the transcription it changes (``of``)
and one change:

- ``mode: min`` (or maj, dor, mix): the tune's ``K:`` token, the second token of
  ``tokens.txt``, becomes ``K:Cmin``. Tunes are transposed to C, so the letters keep
  their scale degrees; explicit accidentals stay as they are.
- ``replace: {step: s, token: T}``: the input token of step s becomes T. Step 0
  reads ``<s>``, so step s reads the s-th token after it: step 1 the meter, step 2
  the mode, step 3 the first body token (``tokens[s - 1]`` of the list
  [meter, mode, *body]).

Both tunes are read in one batch, so every step before the change has exactly the
same activations in both (a test checks the distance there is 0). Per layer and
quantity (``quantities``, default h), with G and G' the Gramians of the original and
the probe (the kind of ``resemblance.gramian``):

- ``relative_frobenius`` ||G' - G||_F / ||G||_F and ``max_abs_difference`` max |G' - G|;
- ``cka`` linear CKA(G, G') and ``pearson`` of their off-diagonal entries;
- per step, ``distance`` ||q'_t - q_t|| (L2 over the units): how far the change
  propagates forwards in time and up the layers.

Both reads are also kept as the usual steps and activations tables (the probe's
quantities, every layer) in ``original/`` and ``probed/``: the probe's explorer
computes G' - G from them, and pairs of steps before the change are exactly 0 there
because both come from the one batch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from folkrnn_lens.matrices.maths import magnitude_gramian, signed_gramian
from folkrnn_lens.names import QUANTITIES
from folkrnn_lens.parquet import write_parquet
from folkrnn_lens.resemblance.statistics import linear_cka, statistic
from folkrnn_lens.resemblance.statistics import norm as frobenius
from folkrnn_lens.tokens.format import (
    END,
    MODES,
    START,
    TokenFormatError,
    Transcription,
    parse_transcription,
    read_token_file,
)

log = logging.getLogger(__name__)

METADATA_KEY = b"folkrnn_lens.probe"
PROBE_MODES = tuple(mode.removeprefix("K:C") for mode in MODES)  # maj, min, dor, mix


class ProbeError(ValueError):
    """A probe that cannot be made; the message names the probe."""


@dataclass(frozen=True)
class Probe:
    """One probe of config's ``probes`` section."""

    name: str
    of: str
    mode: str | None = None
    step: int | None = None  # replace: the step whose input token changes
    token: str | None = None  # replace: its new token
    quantities: tuple[str, ...] = ("h",)

    @classmethod
    def from_config(cls, name: str, spec: dict) -> Probe:
        replace = spec.get("replace") or {}
        if ("mode" in spec) == bool(replace):
            raise ProbeError(f"probe {name!r}: give exactly one of `mode` and `replace`, got {sorted(spec)}")
        if "mode" in spec and spec["mode"] not in PROBE_MODES:
            raise ProbeError(f"probe {name!r}: mode {spec['mode']!r} is not one of {PROBE_MODES}")
        quantities = tuple(spec.get("quantities") or ("h",))
        for quantity in quantities:
            if quantity not in QUANTITIES:
                raise ProbeError(
                    f"probe {name!r}: unknown quantity {quantity!r}; expected some of {QUANTITIES}"
                )
        return cls(
            name=name,
            of=spec["of"],
            mode=spec.get("mode"),
            step=replace.get("step"),
            token=replace.get("token"),
            quantities=tuple(q for q in QUANTITIES if q in quantities),
        )

    @property
    def description(self) -> str:
        if self.mode is not None:
            return f"{self.of} in K:C{self.mode}"
        return f"{self.of} with step {self.step} reading {self.token!r}"


def probed_tokens(tokens: list[str], probe: Probe) -> list[str]:
    """The tokens after <s> ([meter, mode, *body]) with the probe's change made.

    The result must still be a tune in the folk-rnn format (a meter at step 1, a
    mode at step 2, neither in the body); otherwise a ProbeError names the probe."""
    tokens = list(tokens)
    if probe.mode is not None:
        if len(tokens) < 2 or not tokens[1].startswith("K:"):
            raise ProbeError(f"probe {probe.name!r}: {probe.of!r} has no K: token at step 2 to change")
        step, token = 2, f"K:C{probe.mode}"
    else:
        step, token = probe.step, probe.token
        if not 1 <= step <= len(tokens):
            raise ProbeError(
                f"probe {probe.name!r}: replace.step {step} is not a step of {probe.of!r}, whose steps "
                f"1..{len(tokens)} read its tokens (step 0 reads <s>)"
            )
    if tokens[step - 1] == token:
        log.warning("probe %s: step %d already reads %r; the probe is the original", probe.name, step, token)
    tokens[step - 1] = token
    try:
        parse_transcription([tokens[0], tokens[1], " ".join(tokens[2:])], f"probe {probe.name!r}", 1)
    except TokenFormatError as error:
        raise ProbeError(
            f"probe {probe.name!r}: step {step} reading {token!r} does not make a tune ({error})"
        ) from None
    if START in tokens or END in tokens:
        raise ProbeError(f"probe {probe.name!r}: {START} and {END} cannot be read inside a tune")
    return tokens


def changed_steps(original: list[str], probed: list[str]) -> list[int]:
    """The steps (step 0 reads <s>) whose input token differs."""
    return [k + 1 for k, (a, b) in enumerate(zip(original, probed)) if a != b]


def check_vocabulary(probe: Probe, original: list[str], probed: list[str], vocab: list[str]) -> None:
    """A clear error naming the probe, the token and its step where the model cannot read it."""
    known = set(vocab)
    for step in changed_steps(original, probed):
        token = probed[step - 1]
        if token not in known:
            raise ProbeError(
                f"probe {probe.name!r}: token {token!r} (step {step}) is not in the model's vocabulary "
                f"of {len(vocab)} tokens"
            )


# ---- comparing the two reads ---------------------------------------------------------


def gramian_of(values: np.ndarray, gramian: str) -> np.ndarray:
    return (magnitude_gramian if gramian == "abs" else signed_gramian)(values)


def compare_gramians(G: np.ndarray, G_probe: np.ndarray) -> dict[str, float]:
    """How far the probe's Gramian G' is from the original's G."""
    G, G_probe = np.asarray(G, np.float64), np.asarray(G_probe, np.float64)
    difference = G_probe - G
    norm = frobenius(G)
    return {
        "relative_frobenius": frobenius(difference) / norm if norm > 0 else float("nan"),
        "max_abs_difference": float(np.abs(difference).max()) if difference.size else 0.0,
        "cka": linear_cka(G, G_probe),
        "pearson": statistic("pearson", G, G_probe),
    }


@dataclass
class ProbeResult:
    """The tables and matrices of one probe."""

    table: pd.DataFrame  # one row per (layer, quantity)
    steps: pd.DataFrame  # one row per (layer, quantity, step)
    differences: dict[tuple[int, str], np.ndarray]  # G' - G, float32
    tokens: list[str]  # the probed tune's input tokens, <s> first
    changed: list[int]
    reads: tuple = ()  # the captures (original, probed), read in one batch


def compare_captures(probe: Probe, original, probed, gramian: str) -> ProbeResult:
    """Tables of the probe from the two captures (``model.read([original, probed])``)."""
    n_layers, n = len(original.layers), len(original.input_tokens)
    changed = [t for t in range(n) if original.input_tokens[t] != probed.input_tokens[t]]
    rows, step_frames, differences = [], [], {}
    for layer in range(1, n_layers + 1):
        for quantity in probe.quantities:
            q, q_probe = original.quantity(layer, quantity), probed.quantity(layer, quantity)
            G, G_probe = gramian_of(q, gramian), gramian_of(q_probe, gramian)
            differences[layer, quantity] = (G_probe.astype(np.float64) - G).astype(np.float32)
            distance = np.linalg.norm(q_probe.astype(np.float64) - q, axis=1)
            moved = np.flatnonzero(distance > 0)
            rows.append(
                {
                    "probe": probe.name,
                    "of": probe.of,
                    "layer": layer,
                    "quantity": quantity,
                    "gramian": gramian,
                    "n_steps": n,
                    "first_changed_step": changed[0] if changed else None,
                    "first_moved_step": int(moved[0]) if moved.size else None,
                    **compare_gramians(G, G_probe),
                    "max_distance": float(distance.max()),
                    "mean_distance": float(distance.mean()),
                }
            )
            step_frames.append(
                pd.DataFrame(
                    {
                        "probe": probe.name,
                        "step": np.arange(n, dtype=np.int32),
                        "input_token": original.input_tokens,
                        "probed_token": probed.input_tokens,
                        "layer": np.int8(layer),
                        "quantity": quantity,
                        "distance": distance,
                        "norm": np.linalg.norm(q.astype(np.float64), axis=1),
                    }
                )
            )
    table = pa.Table.from_pylist(rows, schema=PROBE_SCHEMA).to_pandas()
    return ProbeResult(
        table,
        pd.concat(step_frames, ignore_index=True),
        differences,
        probed.input_tokens,
        changed,
        (original, probed),
    )


PROBE_SCHEMA = pa.schema(
    [
        ("probe", pa.string()),
        ("of", pa.string()),
        ("layer", pa.int8()),
        ("quantity", pa.string()),
        ("gramian", pa.string()),
        ("n_steps", pa.int32()),
        ("first_changed_step", pa.int32()),  # the first step whose input token differs (null: none)
        ("first_moved_step", pa.int32()),  # the first step whose activation differs (null: none)
        ("relative_frobenius", pa.float64()),  # ||G' - G||_F / ||G||_F
        ("max_abs_difference", pa.float64()),  # max |G' - G|
        ("cka", pa.float64()),  # linear CKA(G, G')
        ("pearson", pa.float64()),  # of the off-diagonal entries
        ("max_distance", pa.float64()),  # max over steps of ||q'_t - q_t||
        ("mean_distance", pa.float64()),
    ]
)


# ---- the rule's job ----------------------------------------------------------------------


def read_one_tune(path: str | Path, probe: Probe) -> list[str]:
    try:
        tunes = read_token_file(path)
    except TokenFormatError as error:
        raise ProbeError(f"probe {probe.name!r}: {probe.of!r} is not a tune ({error})") from None
    if len(tunes) != 1:
        raise ProbeError(f"probe {probe.name!r}: {path} holds {len(tunes)} tunes, expected one")
    return tunes[0].tokens


def run_probe(model, tokens: list[str], probe: Probe, gramian: str) -> ProbeResult:
    """Read the original and the probe in one batch and compare them."""
    probed = probed_tokens(tokens, probe)
    check_vocabulary(probe, tokens, probed, model.vocab)
    original_capture, probed_capture = model.read([tokens, probed])
    return compare_captures(probe, original_capture, probed_capture, gramian)


READS = ("original", "probed")
"""The probe's two reads, each a folder of steps.parquet and activations.parquet."""


def write_reads(
    result: ProbeResult, probe: Probe, model, model_path: str | Path, out_dir: str | Path
) -> None:
    """Both reads as steps and activations tables (the probe's quantities only)."""
    from folkrnn_lens.activations.record import capture_provenance
    from folkrnn_lens.activations.tables import write_capture

    for label, capture in zip(READS, result.reads):
        folder = Path(out_dir) / label
        provenance = capture_provenance(model, model_path, "read", f"{probe.name}: {label}")
        quantities = list(probe.quantities)
        write_capture(
            capture, provenance, folder / "steps.parquet", folder / "activations.parquet", None, quantities
        )


def read_probe_metadata(path: str | Path) -> dict:
    return json.loads((pq.read_schema(path).metadata or {})[METADATA_KEY])


def probe_tune(
    name: str,
    spec: dict,
    model_path: str | Path,
    tokens_path: str | Path,
    out_tokens: str | Path,
    out_table: str | Path,
    out_steps: str | Path,
    out_figure: str | Path,
    colours: dict,
    gramian: str,
    dpi: int,
    device: str = "cpu",
    threads: int = 1,
    reads_dir: str | Path | None = None,
) -> ProbeResult:
    """The rule ``probe_tune``: the probed tune, its tables and its difference figure
    (``colours``: config's ``analysis.colours``), and both reads in ``reads_dir``."""

    from folkrnn_lens.model.checkpoint import load_model_on
    from folkrnn_lens.resemblance.figures import draw_probe

    probe = Probe.from_config(name, spec)
    tokens = read_one_tune(tokens_path, probe)
    model = load_model_on(model_path, device, threads)
    result = run_probe(model, tokens, probe, gramian)
    probed = result.tokens[1:]
    Path(out_tokens).parent.mkdir(parents=True, exist_ok=True)
    Path(out_tokens).write_text(
        Transcription(probed[0], probed[1], tuple(probed[2:])).to_text(), encoding="utf-8"
    )
    metadata = {"probe": asdict(probe), "description": probe.description, "model_file": str(model_path)}
    facts = {METADATA_KEY: json.dumps(metadata).encode()}
    write_parquet(result.table, out_table, facts, PROBE_SCHEMA)
    write_parquet(result.steps, out_steps, facts)
    draw_probe(result, probe, out_figure, colours, dpi=dpi)
    if reads_dir is not None:
        write_reads(result, probe, model, model_path, reads_dir)
    log.info(
        "probe %s (%s): steps %s changed; %s",
        name,
        probe.description,
        result.changed,
        ", ".join(
            f"L{row.layer}.{row.quantity} rel. Frobenius {row.relative_frobenius:.3g}"
            for row in result.table.itertuples()
        ),
    )
    return result
