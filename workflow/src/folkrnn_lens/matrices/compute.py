"""The matrices stage (rule compute_matrices): every planned matrix of one
transcription into ``matrices.npz`` and its summary table of band counts, each
matrix computed, counted and written before the next (bounded memory).

Matrix names (``folkrnn_lens.names``) are the keys of ``matrices.npz``, the rows of
the summary table, and the figures' file names and titles. Where the tune's token
influence was measured (interventions), ``matrices.npz`` holds it too, as
``influence`` (I[s, t], rows s; not banded, so not in the summary).
"""

from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from folkrnn_lens.activations.tables import load_activations, load_steps, window_steps
from folkrnn_lens.logs import eta
from folkrnn_lens.matrices.maths import (
    band_counts,
    cross_gramian,
    magnitude_gramian,
    onehot_gramian,
    signed_gramian,
    softmax_l1_distances,
)
from folkrnn_lens.matrices.plan import MatrixSpec, Plan
from folkrnn_lens.names import INFLUENCE
from folkrnn_lens.parquet import write_parquet

log = logging.getLogger(__name__)

SUMMARY_SCHEMA = pa.schema(
    [
        ("transcription", pa.string()),
        ("matrix", pa.string()),
        ("kind", pa.string()),
        ("layer", pa.int8()),  # null for onehot and softmax_l1
        ("quantity", pa.string()),  # null for onehot and softmax_l1
        ("quantity_b", pa.string()),  # the vertical-axis gate of a cross matrix, else null
        ("n_steps", pa.int32()),
        ("pairs", pa.string()),  # "unordered" (n(n-1)/2) or "ordered" (n(n-1), cross matrices)
        ("n_pairs", pa.int64()),
        ("low_threshold", pa.float64()),
        ("n_low", pa.int64()),
        ("high_threshold", pa.float64()),
        ("n_high", pa.int64()),
        ("n_opposite", pa.int64()),  # signed and cross only, else null
        ("description", pa.string()),
    ]
)


def compute_matrix(spec: MatrixSpec, tokens, softmax, activation) -> np.ndarray:
    """One matrix; ``activation(layer, quantity)`` returns (n_steps, n_units)."""
    if spec.kind == "onehot":
        return onehot_gramian(tokens)
    if spec.kind == "distance":
        return softmax_l1_distances(softmax)
    if spec.kind == "magnitude":
        return magnitude_gramian(activation(spec.layer, spec.quantity))
    if spec.kind == "signed":
        return signed_gramian(activation(spec.layer, spec.quantity))
    return cross_gramian(activation(spec.layer, spec.quantity), activation(spec.layer, spec.quantity_b))


def _activation_pairs(plan: Plan) -> set[tuple[int, str]]:
    pairs = set()
    for spec in plan.matrices:
        if spec.layer is not None:
            pairs.add((spec.layer, spec.quantity))
        if spec.quantity_b is not None:
            pairs.add((spec.layer, spec.quantity_b))
    return pairs


def iter_matrices(
    steps_path: str | Path, activations_path: str | Path, plan: Plan, window: tuple[int, int] | None = None
):
    """(spec, matrix) for every planned matrix of one transcription (float32, n x n),
    one at a time: a long tune's matrices are never all in memory."""
    needs_softmax = any(spec.kind == "distance" for spec in plan.matrices)
    tokens, _, softmax = load_steps(steps_path, needs_softmax, window)
    loaded = load_activations(activations_path, _activation_pairs(plan), window)

    def activation(layer: int, quantity: str) -> np.ndarray:
        return loaded[(layer, quantity)]

    for spec in plan.matrices:
        yield spec, compute_matrix(spec, tokens, softmax, activation)


def matrices_in_memory(
    steps_path: str | Path, activations_path: str | Path, plan: Plan, window: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """Every planned matrix of one transcription (float32, n x n), plus ``tokens``,
    ``bars`` and ``steps`` (the input token, bar index and number of each step), all
    in memory: for short tunes and tests (the stage streams them, compute_matrices)."""
    matrices = iter_matrices(steps_path, activations_path, plan, window)
    arrays = {spec.name: matrix for spec, matrix in matrices}
    tokens, bars, _ = load_steps(steps_path, False, window)
    arrays["tokens"] = np.asarray(tokens, dtype=str)
    arrays["bars"] = bars
    arrays["steps"] = window_steps(steps_path, window)
    return arrays


def summary_row(name: str, spec: MatrixSpec, matrix: np.ndarray, bands: dict) -> dict:
    """The summary of one matrix: steps, unique pairs of different steps, band counts."""
    low, high = bands[spec.band]["low"], bands[spec.band]["high"]
    counts = band_counts(matrix, spec.kind, low, high)
    return {
        "transcription": name,
        "matrix": spec.name,
        "kind": spec.kind,
        "layer": spec.layer,
        "quantity": spec.quantity,
        "quantity_b": spec.quantity_b,
        "n_steps": matrix.shape[0],
        "pairs": counts.pairs,
        "n_pairs": counts.n_pairs,
        "low_threshold": low,
        "n_low": counts.n_low,
        "high_threshold": high,
        "n_high": counts.n_high,
        "n_opposite": counts.n_opposite,
        "description": spec.description,
    }


def summary_table(name: str, arrays: dict[str, np.ndarray], plan: Plan) -> pd.DataFrame:
    """One row per matrix: steps, unique pairs of different steps, and band counts."""
    rows = [summary_row(name, spec, arrays[spec.name], plan.bands) for spec in plan.matrices]
    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA).to_pandas()


