"""Captured activations as Parquet tables, and fast loaders for them.

``steps.parquet`` has one row per step; ``activations.parquet`` one row per
(step, layer, quantity), sorted by layer, quantity, step so that one
(layer, quantity) is a contiguous run of rows: ``load_activation`` returns it
as an (n_steps, n_units) array straight from the Arrow buffer, without a
Python loop over rows.

Both files carry the provenance in their schema metadata under the key
``folkrnn_lens``: model file and SHA-256, the source file (ABC or token file) of a
read transcription and its SHA-256, vocabulary, mode, seed, temperature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from folkrnn_lens.names import QUANTITIES
from folkrnn_lens.tokens.format import bar_indices

if TYPE_CHECKING:  # the model (and torch) only to write tables, not to read them
    from folkrnn_lens.model.folkrnn import Capture

METADATA_KEY = b"folkrnn_lens"


@dataclass(frozen=True)
class Provenance:
    """What produced a capture: stored in the Parquet metadata of its tables."""

    model_file: str
    model_sha256: str
    vocab: list[str]
    mode: str  # "read" or "generate"
    transcription: str = ""
    seed: int | None = None
    temperature: float | None = None
    prime: list[str] = field(default_factory=list)
    source_file: str | None = None  # the ABC or token file a read tune came from
    source_sha256: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__).encode()


def _fixed_size_list(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """An (n, k) float32 matrix as n fixed-size lists of k, sharing its buffer."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def steps_table(capture: Capture, provenance: Provenance) -> pa.Table:
    """One row per step: what went in, what came next, its bar, and the softmax."""
    probs = capture.softmax
    token2idx = {token: index for index, token in enumerate(provenance.vocab)}
    next_idx = np.array([token2idx[token] for token in capture.output_tokens])
    steps = np.arange(len(capture.input_tokens))
    p_next = probs[steps, next_idx]
    entropy = -np.sum(probs * np.log(np.maximum(probs, 1e-30)), axis=1)
    table = pa.table(
        {
            "step": pa.array(steps, pa.int32()),
            "input_token": pa.array(capture.input_tokens, pa.string()),
            "output_token": pa.array(capture.output_tokens, pa.string()),
            "bar": pa.array(bar_indices(capture.input_tokens), pa.int32()),
            "output_prob": pa.array(p_next, pa.float32()),
            "surprisal_nats": pa.array(-np.log(np.maximum(p_next, 1e-30)), pa.float32()),
            "entropy_nats": pa.array(entropy, pa.float32()),
            "argmax_token": pa.array([provenance.vocab[k] for k in probs.argmax(axis=1)], pa.string()),
            "softmax": _fixed_size_list(probs),
        }
    )
    return table.replace_schema_metadata({METADATA_KEY: provenance.to_json()})


def activations_table(
    capture: Capture,
    provenance: Provenance,
    layers: list[int] | None = None,
    quantities: list[str] | None = None,
) -> pa.Table:
    """One row per (layer, quantity, step) for the chosen layers (1-based) and quantities."""
    n_layers = len(capture.layers)
    n_steps, _, n_units = capture.layers[0].shape
    layers = list(layers or range(1, n_layers + 1))
    quantities = list(quantities or QUANTITIES)
    for layer in layers:
        if not 1 <= layer <= n_layers:
            raise ValueError(f"layer {layer} does not exist: the model has layers 1..{n_layers}")
    for quantity in quantities:
        if quantity not in QUANTITIES:
            raise ValueError(f"unknown quantity {quantity!r}; expected one of {QUANTITIES}")
    pairs = [(layer, quantity) for layer in layers for quantity in quantities]
    blocks = [capture.quantity(layer, q) for layer, q in pairs]
    values = np.concatenate(blocks, axis=0) if blocks else np.empty((0, n_units), np.float32)
    table = pa.table(
        {
            "step": pa.array(np.tile(np.arange(n_steps, dtype=np.int32), len(pairs))),
            "layer": pa.array(np.repeat([layer for layer, _ in pairs], n_steps).astype(np.int8)),
            "quantity": pa.array(np.repeat([q for _, q in pairs], n_steps).astype(str), pa.string()),
            "values": _fixed_size_list(values),
        }
    )
    return table.replace_schema_metadata({METADATA_KEY: provenance.to_json()})


