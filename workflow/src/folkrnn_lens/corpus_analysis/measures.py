"""What corpus mode measures of one tune (its resemblance table, band counts,
saturation) and the sums that add up across tunes and parts (``Accumulators``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from folkrnn_lens.matrices.maths import band_counts, softmax_l1_distances
from folkrnn_lens.names import GATES, matrix_kind
from folkrnn_lens.names import band as band_of
from folkrnn_lens.resemblance.settings import Settings, gramians_of
from folkrnn_lens.tokens.format import bar_indices


def _bar_matrix(matrix: np.ndarray, bars: np.ndarray, max_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``matrix`` over the steps of bar i (rows) and bar j (columns), for
    the first ``max_bars`` bars, and which cells the tune has (a tune of 8 bars
    leaves the rest empty)."""
    inside = bars < max_bars
    membership = np.zeros((len(bars), max_bars))
    membership[np.flatnonzero(inside), bars[inside]] = 1.0
    sizes = membership.sum(axis=0)
    sums = membership.T @ matrix @ membership
    present = np.outer(sizes, sizes) > 0
    means = np.divide(sums, np.outer(sizes, sizes), out=np.zeros_like(sums), where=present)
    return means, present


class Accumulators:
    """Sums over the tunes of a part that add up across parts."""

    def __init__(self, settings: Settings, matrix_names: list[str], max_bars: int, n_units: int):
        layers, gates = len(settings.layers), len(GATES)
        self.matrix_names = matrix_names
        self.unit_below = np.zeros((layers, gates, n_units), np.int64)  # steps below low
        self.unit_above = np.zeros((layers, gates, n_units), np.int64)
        self.unit_steps = np.zeros(1, np.int64)
        self.bar_sums = np.zeros((len(matrix_names), max_bars, max_bars))
        self.bar_tunes = np.zeros((len(matrix_names), max_bars, max_bars), np.int64)

    def save(self, path: str | Path) -> None:
        np.savez(
            path,
            matrix_names=np.array(self.matrix_names),
            unit_below=self.unit_below,
            unit_above=self.unit_above,
            unit_steps=self.unit_steps,
            bar_sums=self.bar_sums,
            bar_tunes=self.bar_tunes,
        )


@dataclass
class TuneResult:
    resemblance: pd.DataFrame
    summary: list[dict]
    saturation: list[dict]
    matrices: dict[str, np.ndarray]
    bars: np.ndarray


def analyse_capture(
    capture, settings: Settings, bands: dict, thresholds: dict, accumulators: Accumulators, max_bars: int
) -> TuneResult:
    """Everything corpus mode keeps of one tune's capture."""
    tokens = capture.input_tokens
    bars = np.asarray(bar_indices(tokens), np.int32)
    matrices = gramians_of(capture.quantity, tokens, settings, dtype=np.float32)
    matrices["softmax_l1"] = softmax_l1_distances(capture.softmax, dtype=np.float32)
    resemblance = settings.table(matrices, bars)

    summary = []
    for name, matrix in matrices.items():
        kind = matrix_kind(name)
        band = bands[band_of(kind)]
        counts = band_counts(matrix, kind, band["low"], band["high"])
        summary.append(
            {
                "matrix": name,
                "kind": kind,
                "n_pairs": counts.n_pairs,
                "n_low": counts.n_low,
                "n_high": counts.n_high,
            }
        )
    for k, name in enumerate(accumulators.matrix_names):
        means, present = _bar_matrix(matrices[name], bars, max_bars)
        accumulators.bar_sums[k] += means
        accumulators.bar_tunes[k] += present

    saturation = []
    low, high = thresholds["low"], thresholds["high"]
    accumulators.unit_steps += len(tokens)
    for li, layer in enumerate(settings.layers):
        for gi, gate in enumerate(GATES):
            values = capture.quantity(layer, gate)
            below, above = values < low, values > high
            accumulators.unit_below[li, gi] += below.sum(axis=0)
            accumulators.unit_above[li, gi] += above.sum(axis=0)
            frac_below, frac_above = below.mean(axis=0), above.mean(axis=0)
            saturation.append(
                {
                    "layer": layer,
                    "gate": gate,
                    "mean_frac_below": float(frac_below.mean()),
                    "mean_frac_above": float(frac_above.mean()),
                    "units_mostly_below": int(np.count_nonzero(frac_below > 0.5)),
                    "units_mostly_above": int(np.count_nonzero(frac_above > 0.5)),
                }
            )
    return TuneResult(resemblance, summary, saturation, matrices, bars)
