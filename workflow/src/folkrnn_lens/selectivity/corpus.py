"""Unit selectivity over a corpus analysis: the sums each part adds tune by tune (kept
in the part's ``accumulators.npz`` beside the others, under ``selectivity.*`` keys, so
the parts add up like them), and the tables the aggregate makes of them."""

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
KEY = "selectivity"


@dataclass(frozen=True)
class Plan:
    """What a corpus analysis's ``selectivity`` section asks for, with the layers known."""

    layers: tuple[int, ...]
    quantities: tuple[str, ...]
    features: tuple[str, ...]
    shuffles: int
    seed: int
    fdr: float

    @classmethod
    def from_config(cls, section: dict, n_layers: int) -> Plan | None:
        if not section.get("enabled", True):
            return None
        layers = tuple(section.get("layers") or range(1, n_layers + 1))
        fields = {key: tuple(section[key]) for key in ("quantities", "features")}
        return cls(layers, **fields, shuffles=section["shuffles"], seed=section["seed"], fdr=section["fdr"])

    def keys(self):
        return [(layer, q, f) for layer in self.layers for q in self.quantities for f in self.features]


def new_sums(plan: Plan, units: int) -> dict[tuple, FeatureSums]:
    return {key: FeatureSums(key[2], CATEGORIES[key[2]], units, plan.shuffles) for key in plan.keys()}


def add_tune(
    sums: dict[tuple, FeatureSums], plan: Plan, tune_id: int, capture, features: pd.DataFrame
) -> None:
    """One tune's steps into every (layer, quantity, feature)'s sums."""
    orders = tune_orders(tune_id, len(features), plan.shuffles, plan.seed)
    for (layer, quantity, feature), feature_sums in sums.items():
        values = features[feature].to_numpy(dtype=float if feature == PHASE else object)
        if feature != PHASE:
            values = np.array([None if v is pd.NA else v for v in values], dtype=object)
        feature_sums.add(capture.quantity(layer, quantity), values, orders)


def to_arrays(sums: dict[tuple, FeatureSums]) -> dict[str, np.ndarray]:
    """The sums as named arrays, for ``accumulators.npz``."""
    return {
        f"{KEY}.{layer}.{q}.{f}.{name}": getattr(s, name)
        for (layer, q, f), s in sums.items()
        for name in ARRAYS
    }


def from_arrays(arrays: dict[str, np.ndarray], plan: Plan, units: int) -> dict[tuple, FeatureSums]:
    sums = new_sums(plan, units)
    for (layer, q, f), feature_sums in sums.items():
        for name in ARRAYS:
            setattr(feature_sums, name, arrays[f"{KEY}.{layer}.{q}.{f}.{name}"])
    return sums


def selectivity_table(sums: dict[tuple, FeatureSums], fdr: float) -> pd.DataFrame:
    """One row per (layer, quantity, feature, unit): the statistic (eta squared, or the
    phase's R^2), the mean of its shuffles, the p-value against the layer's pooled
    shuffles, its Benjamini-Hochberg adjustment over the layer's units, and whether the
    unit is selected at ``fdr``."""
    frames = []
    for (layer, quantity, feature), feature_sums in sums.items():
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
