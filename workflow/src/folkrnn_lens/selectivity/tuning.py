"""Bar-phase tuning curves: each unit's mean activation as a function of where in the bar
the step's event starts, in ``bins`` equal bins of the bar phase, with a confidence band;
summed tune by tune like the selectivity (fixed-point integers: any split into parts
gives the same bits)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from folkrnn_lens.corpus_analysis.measures import fixed, unfixed

Z95 = 1.959964
"""The normal quantile of a two-sided 95% band."""


@dataclass
class TuningSums:
    """Per bar-phase bin: the steps, and each unit's sum and sum of squares."""

    bins: int
    units: int

    def __post_init__(self):
        self.counts = np.zeros(self.bins, np.int64)
        self.sums = np.zeros((self.bins, self.units), np.int64)
        self.squares = np.zeros((self.bins, self.units), np.int64)

    def add(self, x: np.ndarray, phase: np.ndarray) -> None:
        """One tune: ``x`` (n, U), ``phase`` (n,) in [0, 1), NaN where undefined."""
        phase = np.asarray(phase, float)
        defined = np.isfinite(phase)
        x = np.asarray(x, np.float64)[defined]
        index = np.minimum((phase[defined] * self.bins).astype(int), self.bins - 1)
        members = np.zeros((len(index), self.bins))
        members[np.arange(len(index)), index] = 1.0
        self.counts += members.sum(axis=0).astype(np.int64)
        self.sums += fixed(members.T @ x)
        self.squares += fixed(members.T @ (x * x))

    def table(self, units: list[int] | None = None) -> pd.DataFrame:
        """One row per (unit, bin): the bin's centre, steps, mean, and a 95% band of the
        mean (± 1.96 standard errors; consecutive steps are not independent, so read
        it as a lower bound on the uncertainty)."""
        units = list(range(self.units)) if units is None else list(units)
        n = self.counts[:, None].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = unfixed(self.sums)[:, units] / n
            variance = unfixed(self.squares)[:, units] / n - mean**2
            half = Z95 * np.sqrt(np.maximum(variance, 0) / np.maximum(n - 1, 1))
        centres = (np.arange(self.bins) + 0.5) / self.bins
        return pd.DataFrame(
            {
                "unit": np.repeat(np.asarray(units, np.int16), self.bins),
                "bin": np.tile(np.arange(self.bins, dtype=np.int16), len(units)),
                "phase": np.tile(centres, len(units)),
                "n_steps": np.tile(self.counts, len(units)),
                "mean": mean.T.ravel(),
                "low": (mean - half).T.ravel(),
                "high": (mean + half).T.ravel(),
            }
        )
