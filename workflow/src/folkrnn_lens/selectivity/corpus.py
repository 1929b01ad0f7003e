"""Unit selectivity over a corpus analysis: the sums each part adds tune by tune (kept
in the part's ``accumulators.npz`` beside the others, under ``selectivity.*`` keys, so
the parts add up like them), and the tables the aggregate makes of them: selectivity per
feature, bar-phase tuning curves and the bar-period analysis of each layer and quantity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from folkrnn_lens.features.steps import FINE_TYPES
from folkrnn_lens.selectivity.measures import (
    PHASE,
    FeatureSums,
    benjamini_hochberg,
    pooled_p_values,
    tune_orders,
)
from folkrnn_lens.selectivity.period import ARRAYS as PERIOD_ARRAYS
from folkrnn_lens.selectivity.period import PeriodSums
from folkrnn_lens.selectivity.tuning import TuningSums

CATEGORIES = {
    "input_type": FINE_TYPES,
    "next_type": FINE_TYPES,
    "pitch_class": tuple(range(12)),
    "scale_degree": tuple(range(1, 8)),
    "octave": tuple(range(1, 9)),
    "next_is_bar": (False, True),
    PHASE: ("cos", "sin"),
}
"""Each feature's categories (the phase: its two terms)."""

ARRAYS = ("steps", "total", "squares", "counts", "design", "design_total", "sums", "null_sums")
TUNING_ARRAYS = ("counts", "sums", "squares")
KEY, TUNING, PERIOD = "selectivity", "tuning", "period"
STORED = {TUNING: TUNING_ARRAYS, PERIOD: PERIOD_ARRAYS}
"""The arrays each kind of sums keeps (a feature's: ``ARRAYS``)."""


@dataclass(frozen=True)
class Plan:
    """What a corpus analysis's ``selectivity`` section asks for, with the layers known."""

    layers: tuple[int, ...]
    quantities: tuple[str, ...]
    features: tuple[str, ...]
    shuffles: int
    seed: int
    fdr: float
    tuning_bins: int = 12

    @classmethod
    def from_config(cls, section: dict, n_layers: int) -> Plan | None:
        if not section.get("enabled", True):
            return None
        layers = tuple(section.get("layers") or range(1, n_layers + 1))
        fields = {key: tuple(section[key]) for key in ("quantities", "features")}
        settings = {key: section[key] for key in ("shuffles", "seed", "fdr", "tuning_bins")}
        return cls(layers, **fields, **settings)

    def keys(self):
        return [(layer, q, f) for layer in self.layers for q in self.quantities for f in self.features]


def new_sums(plan: Plan, units: int) -> dict[tuple, FeatureSums | TuningSums | PeriodSums]:
    """Every (layer, quantity, feature)'s sums, and each (layer, quantity)'s bar-phase
    tuning sums and bar-period sums under the keys (layer, quantity, TUNING / PERIOD)."""
    sums = {key: FeatureSums(key[2], CATEGORIES[key[2]], units, plan.shuffles) for key in plan.keys()}
    for layer in plan.layers:
        for quantity in plan.quantities:
            sums[layer, quantity, TUNING] = TuningSums(plan.tuning_bins, units)
            sums[layer, quantity, PERIOD] = PeriodSums(units)
    return sums


def add_tune(
    sums: dict[tuple, FeatureSums], plan: Plan, tune_id: int, capture, features: pd.DataFrame
) -> None:
    """One tune's steps into every (layer, quantity, feature)'s sums; each feature's
    values and shuffles are prepared once for all the layers and quantities."""
    orders = tune_orders(tune_id, len(features), plan.shuffles, plan.seed)
    phase = features[PHASE].to_numpy(dtype=float)
    bars = (features["bar"].to_numpy(), phase, (features["input_type"] == "bar").to_numpy())
    prepared = {}
    for (layer, quantity, feature), feature_sums in sums.items():
        x = capture.quantity(layer, quantity)
        if feature == TUNING:
            feature_sums.add(x, phase)
            continue
        if feature == PERIOD:
            feature_sums.add(x, *bars)
            continue
        if feature not in prepared:
            prepared[feature] = feature_sums.prepare(_values(features[feature]), orders)
        feature_sums.add_prepared(x, prepared[feature])


