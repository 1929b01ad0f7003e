"""Sturm's bar-period analysis of the units: how much of a unit's variation over a tune
repeats once a bar. Bars hold different numbers of steps (a bar of crotchets reads
fewer tokens than one of quavers), so a Fourier transform over the steps smears the bar
period over many frequencies. Each tune is therefore resampled on its bar position
(bar index plus bar phase) at ``per_bar`` samples a bar, over its whole bars only; the
bar period is then exactly one bin (bin ``n_bars``) of the resampled series' spectrum.

Per tune and unit: ``share``, the share of the unit's variance in that bin (Parseval:
the bin and its mirror, so a pure bar-period sinusoid gives 1), ``flat_share`` = 2 /
(M - 1), what a flat spectrum of M samples gives, and ``peak_ratio``, the bar bin's
power over its neighbours' (``neighbours``). ``PeriodSums`` sums them tune by tune as
fixed-point integers, like the tuning curves, so any split of a corpus into parts adds
up to the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from folkrnn_lens.corpus_analysis.measures import fixed, unfixed
from folkrnn_lens.selectivity.tuning import Z95

PER_BAR = 16
"""Samples a bar: a semiquaver's resolution in 4/4, above any folk-rnn note density."""

ARRAYS = (
    "tunes",
    "counts",
    "shares",
    "share_squares",
    "flat_shares",
    "log_ratios",
    "log_ratio_squares",
    "population_counts",
    "population_sums",
)
"""PeriodSums' arrays: stored in an .npz and summed across parts."""

_FLOOR = 1e-12
"""The peak ratio's floor, relative to the unit's mean power a bin: keeps log(ratio)
finite for a pure sinusoid (no power beside the bar bin) or no power at the bar."""


def bar_position(bar: np.ndarray, phase: np.ndarray, bar_line: np.ndarray) -> np.ndarray:
    """Each step's position in bars, ``bar + phase``, NaN where the phase is (the header,
    ``</s>``), made non-decreasing so that the steps can be resampled in order.

    A bar line has phase 0 but the index of the bar it *closes* (``bar_indices``), so
    ``bar + phase`` would jump back to that bar's start: it takes instead the position of
    the next event (the bar it opens; a leading ``|:`` the pickup's first note), or the
    end of its bar where no event follows. A bar longer than the meter's wraps round in
    phase (``bar_phases``), the one remaining way back; those steps are held at the
    position already reached (``np.maximum.accumulate``), i.e. pooled with the step
    before the wrap."""
    bar, phase = np.asarray(bar, float), np.asarray(phase, float)
    defined = np.isfinite(phase)
    line = np.asarray(bar_line, bool)[defined]
    u = (bar + phase)[defined]
    following = pd.Series(np.where(line, np.nan, u)).bfill().to_numpy()
    u = np.where(line, np.where(np.isfinite(following), following, bar[defined] + 1), u)
    position = np.full(len(phase), np.nan)
    position[defined] = np.maximum.accumulate(u) if len(u) else u
    return position


