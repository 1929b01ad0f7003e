"""The data of one transcription's explorer page, as JavaScript files beside the page.

A page opened from the file system cannot fetch files (``file://`` has no origin
to share), but it can load ``<script>`` files: each data file calls the page's
``FOLKRNN_EXPLORER`` object with its content. The page loads ``meta.js`` at once and
each array when a view first needs it, so opening the page costs the steps' table
only, and the files grow linearly with the tune's steps: the page computes every
n x n matrix from the activations (n x units) rather than storing n^2 values per
matrix.

``explorer/meta.js``: ``FOLKRNN_EXPLORER.meta({...})`` with

- ``name``, ``n_steps``, ``steps`` (the step numbers, a window's), ``window``;
- per step: ``tokens`` (input token), ``next_tokens`` (the token that came next),
  ``bars`` (bar index), ``bar_lines`` (whether the input token is a bar line),
  ``surprisal`` and ``entropy`` (nats), ``top`` (the model's five likeliest next
  tokens, ``[token, probability]``);
- ``layers``, ``quantities``, ``units`` (per layer), ``arrays`` (the data file of
  each array: ``"L2.h"`` and ``"softmax"``);
- ``matrices``: each planned matrix's ``name``, ``kind``, ``layer``, ``quantity``,
  ``quantity_b``, ``description`` and its band ``counts`` from ``summary.parquet``;
- ``animations`` (name, title, frames of matrix names), ``bands``, ``colours``;
- ``score``: whether ``score.js`` exists, and ``score_bars``: ``[bar, x, y]`` of each
  bar number abcm2ps drew, to mark a bar on the score;
- a probe's page only: ``reference`` (``of``, the original transcription;
  ``description``, the change; ``changed``, the steps whose input differs;
  ``gramian``), the original's arrays (``"original:L2.h"``) and one matrix of kind
  ``difference`` per layer and quantity (``L2.h.abs.diff``: G' - G, with ``gramian``,
  the probed tune's Gramian it starts from, and ``comparison``, the numbers of
  ``probe.parquet``: ``relative_frobenius``, ``max_abs_difference`` (the colour
  scale), ``cka`` and ``pearson``).

``explorer/data/<array>.js``: ``FOLKRNN_EXPLORER.array(name, rows, cols, base64)``,
the array's float32 values, little-endian, row by row (one row per step).
``explorer/score.js``: ``FOLKRNN_EXPLORER.score(svg_text)``.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from folkrnn_lens.activations.tables import load_activations, load_steps, read_provenance
from folkrnn_lens.figures.score import bar_number_positions
from folkrnn_lens.figures.style import Style
from folkrnn_lens.matrices.plan import Plan
from folkrnn_lens.names import ORIGINAL, QUANTITIES, array_name, difference_name, gramian_name
from folkrnn_lens.tokens.format import is_bar

log = logging.getLogger(__name__)

TOP_PREDICTIONS = 5
"""The likeliest next tokens the step view lists."""


class ExplorerError(ValueError):
    """Input the explorer cannot show; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Reference:
    """What a probe's page sets the probed tune against: the original tune's arrays,
    read in the same batch, from which the page computes G' - G."""

    of: str  # the original transcription
    description: str  # the probe's change, in words
    activations_path: Path
    gramian: str  # "abs" or "signed": the Gramians set against each other
    changed: list[int]  # the steps whose input token differs
    comparisons: dict[str, dict]  # per array name ("L2.h"): probe.parquet's numbers


def array_script(name: str, values: np.ndarray) -> str:
    """The data file of one (rows, cols) array."""
    values = np.ascontiguousarray(values, dtype="<f4")
    encoded = base64.b64encode(values.tobytes()).decode("ascii")
    rows, cols = values.shape
    return f'FOLKRNN_EXPLORER.array({json.dumps(name)}, {rows}, {cols}, "{encoded}");\n'


