"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and
Understanding Recurrent Networks"): for each unit of a gate, the fraction of
steps it spends left-saturated (below the low threshold of config's
``resemblance.saturation``: nearly closed) and right-saturated (above its high:
nearly open). Units far up the right axis act as integrators (an
always-open forget gate keeps information); units on both axes switch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def saturation_fractions(values: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Per unit of an (n_steps, n_units) gate: fraction of steps < low and > high."""
    values = np.asarray(values)
    return (values < low).mean(axis=0), (values > high).mean(axis=0)


def saturation_table(gates: dict[tuple[int, str], np.ndarray], low: float, high: float) -> pd.DataFrame:
    """One row per (layer, gate, unit) from {(layer, gate): (n_steps, n_units)}."""
    frames = []
    for (layer, gate), values in sorted(gates.items()):
        below, above = saturation_fractions(values, low, high)
        frames.append(
            pd.DataFrame(
                {
                    "layer": np.int8(layer),
                    "gate": gate,
                    "unit": np.arange(len(below), dtype=np.int32),
                    "n_steps": np.int32(len(values)),
                    "frac_below": below.astype(np.float32),
                    "frac_above": above.astype(np.float32),
                }
            )
        )
    columns = ["layer", "gate", "unit", "n_steps", "frac_below", "frac_above"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