def describe_row(row) -> str:
    """The summary row in words, e.g. 'of the 13366 unique pairs, 12 have a distance <= 0.02 ...'."""
    of = f"of the {row.n_pairs} {'ordered' if row.pairs == 'ordered' else 'unique'} pairs of different steps"
    if row.kind == "distance":
        return (
            f"{of}, {row.n_low} have a distance <= {row.low_threshold:g} and {row.n_high} "
            f"a distance >= {row.high_threshold:g}"
        )
    if row.kind == "onehot":
        return f"{of}, {row.n_high} read the same token and {row.n_low} different tokens"
    text = f"{of}, {row.n_low} have |cos| <= {row.low_threshold:g} (nearly orthogonal) and {row.n_high} "
    if row.kind == "magnitude":
        return text + f"|cos| >= {row.high_threshold:g} (nearly parallel)"
    return text + (
        f"cos >= {row.high_threshold:g} (same direction); {int(row.n_opposite)} have cos <= "
        f"{-row.high_threshold:g} (opposite)"
    )


# ---- files ----------------------------------------------------------------------


class NpzWriter:
    """Writes an ``.npz`` (np.load reads it) one array at a time, so arrays need not
    be held together; the same bytes for the same arrays: a fixed timestamp in the
    zip entries, so reruns and ``-j 1``/``-j 2`` agree."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.archive = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def write(self, key: str, array: np.ndarray) -> None:
        info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
        with self.archive.open(info, "w", force_zip64=True) as handle:
            np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)

    def __enter__(self) -> NpzWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.archive.close()


def load_influence(path: str | Path, n_steps: int) -> np.ndarray:
    """The influence matrix I of an ``influence.npz``, of ``n_steps`` steps (else an
    error naming the file: an influence of other steps than the matrices')."""
    with np.load(path, allow_pickle=False) as npz:
        influence = npz[INFLUENCE]
    if influence.shape != (n_steps, n_steps):
        raise ValueError(
            f"{path}: an influence matrix of {influence.shape[0]} steps, but this analysis has {n_steps} "
            "(its window or steps table differs)"
        )
    return influence


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez``, with NpzWriter's stable bytes."""
    with NpzWriter(path) as npz:
        for key, array in arrays.items():
            npz.write(key, array)


def write_summary(table: pd.DataFrame, parquet_path: str | Path, html_path: str | Path | None = None) -> None:
    """The summary as Parquet and, for the report, as an HTML table with each row in words."""
    write_parquet(table, parquet_path, schema=SUMMARY_SCHEMA)
    if html_path is not None:
        from html import escape

        columns = ["matrix", "kind", "n_steps", "n_pairs", "n_low", "n_high", "n_opposite"]
        readable = table[columns].astype(object).where(table[columns].notna(), "")
        readable["in words"] = [describe_row(row) for row in table.itertuples()]
        name = escape(str(table["transcription"].iloc[0])) if len(table) else ""
        style = (
            "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        )
        Path(html_path).write_text(
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name}: summary</title>"
            f"<style>{style}</style></head><body><h3>{name}: the matrices, band counts</h3>"
            + readable.to_html(index=False, escape=True)
            + "</body></html>\n",
            encoding="utf-8",
        )


def compute_matrices(
    name: str,
    steps_path: str | Path,
    activations_path: str | Path,
    npz_path: str | Path,
    summary_path: str | Path,
    plan: Plan,
    summary_html: str | Path | None = None,
    window: tuple[int, int] | None = None,
    influence_path: str | Path | None = None,
) -> Plan:
    """The matrices stage of one transcription: ``matrices.npz`` and its summary,
    each matrix of ``plan`` (plan.plan_analysis) computed, counted and written before
    the next (bounded memory); of the steps start..stop-1 only, where a ``window`` is
    given; with ``influence_path``, the influence matrix I too."""
    for note in plan.skipped:
        log.info("%s: skipped %s", name, note)
    tokens, bars, _ = load_steps(steps_path, False, window)
    n, rows, started = len(tokens), [], time.perf_counter()
    log.info("%s: %d matrices of %d x %d steps", name, len(plan.matrices), n, n)
    with NpzWriter(npz_path) as npz:
        for done, (spec, matrix) in enumerate(iter_matrices(steps_path, activations_path, plan, window), 1):
            rows.append(summary_row(name, spec, matrix, plan.bands))
            npz.write(spec.name, matrix)
            del matrix
            log.info(
                "%s: %s (%d of %d)%s",
                name,
                spec.name,
                done,
                len(plan.matrices),
                eta(started, done, len(plan.matrices)),
            )
        if influence_path is not None:
            npz.write(INFLUENCE, load_influence(influence_path, n))
        npz.write("tokens", np.asarray(tokens, dtype=str))
        npz.write("bars", bars)
        npz.write("steps", window_steps(steps_path, window))
    table = pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA).to_pandas()
    write_summary(table, summary_path, summary_html)
    for row in table.itertuples():
        log.info("%s %s: %s", name, row.matrix, describe_row(row))
    return plan