def top_predictions(softmax: np.ndarray, vocab: list[str], count: int = TOP_PREDICTIONS) -> list[list]:
    """Per step, the ``count`` likeliest next tokens and their probabilities."""
    order = np.argsort(-softmax, axis=1, kind="stable")[:, :count]
    return [[[vocab[k], round(float(row[k]), 6)] for k in ks] for row, ks in zip(softmax, order)]


def band_counts(summary_path: str | Path) -> dict[str, dict]:
    """Each matrix's band counts from the summary table, by name."""
    table = pd.read_parquet(summary_path)
    columns = ["pairs", "n_pairs", "n_low", "n_high", "n_opposite", "low_threshold", "high_threshold"]
    return {
        row["matrix"]: {key: (None if pd.isna(row[key]) else _plain(row[key])) for key in columns}
        for _, row in table.iterrows()
    }


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def check_matrices(npz_path: str | Path, plan: Plan, n_steps: int) -> None:
    """Every planned matrix is in ``matrices.npz``, of the tune's steps: else an
    ExplorerError naming the file and what is missing."""
    with np.load(npz_path) as npz:
        missing = [name for name in plan.names if name not in npz.files]
        if missing:
            raise ExplorerError(
                f"{npz_path}: no matrix {missing[0]!r} (of {len(missing)} missing: {missing})"
            )
        shape = npz[plan.names[0]].shape if plan.names else (n_steps, n_steps)
    if shape != (n_steps, n_steps):
        raise ExplorerError(f"{npz_path}: matrices of {shape[0]} steps, but the steps table has {n_steps}")


