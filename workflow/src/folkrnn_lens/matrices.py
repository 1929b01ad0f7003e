"""The matrices of part 9: Gramians and distances between the steps of one tune.

Every matrix is n x n for a tune of n steps, computed with matrix products (or,
for the L1 distances, one broadcast per chunk of rows), never a Python loop
over pairs. Activations come as (n_steps, n_units) arrays, one row per step, so
docs/specification.md's Q^T Q (columns = steps) is ``A @ A.T`` here.

Matrix names, used identically as keys of ``matrices.npz``, in the summary
table, in figure file names and in titles (layers counted from 1, quantities
``i f g_pre g o c h`` as in ``folkrnn_lens.model.QUANTITIES``):

=====================  ==========  ===================================================
name                   kind        entry (s, t)
=====================  ==========  ===================================================
``onehot``             onehot      x_s . x_t: 1 where steps s and t read the same token
``softmax_l1``         distance    ||p_s - p_t||_1, in [0, 2]; 2 = disjoint supports
``L3.h.abs``           magnitude   |cos| of the angle between h_s and h_t of layer 3
``L3.h.signed``        signed      cos of that angle
``L2.i_x_o``           cross       cos of the angle between i_s and o_t of layer 2
=====================  ==========  ===================================================

A cross matrix ``L{l}.{a}_x_{b}`` is U_a^T U_b: row s is gate a at step s, column
t is gate b at step t. It is not symmetric; figures draw b along the vertical
axis (docs/specification.md).

Unit normalisation of a zero activation vector (a step where every unit is
exactly 0) is undefined: its cosines with every step, itself included, are
defined as 0 here.

Band counts (``band_counts``) are over unique pairs of different steps: the
n(n-1)/2 pairs above the diagonal of a symmetric matrix, and the n(n-1) ordered
off-diagonal pairs of a cross matrix (which is not symmetric, so (s, t) and
(t, s) are different pairs). Bands are closed intervals:

- distance: low band d <= low (close), high band d >= high (nearly disjoint);
- onehot, magnitude: low band |v| <= low (orthogonal), high band |v| >= high;
- signed, cross: low band |v| <= low (orthogonal), high band v >= high (same
  direction), and ``n_opposite`` counts v <= -high (opposite directions).
"""

from __future__ import annotations

import logging
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .logs import eta

log = logging.getLogger(__name__)

QUANTITIES = ("i", "f", "g_pre", "g", "o", "c", "h")
"""``folkrnn_lens.model.QUANTITIES``, repeated so that this stage does not import torch
(a test checks they agree)."""

KINDS = ("onehot", "distance", "magnitude", "signed", "cross")
DEFAULT_CROSS_PAIRS = (("i", "o"), ("f", "o"), ("g", "o"), ("h", "o"), ("f", "i"))
DEFAULT_BANDS = {"distance": {"low": 0.02, "high": 1.98}, "cosine": {"low": 0.02, "high": 0.98}}


def band_limits(bands: dict | None) -> dict[str, dict[str, float]]:
    """Config's ``analysis.bands`` over the defaults, threshold by threshold (so
    ``{distance: {low: 0.05}}`` keeps the default high); low must be below high."""
    merged = {}
    for band, default in DEFAULT_BANDS.items():
        limits = merged[band] = {**default, **(bands or {}).get(band, {})}
        if not limits["low"] < limits["high"]:
            raise ValueError(
                f"analysis.bands.{band}: low ({limits['low']}) must be below high ({limits['high']})"
            )
    return merged


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


# ---- the matrices ---------------------------------------------------------------


def onehot_matrix(tokens: list[str]) -> tuple[np.ndarray, list[str]]:
    """X as rows: (n_steps, n_distinct) one-hot rows, and the distinct tokens in order."""
    vocab, codes = np.unique(np.asarray(tokens, dtype=str), return_inverse=True)
    x = np.zeros((len(tokens), len(vocab)), np.float32)
    x[np.arange(len(tokens)), codes] = 1.0
    return x, vocab.tolist()


