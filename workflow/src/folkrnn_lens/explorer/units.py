"""LSTMVis's select and match (Strobelt et al. 2018, "LSTMVis: A Tool for Visual
Analysis of Hidden State Dynamics in Recurrent Neural Networks"), on one layer's
quantity of one transcription. The explorer page runs the same rule in JavaScript;
a browser test checks that both give the same units.

- **select**: the units whose value is above ``threshold`` at every step of the
  range start..stop-1, and not above it at the step just before (start - 1) and just
  after (stop), where those steps exist.
- **match**: every other range of the tune where the selected units switch on
  together: maximal runs of steps at which at least one selected unit is above the
  threshold, ranked by how many of the selected units are above it at every step of
  the run (most first), then by how close the run's length is to the selection's,
  then by position.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def select_units(values: np.ndarray, start: int, stop: int, threshold: float) -> np.ndarray:
    """The units (column indices, ascending) that LSTMVis's rule selects for the steps
    start..stop-1 of ``values`` (n_steps, n_units)."""
    values = np.asarray(values)
    n_steps = values.shape[0]
    if not 0 <= start < stop <= n_steps:
        raise ValueError(f"steps {start}..{stop - 1} are not a range of a tune of {n_steps} steps")
    chosen = (values[start:stop] > threshold).all(axis=0)
    if start > 0:
        chosen &= values[start - 1] <= threshold
    if stop < n_steps:
        chosen &= values[stop] <= threshold
    return np.flatnonzero(chosen)


def match_ranges(
    values: np.ndarray, units: np.ndarray, threshold: float, selected: tuple[int, int]
) -> pd.DataFrame:
    """The ranges where ``units`` switch on together, ranked (see the module's docstring);
    one row per range: ``start``, ``stop`` (exclusive), ``overlap`` (selected units on
    at every step of the range) and ``length``. The selected range itself is left out."""
    columns = ["start", "stop", "overlap", "length"]
    units = np.asarray(units, dtype=int)
    if units.size == 0:
        return pd.DataFrame(columns=columns, dtype=np.int64)
    on = np.asarray(values)[:, units] > threshold
    any_on = on.any(axis=1)
    rows = []
    for start, stop in _runs(any_on):
        if (start, stop) == tuple(selected):
            continue
        rows.append((start, stop, int(on[start:stop].all(axis=0).sum()), stop - start))
    table = pd.DataFrame(rows, columns=columns, dtype=np.int64)
    length = selected[1] - selected[0]
    order = np.lexsort((table["start"], (table["length"] - length).abs(), -table["overlap"]))
    return table.iloc[order].reset_index(drop=True)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each maximal run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