def write_capture(
    capture: Capture,
    provenance: Provenance,
    steps_path: str | Path,
    activations_path: str | Path,
    layers: list[int] | None = None,
    quantities: list[str] | None = None,
) -> None:
    """Both tables of one capture. Row groups of one (layer, quantity) keep reads cheap."""
    for path in (steps_path, activations_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(steps_table(capture, provenance), steps_path)
    table = activations_table(capture, provenance, layers, quantities)
    pq.write_table(table, activations_path, row_group_size=max(len(capture.input_tokens), 1))


def read_provenance(path: str | Path) -> dict:
    metadata = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path}: no folkrnn_lens metadata; was it written by folkrnn-lens?")
    return json.loads(metadata[METADATA_KEY])


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list column as an (n, k) float32 array, zero-copy where Arrow allows."""
    array = column.combine_chunks()
    width = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


def load_activation(path: str | Path, layer: int, quantity: str) -> np.ndarray:
    """One (layer, quantity) as an (n_steps, n_units) float32 array, in step order."""
    table = pq.read_table(
        path, columns=["step", "values"], filters=[("layer", "=", layer), ("quantity", "=", quantity)]
    )
    if table.num_rows == 0:
        present = (
            pq.read_table(path, columns=["layer", "quantity"]).group_by(["layer", "quantity"]).aggregate([])
        )
        available = sorted(zip(present["layer"].to_pylist(), present["quantity"].to_pylist()))
        raise KeyError(f"{path}: no layer {layer} quantity {quantity!r}; the file holds {available}")
    steps = table["step"].to_numpy()
    if np.any(np.diff(steps) < 0):  # written sorted; re-sort only a file that was not
        table = table.take(pc.sort_indices(table["step"]))
    return _matrix(table["values"])


def load_softmax(path: str | Path) -> np.ndarray:
    """The softmax of every step of a steps table, (n_steps, vocab_size)."""
    return _matrix(pq.read_table(path, columns=["softmax"])["softmax"])


def load_activations(
    path: str | Path, pairs: set[tuple[int, str]], window: tuple[int, int] | None = None
) -> dict[tuple[int, str], np.ndarray]:
    """The (n_steps, n_units) array of each (layer, quantity) in ``pairs``, reading the
    file once (load_activation reads one pair; the analyses want many);
    only the steps start..stop-1 of a ``window``."""
    if not pairs:
        return {}
    steps = None if window is None else [("step", ">=", window[0]), ("step", "<", window[1])]
    table = pq.read_table(path, columns=["step", "layer", "quantity", "values"], filters=steps)
    layer = table["layer"].to_numpy()
    quantity = table["quantity"].to_numpy(zero_copy_only=False)
    step = table["step"].to_numpy()
    values = _matrix(table["values"])
    out = {}
    for pair in sorted(pairs):
        rows = np.flatnonzero((layer == pair[0]) & (quantity == pair[1]))
        if rows.size == 0:
            held = sorted(set(zip(layer.tolist(), quantity.tolist())))
            raise KeyError(f"{path}: no layer {pair[0]} quantity {pair[1]!r}; the file holds {held}")
        out[pair] = values[rows[np.argsort(step[rows], kind="stable")]]
    return out


def load_steps(
    steps_path: str | Path, softmax: bool, window: tuple[int, int] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """The input token and bar index of each step, and the softmax where asked; only
    the steps start..stop-1 of a ``window`` (an error where the tune is shorter)."""
    columns = ["input_token", "bar"] + (["softmax"] if softmax else [])
    steps = pq.read_table(steps_path, columns=columns)
    if window is not None:
        check_window(window, steps.num_rows, steps_path)
        steps = steps.slice(window[0], window[1] - window[0])
    p = _matrix(steps["softmax"]) if softmax else None
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