def onehot_gramian(tokens: list[str]) -> np.ndarray:
    """X^T X: entry (s, t) is 1 where steps s and t read the same token, else 0."""
    x, _ = onehot_matrix(tokens)
    return x @ x.T


def softmax_l1_distances(p: np.ndarray, chunk_bytes: int = 64 << 20, dtype=np.float64) -> np.ndarray:
    """D[s, t] = ||p_s - p_t||_1 for the rows of p (n_steps, vocab): 0 on the
    diagonal, 2 where two distributions have disjoint supports.

    Vectorised one block of rows at a time; a block's (rows, n, vocab) difference
    holds at most ``chunk_bytes``, so memory stays bounded for long tunes. Sums in
    ``dtype``: float32 is four times faster, to about 1e-6 (corpus mode's band counts).
    """
    p = np.asarray(p, dtype=dtype)
    n, vocab = p.shape
    rows = max(1, chunk_bytes // max(1, n * vocab * p.itemsize))
    d = np.empty((n, n), dtype)
    for start in range(0, n, rows):
        block = p[start : start + rows]
        d[start : start + rows] = np.abs(block[:, None, :] - p[None, :, :]).sum(axis=2)
    d = np.minimum(d, d.T)  # exactly symmetric whatever the summation order
    np.fill_diagonal(d, 0.0)
    return d.astype(np.float32)


def unit_rows(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Each row scaled to unit L2 norm; an all-zero row stays zero (its cosines are 0)."""
    a = np.asarray(a, dtype=dtype)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)


def signed_gramian(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Q^T Q with unit-norm columns: cos of the angle between the activations of two
    steps (rows of ``a``, (n_steps, n_units)); 0 with an all-zero step. Computed in
    ``dtype`` (float32: twice as fast, to about 1e-7), returned as float32."""
    u = unit_rows(a, dtype)
    gramian = u @ u.T
    return np.clip(gramian, -1.0, 1.0, out=gramian).astype(np.float32)


def magnitude_gramian(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """|Q^T Q| with unit-norm columns: the absolute cosine, ignoring polarity."""
    gramian = signed_gramian(a, dtype)
    return np.abs(gramian, out=gramian)


def cross_gramian(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U_a^T U_b: entry (s, t) is cos(a_s, b_t). Row index: steps of a; column: steps of b."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"cross matrix of {a.shape[0]} and {b.shape[0]} steps")
    return np.clip(unit_rows(a) @ unit_rows(b).T, -1.0, 1.0).astype(np.float32)


# ---- band counts ----------------------------------------------------------------


@dataclass(frozen=True)
class BandCounts:
    pairs: str  # "unordered" or "ordered"
    n_pairs: int
    n_low: int
    n_high: int
    n_opposite: int | None


def pair_values(matrix: np.ndarray, symmetric: bool) -> np.ndarray:
    """The values of the unique pairs of different steps: the upper triangle of a
    symmetric matrix, every off-diagonal entry of a non-symmetric one."""
    n = matrix.shape[0]
    if symmetric:
        return matrix[np.triu_indices(n, k=1)]
    return matrix[~np.eye(n, dtype=bool)]


BAND_ROWS = 256  # rows of a matrix counted at once: bounded memory for long tunes


def band_counts(matrix: np.ndarray, kind: str, low: float, high: float) -> BandCounts:
    """How many unique pairs of different steps fall in the low and the high band
    (closed intervals; see the module docstring for each kind's bands). Counted a
    block of rows at a time, so a long tune's matrix is never copied whole."""
    if kind not in KINDS:
        raise ValueError(f"unknown matrix kind {kind!r}; expected one of {KINDS}")
    symmetric = kind != "cross"
    n = matrix.shape[0]
    n_low = n_high = n_opposite = 0
    for start in range(0, n, BAND_ROWS):
        values = _pairs_of_rows(matrix, start, min(n, start + BAND_ROWS), symmetric)
        if kind == "distance":
            n_low += np.count_nonzero(values <= low)
            n_high += np.count_nonzero(values >= high)
        elif kind in ("onehot", "magnitude"):
            n_low += np.count_nonzero(np.abs(values) <= low)
            n_high += np.count_nonzero(np.abs(values) >= high)
        else:
            n_low += np.count_nonzero(np.abs(values) <= low)
            n_high += np.count_nonzero(values >= high)
            n_opposite += np.count_nonzero(values <= -high)
    n_pairs = n * (n - 1) // 2 if symmetric else n * (n - 1)
    opposite = int(n_opposite) if kind in ("signed", "cross") else None
    return BandCounts("unordered" if symmetric else "ordered", n_pairs, int(n_low), int(n_high), opposite)


def _pairs_of_rows(matrix: np.ndarray, start: int, stop: int, symmetric: bool) -> np.ndarray:
    """The values (float64) of rows start..stop-1 that pair_values would keep."""
    block = np.asarray(matrix[start:stop], dtype=np.float64)
    rows = np.arange(start, stop)[:, None]
    cols = np.arange(matrix.shape[1])[None, :]
    return block[cols > rows] if symmetric else block[cols != rows]


# ---- what to compute ------------------------------------------------------------


@dataclass(frozen=True)
class MatrixSpec:
    """One matrix of the analysis: its stable name and what it is made of."""

    name: str
    kind: str
    layer: int | None = None
    quantity: str | None = None
    quantity_b: str | None = None

    @property
    def band(self) -> str:
        """Which thresholds of config's ``analysis.bands`` apply."""
        return "distance" if self.kind == "distance" else "cosine"

    @property
    def description(self) -> str:
        if self.kind == "onehot":
            return "X^T X of the one-hot inputs: 1 where two steps read the same token"
        if self.kind == "distance":
            return "L1 distance between the softmax outputs of two steps (2 = disjoint supports)"
        if self.kind == "magnitude":
            return f"|cos| between {self.quantity} of two steps, layer {self.layer} (magnitude Gramian)"
        if self.kind == "signed":
            return f"cos between {self.quantity} of two steps, layer {self.layer} (signed Gramian)"
        return (
            f"cos between {self.quantity} at step s (columns) and {self.quantity_b} at step t "
            f"(rows of the figure), layer {self.layer}; rows of the array are s"
        )


def matrix_name(kind: str, layer: int | None = None, quantity: str | None = None, quantity_b=None) -> str:
    if kind == "onehot":
        return "onehot"
    if kind == "distance":
        return "softmax_l1"
    if kind == "magnitude":
        return f"L{layer}.{quantity}.abs"
    if kind == "signed":
        return f"L{layer}.{quantity}.signed"
    if kind == "cross":
        return f"L{layer}.{quantity}_x_{quantity_b}"
    raise ValueError(f"unknown matrix kind {kind!r}")


def matrix_kind(name: str) -> str:
    """The kind of the matrix that matrix_name named ``name``."""
    kinds = {"onehot": "onehot", "softmax_l1": "distance", "abs": "magnitude", "signed": "signed"}
    if "_x_" in name:
        return "cross"
    kind = kinds.get(name) or (kinds.get(name.rsplit(".", 1)[-1]) if name.startswith("L") else None)
    if kind is None:
        raise ValueError(f"{name!r} is not a matrix name")
    return kind


def _spec(kind, layer=None, quantity=None, quantity_b=None) -> MatrixSpec:
    return MatrixSpec(matrix_name(kind, layer, quantity, quantity_b), kind, layer, quantity, quantity_b)


@dataclass(frozen=True)
class AnimationSpec:
    """An animation: one frame per layer (1 -> 2 -> 3), pausing on the last.

    ``frames`` lists, per frame, the matrices drawn side by side (one panel, or
    two for the one-hot comparison).
    """

    name: str
    title: str
    frames: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Plan:
    """Everything one transcription's analysis computes and draws, from config alone."""

    matrices: tuple[MatrixSpec, ...]
    animations: tuple[AnimationSpec, ...]
    skipped: tuple[str, ...] = ()  # configured items that cannot be made, with why

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.matrices]

    def spec(self, name: str) -> MatrixSpec:
        for spec in self.matrices:
            if spec.name == name:
                return spec
        raise KeyError(f"no matrix {name!r} in this analysis; it has {self.names}")


def select_recorded(
    section: str, settings: dict, recorded_layers: list[int], recorded_quantities: list[str]
) -> tuple[list[int], list[str]]:
    """The ``layers`` and ``quantities`` a config section asks for (default: what was
    recorded); asking for one that was not recorded is an error naming it."""
    layers = list(settings.get("layers") or recorded_layers)
    quantities = list(settings.get("quantities") or recorded_quantities)
    for layer in layers:
        if layer not in recorded_layers:
            raise ValueError(
                f"{section}.layers asks for layer {layer}, but record.layers holds {list(recorded_layers)}"
            )
    for quantity in quantities:
        if quantity not in recorded_quantities:
            raise ValueError(
                f"{section}.quantities asks for {quantity!r}, but record.quantities holds "
                f"{list(recorded_quantities)}"
            )
    return layers, quantities


def plan_analysis(
    analysis: dict | None = None,
    recorded_layers: list[int] = (1, 2, 3),
    recorded_quantities: list[str] = QUANTITIES,
) -> Plan:
    """The matrices and animations that config's ``analysis`` section asks for.

    Layers and quantities default to what was recorded; asking for one that was
    not recorded is an error (naming it). A cross pair is made for every analysed
    layer when both of its quantities are analysed, and skipped (listed in
    ``Plan.skipped``) otherwise, so narrowing ``quantities`` narrows the pairs.
    Animations need at least two layers.
    """
    analysis = dict(analysis or {})
    layers, quantities = select_recorded("analysis", analysis, recorded_layers, recorded_quantities)
    band_limits(analysis.get("bands"))  # a band with low >= high is an error here, before any work
    layers = sorted(layers)
    quantities = [q for q in QUANTITIES if q in quantities]  # canonical order
    gramians = analysis.get("gramians", ["abs", "signed"])
    pairs = [tuple(pair) for pair in analysis.get("cross_pairs", DEFAULT_CROSS_PAIRS)]

    specs, skipped = [], []
    if analysis.get("onehot", True):
        specs.append(_spec("onehot"))
    if analysis.get("softmax", True):
        specs.append(_spec("distance"))
    for layer in layers:
        for quantity in quantities:
            if "abs" in gramians:
                specs.append(_spec("magnitude", layer, quantity))
            if "signed" in gramians:
                specs.append(_spec("signed", layer, quantity))
        for a, b in pairs:
            if a in quantities and b in quantities:
                specs.append(_spec("cross", layer, a, b))
            elif layer == layers[0]:
                skipped.append(f"cross pair {a} x {b}: needs both quantities among {quantities}")

    animations = []
    animate = analysis.get("animation", {}).get("enabled", True)
    if len(layers) >= 2 and animate:
        # the Gramians of each quantity: |cos| ones, or the signed ones where only those are made
        gramian = next((g for g in ("abs", "signed") if g in gramians), None)
        kind = {"abs": "magnitude", "signed": "signed"}.get(gramian)
        label = {"abs": "|cos| Gramian", "signed": "signed Gramian"}.get(gramian)
        if gramian is None:
            skipped.append("animations of Gramians: analysis.gramians makes none")
        else:
            for quantity in quantities:
                frames = tuple((matrix_name(kind, layer, quantity),) for layer in layers)
                animations.append(AnimationSpec(f"{quantity}.{gramian}", f"{label} of {quantity}", frames))
            if "h" in quantities and analysis.get("onehot", True):
                frames = tuple(("onehot", matrix_name(kind, layer, "h")) for layer in layers)
                animations.append(AnimationSpec("onehot_vs_h", f"X^T X against the {label} of h", frames))
        for a, b in pairs:
            if a in quantities and b in quantities:
                frames = tuple((matrix_name("cross", layer, a, b),) for layer in layers)
                animations.append(AnimationSpec(f"{a}_x_{b}", f"cross-gate {a} x {b}", frames))
    elif animate:
        skipped.append("animations: they cycle through layers and need at least two")
    return Plan(tuple(specs), tuple(animations), tuple(skipped))


# ---- one transcription ----------------------------------------------------------


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


def _list_column(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list column as an (n, k) float32 array."""
    array = column.combine_chunks()
    return array.flatten().to_numpy(zero_copy_only=False).reshape(-1, array.type.list_size)


def read_activations(
    path: str | Path, pairs: set[tuple[int, str]], window: tuple[int, int] | None = None
) -> dict[tuple[int, str], np.ndarray]:
    """The (n_steps, n_units) array of each (layer, quantity) in ``pairs``, reading the
    file once (``tables.load_activation`` reads one pair; this stage wants many);
    only the steps start..stop-1 of a ``window``."""
    if not pairs:
        return {}
    steps = None if window is None else [("step", ">=", window[0]), ("step", "<", window[1])]
    table = pq.read_table(path, columns=["step", "layer", "quantity", "values"], filters=steps)
    layer = table["layer"].to_numpy()
    quantity = table["quantity"].to_numpy(zero_copy_only=False)
    step = table["step"].to_numpy()
    values = _list_column(table["values"])
    out = {}
    for pair in sorted(pairs):
        rows = np.flatnonzero((layer == pair[0]) & (quantity == pair[1]))
        if rows.size == 0:
            held = sorted(set(zip(layer.tolist(), quantity.tolist())))
            raise KeyError(f"{path}: no layer {pair[0]} quantity {pair[1]!r}; the file holds {held}")
        out[pair] = values[rows[np.argsort(step[rows], kind="stable")]]
    return out


def _activation_pairs(plan: Plan) -> set[tuple[int, str]]:
    pairs = set()
    for spec in plan.matrices:
        if spec.layer is not None:
            pairs.add((spec.layer, spec.quantity))
        if spec.quantity_b is not None:
            pairs.add((spec.layer, spec.quantity_b))
    return pairs


def read_steps(
    steps_path: str | Path, softmax: bool, window: tuple[int, int] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """The input token and bar index of each step, and the softmax where asked; only
    the steps start..stop-1 of a ``window`` (an error where the tune is shorter)."""
    columns = ["input_token", "bar"] + (["softmax"] if softmax else [])
    steps = pq.read_table(steps_path, columns=columns)
    if window is not None:
        check_window(window, steps.num_rows, steps_path)
        steps = steps.slice(window[0], window[1] - window[0])
    p = _list_column(steps["softmax"]) if softmax else None
    return steps["input_token"].to_pylist(), steps["bar"].to_numpy().astype(np.int32), p


def check_window(window: tuple[int, int], n_steps: int, where) -> None:
    """A window of steps start..stop-1 must lie inside the tune and hold two steps."""
    start, stop = window
    if not 0 <= start <= stop - 2 or stop > n_steps:
        raise ValueError(
            f"{where}: the window of steps {start}..{stop - 1} does not fit a tune of {n_steps} steps "
            f"(0..{n_steps - 1}); it needs 0 <= start, start + 2 <= stop <= {n_steps}"
        )


def window_steps(steps_path: str | Path, window: tuple[int, int] | None) -> np.ndarray:
    """The step numbers (int32) a window keeps: every step of the tune without one."""
    if window is None:
        return np.arange(pq.read_metadata(steps_path).num_rows, dtype=np.int32)
    return np.arange(*window, dtype=np.int32)


def iter_matrices(
    steps_path: str | Path, activations_path: str | Path, plan: Plan, window: tuple[int, int] | None = None
):
    """(spec, matrix) for every planned matrix of one transcription (float32, n x n),
    one at a time: a long tune's matrices are never all in memory."""
    needs_softmax = any(spec.kind == "distance" for spec in plan.matrices)
    tokens, _, softmax = read_steps(steps_path, needs_softmax, window)
    loaded = read_activations(activations_path, _activation_pairs(plan), window)

    def activation(layer: int, quantity: str) -> np.ndarray:
        return loaded[(layer, quantity)]

    for spec in plan.matrices:
        yield spec, compute_matrix(spec, tokens, softmax, activation)


def compute_matrices(
    steps_path: str | Path, activations_path: str | Path, plan: Plan, window: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """Every planned matrix of one transcription (float32, n x n), plus ``tokens``,
    ``bars`` and ``steps`` (the input token, bar index and number of each step), all
    in memory: for short tunes and tests (the stage streams them, analyse_transcription)."""
    matrices = iter_matrices(steps_path, activations_path, plan, window)
    arrays = {spec.name: matrix for spec, matrix in matrices}
    tokens, bars, _ = read_steps(steps_path, False, window)
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


def summary_table(name: str, arrays: dict[str, np.ndarray], plan: Plan, bands: dict) -> pd.DataFrame:
    """One row per matrix: steps, unique pairs of different steps, and band counts."""
    rows = [summary_row(name, spec, arrays[spec.name], bands) for spec in plan.matrices]
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


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez``, with NpzWriter's stable bytes."""
    with NpzWriter(path) as npz:
        for key, array in arrays.items():
            npz.write(key, array)


def write_summary(table: pd.DataFrame, parquet_path: str | Path, html_path: str | Path | None = None) -> None:
    """The summary as Parquet and, for the report, as an HTML table with each row in words."""
    Path(parquet_path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(table, schema=SUMMARY_SCHEMA, preserve_index=False), parquet_path)
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


def analyse_transcription(
    name: str,
    steps_path: str | Path,
    activations_path: str | Path,
    npz_path: str | Path,
    summary_path: str | Path,
    analysis: dict | None = None,
    recorded_layers: list[int] = (1, 2, 3),
    recorded_quantities: list[str] = QUANTITIES,
    summary_html: str | Path | None = None,
    window: tuple[int, int] | None = None,
) -> Plan:
    """The matrices stage of one transcription: ``matrices.npz`` and its summary,
    each matrix computed, counted and written before the next (bounded memory);
    of the steps start..stop-1 only, where a ``window`` is given."""
    analysis = analysis or {}
    plan = plan_analysis(analysis, recorded_layers, recorded_quantities)
    for note in plan.skipped:
        log.info("%s: skipped %s", name, note)
    bands = band_limits(analysis.get("bands"))
    tokens, bars, _ = read_steps(steps_path, False, window)
    n, rows, started = len(tokens), [], time.perf_counter()
    log.info("%s: %d matrices of %d x %d steps", name, len(plan.matrices), n, n)
    with NpzWriter(npz_path) as npz:
        for done, (spec, matrix) in enumerate(iter_matrices(steps_path, activations_path, plan, window), 1):
            rows.append(summary_row(name, spec, matrix, bands))
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
        npz.write("tokens", np.asarray(tokens, dtype=str))
        npz.write("bars", bars)
        npz.write("steps", window_steps(steps_path, window))
    table = pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA).to_pandas()
    write_summary(table, summary_path, summary_html)
    for row in table.itertuples():
        log.info("%s %s: %s", name, row.matrix, describe_row(row))
    return plan
