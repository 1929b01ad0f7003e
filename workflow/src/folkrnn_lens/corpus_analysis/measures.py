"""What corpus mode measures of one tune (its resemblance table, band counts,
saturation) and the sums that add up across tunes and parts (``Accumulators``): among
them each unit's sum of every quantity (the corpus means unit ablation can hold units
at) and the direct logit attribution of the top layer's units by type of the token that
came next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from folkrnn_lens.interventions.attribution import contributions, top_units
from folkrnn_lens.matrices.maths import band_counts, softmax_l1_distances
from folkrnn_lens.names import GATES, QUANTITIES, matrix_kind
from folkrnn_lens.names import band as band_of
from folkrnn_lens.resemblance.settings import Settings, gramians_of
from folkrnn_lens.tokens.format import TOKEN_TYPES, bar_indices, token_type

FIXED_POINT = float(2**24)
"""Sums of floats are kept as integers of 2^-24: integer addition does not depend on the
order, so any split of a corpus into parts gives the same bits (a tune's own sum is
rounded once, to 6e-8)."""


def fixed(values: np.ndarray) -> np.ndarray:
    """Float64 sums as int64 counts of 2^-24."""
    return np.round(np.asarray(values, np.float64) * FIXED_POINT).astype(np.int64)


def unfixed(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, np.float64) / FIXED_POINT


@dataclass(frozen=True)
class Readout:
    """What the direct logit attribution needs of the model: its output weights
    (H, V), its vocabulary's indices, and how many top units a step counts."""

    W_out: np.ndarray
    token2idx: dict[str, int]
    top_units: int = 10

    @classmethod
    def of(cls, model, top: int = 10) -> Readout:
        return cls(model.W_out.detach().cpu().double().numpy(), dict(model.token2idx), top)


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

    def __init__(
        self,
        settings: Settings,
        matrix_names: list[str],
        max_bars: int,
        n_units: int,
        n_layers: int = 3,
        readout: Readout | None = None,
    ):
        layers, gates = len(settings.layers), len(GATES)
        self.matrix_names = matrix_names
        self.readout = readout
        self.unit_below = np.zeros((layers, gates, n_units), np.int64)  # steps below low
        self.unit_above = np.zeros((layers, gates, n_units), np.int64)
        self.unit_steps = np.zeros(1, np.int64)
        self.bar_sums = np.zeros((len(matrix_names), max_bars, max_bars))
        self.bar_tunes = np.zeros((len(matrix_names), max_bars, max_bars), np.int64)
        # every layer's every quantity, per unit, over every step (fixed point)
        self.unit_sums = np.zeros((n_layers, len(QUANTITIES), n_units), np.int64)
        # the top layer's direct logit attribution, per type of the token that came next
        self.attribution_sums = np.zeros((len(TOKEN_TYPES), n_units), np.int64)  # fixed point
        self.attribution_top = np.zeros((len(TOKEN_TYPES), n_units), np.int64)  # steps in the top
        self.attribution_steps = np.zeros(len(TOKEN_TYPES), np.int64)

    def add_units(self, capture) -> None:
        """Each unit's sum of every quantity over the tune's steps."""
        for layer in range(1, self.unit_sums.shape[0] + 1):
            for q, quantity in enumerate(QUANTITIES):
                values = capture.quantity(layer, quantity)
                self.unit_sums[layer - 1, q] += fixed(values.sum(axis=0, dtype=np.float64))

    def add_attribution(self, capture) -> None:
        """h_t[j] W_out[j, y_t] of the top layer's units, summed per type of y_t, and how
        often each unit is among the ``readout.top_units`` that push y_t most."""
        if self.readout is None:
            return
        top_layer = self.unit_sums.shape[0]
        targets = np.array([self.readout.token2idx[token] for token in capture.output_tokens])
        pushes = contributions(capture.quantity(top_layer, "h"), self.readout.W_out, targets)
        leaders = top_units(pushes, self.readout.top_units)
        types = np.array([TOKEN_TYPES.index(token_type(token)) for token in capture.output_tokens])
        for k in range(len(TOKEN_TYPES)):
            chosen = types == k
            self.attribution_steps[k] += int(chosen.sum())
            self.attribution_sums[k] += fixed(pushes[chosen].sum(axis=0))
            np.add.at(self.attribution_top[k], leaders[chosen].ravel(), 1)

    def save(self, path: str | Path, more: dict[str, np.ndarray] | None = None) -> None:
        """Every sum to ``path``, with ``more`` arrays (the selectivity's) beside them."""
        np.savez(
            path,
            **(more or {}),
            matrix_names=np.array(self.matrix_names),
            unit_below=self.unit_below,
            unit_above=self.unit_above,
            unit_steps=self.unit_steps,
            bar_sums=self.bar_sums,
            bar_tunes=self.bar_tunes,
            unit_sums=self.unit_sums,
            attribution_sums=self.attribution_sums,
            attribution_top=self.attribution_top,
            attribution_steps=self.attribution_steps,
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

    accumulators.add_units(capture)
    accumulators.add_attribution(capture)
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