def merge_positions(x: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct defined positions and the mean of ``x`` (n, U) over the steps at each
    (a note and its length, a bar line and the next note: one moment of the music read
    in several tokens). ``position`` must be non-decreasing where defined."""
    defined = np.isfinite(position)
    u, x = position[defined], np.asarray(x, np.float64)[defined]
    if np.any(np.diff(u) < 0):
        raise ValueError("positions must be non-decreasing (bar_position makes them so)")
    starts = np.flatnonzero(np.r_[True, np.diff(u) > 0]) if len(u) else np.zeros(0, int)
    counts = np.diff(np.r_[starts, len(u)])
    means = np.add.reduceat(x, starts, axis=0) / counts[:, None] if len(u) else x
    return u[starts], means


def resample_on_bars(x: np.ndarray, position: np.ndarray, per_bar: int = PER_BAR):
    """(grid, y): ``x`` (n, U) interpolated linearly, unit by unit, between the merged
    positions onto ``per_bar`` samples a bar from the first whole bar's start to the
    last whole bar's end (end excluded): ceil(first position) .. floor(last). The pickup
    and a last partial bar are left out, so the series covers whole bars and the bar
    period is one bin of its spectrum. None for fewer than 2 whole bars."""
    knots, values = merge_positions(x, np.asarray(position, float))
    if len(knots) < 2:
        return None
    first, last = int(np.ceil(knots[0])), int(np.floor(knots[-1]))
    if last - first < 2:
        return None
    grid = first + np.arange((last - first) * per_bar) / per_bar
    left = np.clip(np.searchsorted(knots, grid, side="right") - 1, 0, len(knots) - 2)
    t = ((grid - knots[left]) / (knots[left + 1] - knots[left]))[:, None]
    return grid, values[left] + t * (values[left + 1] - values[left])  # constant stays exact


def neighbours(n_bars: int, half: int) -> np.ndarray:
    """The bins the bar bin's peak is compared with: within ± max(1, n_bars // 4) of it
    (frequencies within a quarter cycle a bar of one cycle a bar), the bar bin, bin 0
    and bins past ``half`` (the Nyquist bin) left out. A quarter cycle keeps out the
    half-bar (2 cycles a bar) and two-bar (half a cycle) periods, which are musical
    periods of their own, where a tune is long enough (4 bars or more)."""
    w = max(1, n_bars // 4)
    bins = np.arange(n_bars - w, n_bars + w + 1)
    return bins[(bins != n_bars) & (bins > 0) & (bins <= half)]


def bar_spectrum(y: np.ndarray, n_bars: int) -> dict:
    """Per unit of ``y`` (M, U), the resampled series of ``n_bars`` whole bars: ``power``
    (M // 2 + 1, U), |rfft|^2 of the mean-removed series; ``share``, ``peak_ratio``
    (module docstring; NaN for a unit constant over the tune), ``bar_power`` and
    ``total_power`` (the bar's and all non-DC power, two-sided, for the population's
    share) and ``flat_share`` (a number)."""
    y = np.asarray(y, np.float64)
    M = len(y)
    if not 0 < n_bars < M / 2:
        raise ValueError(f"the bar bin {n_bars} must lie within 1 .. {M // 2 - 1} (M = {M})")
    centred = y - y.mean(axis=0)
    power = np.abs(np.fft.rfft(centred, axis=0)) ** 2
    total = M * (centred**2).sum(axis=0)  # Parseval: all non-DC bins, both sides
    bar = 2 * power[n_bars]
    floor = _FLOOR * total / max(M - 1, 1)
    still = np.ptp(y, axis=0) <= 1e-12 * np.abs(y).max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (power[n_bars] + floor) / (power[neighbours(n_bars, M // 2)].mean(axis=0) + floor)
        share = np.where(still, np.nan, bar / total)
    return {
        "power": power,
        "share": share,
        "peak_ratio": np.where(still, np.nan, ratio),
        "bar_power": np.where(still, 0.0, bar),
        "total_power": np.where(still, 0.0, total),
        "flat_share": 2 / (M - 1),
    }


def tune_spectrum(x, bar, phase, bar_line, per_bar: int = PER_BAR) -> dict | None:
    """``bar_spectrum`` of one tune's activations ``x`` (n, U) from its steps' ``bar``,
    ``bar_phase`` and whether each is a bar line; None below 2 whole bars."""
    resampled = resample_on_bars(x, bar_position(bar, phase, bar_line), per_bar)
    if resampled is None:
        return None
    grid, y = resampled
    return bar_spectrum(y, len(grid) // per_bar)


@dataclass
class PeriodSums:
    """Over tunes, per unit: the tunes where it varies, and fixed-point sums of its
    share, share^2, flat share, log peak ratio and its square; and the population's
    (all units') share, its square and the flat share, over the tunes where any unit
    varies. The peak ratio is summed as a log: it is a ratio with a long right tail (a
    clean bar period has almost nothing beside it), so its mean is the geometric one."""

    units: int
    per_bar: int = PER_BAR

    def __post_init__(self):
        U = self.units
        self.tunes = np.zeros(1, np.int64)
        self.counts = np.zeros(U, np.int64)
        for name in ("shares", "share_squares", "flat_shares", "log_ratios", "log_ratio_squares"):
            setattr(self, name, np.zeros(U, np.int64))
        self.population_counts = np.zeros(1, np.int64)
        self.population_sums = np.zeros(3, np.int64)  # share, share^2, flat share

    def add(self, x: np.ndarray, bar: np.ndarray, phase: np.ndarray, bar_line: np.ndarray) -> bool:
        """One tune: ``x`` (n, U), its steps' ``bar``, ``bar_phase`` and whether each is a
        bar line; whether it was added (not below 2 whole bars)."""
        spectrum = tune_spectrum(x, bar, phase, bar_line, self.per_bar)
        if spectrum is None:
            return False
        self.tunes += 1
        self._add_units(spectrum)
        self._add_population(spectrum)
        return True

    def _add_units(self, spectrum: dict) -> None:
        share, log_ratio = spectrum["share"], np.log(spectrum["peak_ratio"])
        defined = np.isfinite(share)
        share, log_ratio = np.where(defined, share, 0.0), np.where(defined, log_ratio, 0.0)
        self.counts += defined
        self.shares += fixed(share)
        self.share_squares += fixed(share**2)
        self.flat_shares += fixed(defined * spectrum["flat_share"])
        self.log_ratios += fixed(log_ratio)
        self.log_ratio_squares += fixed(log_ratio**2)

    def _add_population(self, spectrum: dict) -> None:
        total = spectrum["total_power"].sum()
        if total > 0:
            share = spectrum["bar_power"].sum() / total
            self.population_counts += 1
            self.population_sums += fixed([share, share**2, spectrum["flat_share"]])

    def table(self) -> pd.DataFrame:
        """One row per unit: its tunes, mean share with a 95% band of the mean over
        tunes, mean flat share, and the geometric mean peak ratio with its band."""
        n = self.counts.astype(float)
        share, share_half = _mean_band(self.shares, self.share_squares, n)
        log_ratio, log_half = _mean_band(self.log_ratios, self.log_ratio_squares, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            flat = unfixed(self.flat_shares) / n
        return pd.DataFrame(
            {
                "unit": np.arange(self.units, dtype=np.int16),
                "n_tunes": self.counts,
                "mean_share": share,
                "share_low": share - share_half,
                "share_high": share + share_half,
                "flat_share": flat,
                "mean_peak_ratio": np.exp(log_ratio),
                "peak_ratio_low": np.exp(log_ratio - log_half),
                "peak_ratio_high": np.exp(log_ratio + log_half),
            }
        )

    def population(self) -> dict:
        """The population's share: per tune, all units' bar power over all their non-DC
        power (units weighted by their variance), its mean over tunes with a 95% band,
        and the mean flat share."""
        n = self.population_counts.astype(float)
        sums, squares = self.population_sums[:1], self.population_sums[1:2]
        mean, half = _mean_band(sums, squares, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            flat = unfixed(self.population_sums[2]) / n[0]
        return {
            "n_tunes": int(n[0]),
            "mean_share": float(mean[0]),
            "share_low": float(mean[0] - half[0]),
            "share_high": float(mean[0] + half[0]),
            "flat_share": float(flat),
        }


def _mean_band(sums: np.ndarray, squares: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean over tunes and the half-width of its 95% band (± 1.96 standard errors)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = unfixed(sums) / n
        variance = unfixed(squares) / n - mean**2
        return mean, Z95 * np.sqrt(np.maximum(variance, 0) / np.maximum(n - 1, 1))