def _values(column: pd.Series) -> np.ndarray:
    """A feature column as numbers (the phase, NaN where undefined) or objects (None)."""
    if column.name == PHASE:
        return column.to_numpy(dtype=float)
    return np.array([None if v is pd.NA else v for v in column.to_numpy(dtype=object)], dtype=object)


def to_arrays(sums: dict[tuple, FeatureSums]) -> dict[str, np.ndarray]:
    """The sums as named arrays, for ``accumulators.npz``."""
    return {
        f"{KEY}.{layer}.{q}.{f}.{name}": getattr(s, name)
        for (layer, q, f), s in sums.items()
        for name in STORED.get(f, ARRAYS)
    }


def from_arrays(arrays: dict[str, np.ndarray], plan: Plan, units: int) -> dict[tuple, FeatureSums]:
    sums = new_sums(plan, units)
    for (layer, q, f), feature_sums in sums.items():
        for name in STORED.get(f, ARRAYS):
            setattr(feature_sums, name, arrays[f"{KEY}.{layer}.{q}.{f}.{name}"])
    return sums


def selectivity_table(sums: dict[tuple, FeatureSums], fdr: float) -> pd.DataFrame:
    """One row per (layer, quantity, feature, unit): the statistic (eta squared, or the
    phase's R^2), the mean of its shuffles, the p-value against the layer's pooled
    shuffles, its Benjamini-Hochberg adjustment over the layer's units, and whether the
    unit is selected at ``fdr``."""
    frames = []
    for (layer, quantity, feature), feature_sums in sums.items():
        if feature in STORED:
            continue
        observed, null = feature_sums.statistic()
        p = pooled_p_values(observed, null)
        adjusted = benjamini_hochberg(p)
        frames.append(
            pd.DataFrame(
                {
                    "layer": np.int8(layer),
                    "quantity": quantity,
                    "feature": feature,
                    "unit": np.arange(len(observed), dtype=np.int16),
                    "statistic": "r2" if feature == PHASE else "eta2",
                    "value": observed,
                    "null_mean": null.mean(axis=0),
                    "p_value": p,
                    "p_bh": adjusted,
                    "selective": adjusted <= fdr,
                    "n_steps": np.int64(feature_sums.steps[0]),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def selectivity_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (layer, quantity, feature): how many units are selective, and the median and
    largest statistic over the units against the shuffles' mean."""
    grouped = table.groupby(["layer", "quantity", "feature"], sort=False)
    return (
        grouped.agg(
            n_units=("unit", "size"),
            n_selective=("selective", "sum"),
            median_value=("value", "median"),
            max_value=("value", "max"),
            median_null=("null_mean", "median"),
        )
        .reset_index()
        .assign(share_selective=lambda t: t["n_selective"] / t["n_units"])
    )


def tuning_table(sums: dict[tuple, FeatureSums | TuningSums]) -> pd.DataFrame:
    """Every unit's bar-phase tuning curve: one row per (layer, quantity, unit, bin)."""
    frames = [
        tuning.table().assign(layer=np.int8(layer), quantity=quantity)
        for (layer, quantity, feature), tuning in sums.items()
        if feature == TUNING
    ]
    table = pd.concat(frames, ignore_index=True)
    return table[["layer", "quantity", *[c for c in table.columns if c not in ("layer", "quantity")]]]


def period_tables(
    sums: dict[tuple, FeatureSums | TuningSums | PeriodSums],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sturm's bar-period analysis (``selectivity.period``): one row per (layer,
    quantity, unit), and one per (layer, quantity) for the population with its best
    unit and how many units' share lies above the flat spectrum's (their band's low end)."""
    units, population = [], []
    for (layer, quantity, feature), period in sums.items():
        if feature != PERIOD:
            continue
        table = period.table().assign(layer=np.int8(layer), quantity=quantity)
        units.append(table)
        best = table.loc[table["mean_share"].idxmax()] if table["mean_share"].notna().any() else None
        population.append(
            {"layer": np.int8(layer), "quantity": quantity, **period.population(),
             "best_unit": np.int16(best["unit"]) if best is not None else np.int16(-1),
             "best_unit_share": best["mean_share"] if best is not None else np.nan,
             "n_units_above_flat": int((table["share_low"] > table["flat_share"]).sum())}
        )  # fmt: skip
    table = pd.concat(units, ignore_index=True)
    first = ["layer", "quantity"]
    return table[first + [c for c in table.columns if c not in first]], pd.DataFrame(population)