def write_explorer_data(
    name: str,
    steps_path: str | Path,
    activations_path: str | Path,
    summary_path: str | Path | None,
    npz_path: str | Path | None,
    plan: Plan,
    style: Style,
    out_dir: str | Path,
    score_path: str | Path | None = None,
    window: tuple[int, int] | None = None,
    reference: Reference | None = None,
) -> dict:
    """The explorer's data files of one transcription in ``out_dir``; returns the meta.
    Without ``npz_path`` nothing is checked against matrices.npz, and without
    ``summary_path`` the page shows no band counts (a probe's tune has neither)."""
    tokens, bars, softmax = load_steps(steps_path, True, window)
    n_steps = len(tokens)
    if n_steps < 2:
        raise ExplorerError(f"{steps_path}: {name} has {n_steps} step; the explorer needs two to pair")
    if npz_path is not None:
        check_matrices(npz_path, plan, n_steps)
    steps = pd.read_parquet(steps_path, columns=["step", "output_token", "surprisal_nats", "entropy_nats"])
    if window is not None:
        steps = steps.iloc[window[0] : window[1]]
    vocab = read_provenance(steps_path)["vocab"]

    out_dir = Path(out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    pairs = sorted({(s.layer, q) for s in plan.matrices if s.layer for q in (s.quantity, s.quantity_b) if q})
    arrays = {"softmax": "data/softmax.js"}
    (out_dir / "data" / "softmax.js").write_text(array_script("softmax", softmax), encoding="ascii")
    units = {}
    for (layer, quantity), values in load_activations(activations_path, set(pairs), window).items():
        key = array_name(layer, quantity)
        arrays[key] = f"data/{key}.js"
        units[str(layer)] = int(values.shape[1])  # JSON keys are strings
        (out_dir / arrays[key]).write_text(array_script(key, values), encoding="ascii")
    if reference is not None:
        arrays |= write_original_arrays(reference, pairs, n_steps, out_dir)

    score_bars = []
    if score_path is not None and Path(score_path).is_file():
        svg = Path(score_path).read_text(encoding="utf-8")
        score_bars = [list(position) for position in bar_number_positions(svg)]
        (out_dir / "score.js").write_text(f"FOLKRNN_EXPLORER.score({json.dumps(svg)});\n", encoding="utf-8")

    counts = band_counts(summary_path) if summary_path is not None else {}
    meta = {
        "name": name,
        "n_steps": n_steps,
        "steps": steps["step"].astype(int).tolist(),
        "window": list(window) if window else None,
        "tokens": tokens,
        "next_tokens": steps["output_token"].tolist(),
        "bars": bars.astype(int).tolist(),
        "bar_lines": [is_bar(token) for token in tokens],
        "surprisal": [round(float(v), 6) for v in steps["surprisal_nats"]],
        "entropy": [round(float(v), 6) for v in steps["entropy_nats"]],
        "top": top_predictions(softmax, vocab),
        "layers": sorted({layer for layer, _ in pairs}),
        "quantities": [q for q in QUANTITIES if any(q == held for _, held in pairs)],
        "units": units,
        "arrays": arrays,
        "matrices": [
            {
                "name": spec.name,
                "kind": spec.kind,
                "layer": spec.layer,
                "quantity": spec.quantity,
                "quantity_b": spec.quantity_b,
                "description": spec.description,
                "counts": counts.get(spec.name),
            }
            for spec in plan.matrices
        ],
        "animations": [
            {"name": a.name, "title": a.title, "frames": [list(frame) for frame in a.frames]}
            for a in plan.animations
        ],
        # the animations' timing (analysis.animation), so the page plays as the GIFs do
        "frame_seconds": style.frame_seconds,
        "pause_seconds": style.pause_seconds,
        "bands": style.bands,
        "colours": style.colours,
        "score": bool(score_bars) or (out_dir / "score.js").is_file(),
        "score_bars": score_bars,
    }
    if reference is not None:
        add_differences(meta, reference, pairs)
    (out_dir / "meta.js").write_text(f"FOLKRNN_EXPLORER.meta({json.dumps(meta)});\n", encoding="utf-8")
    log.info("%s: explorer data of %d steps, %d arrays in %s", name, n_steps, len(arrays), out_dir)
    return meta


def write_original_arrays(reference: Reference, pairs, n_steps: int, out_dir: Path) -> dict[str, str]:
    """The original tune's arrays beside the probed tune's; their files by name."""
    files = {}
    for (layer, quantity), values in load_activations(reference.activations_path, set(pairs)).items():
        if len(values) != n_steps:
            raise ExplorerError(
                f"{reference.activations_path}: the original {reference.of!r} has {len(values)} steps, "
                f"the probed tune {n_steps}: G' - G needs the same steps"
            )
        key = ORIGINAL + array_name(layer, quantity)
        files[key] = f"data/original.{array_name(layer, quantity)}.js"
        (out_dir / files[key]).write_text(array_script(key, values), encoding="ascii")
    return files


def add_differences(meta: dict, reference: Reference, pairs) -> None:
    """A probe's page: the reference, G' - G of each layer and quantity, and their
    animation through the layers."""
    label = {"abs": "|cos|", "signed": "signed"}[reference.gramian]
    differences = [
        {
            "name": difference_name(layer, quantity, reference.gramian),
            "kind": "difference",
            "layer": layer,
            "quantity": quantity,
            "quantity_b": None,
            "gramian": gramian_name(layer, quantity, reference.gramian),
            "description": f"G' - G: the probed tune's {label} Gramian of {quantity} less the original's, "
            f"layer {layer} (red: more alike in the probe, blue: less)",
            "counts": None,
            "comparison": reference.comparisons[array_name(layer, quantity)],
        }
        for layer, quantity in pairs
    ]
    meta["matrices"] = differences + meta["matrices"]
    meta["reference"] = {
        "of": reference.of,
        "description": reference.description,
        "changed": reference.changed,
        "gramian": reference.gramian,
    }
    animations = []
    for quantity in dict.fromkeys(q for _, q in pairs):
        frames = [[d["name"]] for d in differences if d["quantity"] == quantity]
        if len(frames) >= 2:
            title = f"G' - G of {quantity} through the layers"
            animations.append({"name": f"{quantity}.diff", "title": title, "frames": frames})
    meta["animations"] = animations + meta["animations"]
