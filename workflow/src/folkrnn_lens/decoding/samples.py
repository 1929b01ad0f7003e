"""The states the probes read: a seeded sample of each tune's steps, their states in
every probed layer and quantity, streamed by each corpus part into
``decoding_states.parquet`` (one row per sampled step: ``tune_id``, ``step`` and one
fixed-size list column per state, ``L2.h``), so that the probes never need the corpus's
every step and the parts' memory stays flat in the number of tunes.

A tune's sample depends on its id and the seed alone, so any split of the corpus into
parts samples the same steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from folkrnn_lens.names import array_name


def sample_steps(tune_id: int, n_steps: int, per_tune: int, seed: int) -> np.ndarray:
    """``per_tune`` of a tune's ``n_steps`` steps (all where it has no more), in order."""
    if n_steps <= per_tune:
        return np.arange(n_steps)
    rng = np.random.default_rng([seed, tune_id, 1])  # 1: not the selectivity's shuffles
    return np.sort(rng.choice(n_steps, size=per_tune, replace=False))


class StateWriter:
    """Rows of sampled states, written to ``path`` a batch of tunes at a time."""

    def __init__(self, path: str | Path, columns: list[tuple[int, str]], units: int, metadata: dict):
        self.path, self.columns, self.units = Path(path), columns, units
        fields = [("tune_id", pa.int32()), ("step", pa.int32())]
        fields += [(array_name(*c), pa.list_(pa.float32(), units)) for c in columns]
        self.schema = pa.schema(fields, metadata={"folkrnn_lens": json.dumps(metadata)})
        self.pending: list[pa.RecordBatch] = []
        self.writer = pq.ParquetWriter(self.path, self.schema)

    def add(self, tune_id: int, capture, steps: np.ndarray) -> None:
        arrays = [pa.array(np.full(len(steps), tune_id, np.int32)), pa.array(steps.astype(np.int32))]
        for layer, quantity in self.columns:
            states = np.ascontiguousarray(capture.quantity(layer, quantity)[steps], np.float32)
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(states.ravel()), self.units))
        self.pending.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        if len(self.pending) >= 64:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_batches(self.pending, schema=self.schema))
            self.pending.clear()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def load_states(paths: list[str | Path], layer: int, quantity: str) -> tuple[np.ndarray, np.ndarray]:
    """The sampled rows of every part, in tune order: (N, 2) ``tune_id``, ``step`` and
    the (N, units) states of one layer and quantity (one column read at a time)."""
    column = array_name(layer, quantity)
    keys, states = [], []
    for path in paths:
        table = pq.read_table(path, columns=["tune_id", "step", column])
        keys.append(np.column_stack([table["tune_id"].to_numpy(), table["step"].to_numpy()]))
        values = table[column].combine_chunks()
        states.append(values.flatten().to_numpy().reshape(len(table), values.type.list_size))
        del table, values
    keys_all = np.concatenate(keys) if keys else np.zeros((0, 2), np.int64)
    order = np.lexsort((keys_all[:, 1], keys_all[:, 0]))  # parts interleave batches of tunes
    return keys_all[order], np.concatenate(states)[order]
