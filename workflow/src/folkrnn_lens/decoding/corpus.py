"""Linear probes over a corpus analysis: for every probed layer and quantity, how well a
probe decodes each musical feature from the sampled states of held-out tunes, against
its control task and the majority class (``decoding.parquet``); and how many units the
bar phase needs (``bar_clock.parquet``): the held-out R^2 of (cos, sin) of the phase
from the k most phase-selective units, k = 1, 2, 4, ... up to the whole layer.

The tunes, not the steps, are split into training and test sets: steps of one tune
share its meter, mode and melody, so a step-level split would let a probe recognise the
tune instead of reading the feature.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from folkrnn_lens.decoding.linear import control_labels, fit_probe, majority_accuracy, ridge_r2
from folkrnn_lens.decoding.samples import load_states
from folkrnn_lens.selectivity.measures import PHASE

log = logging.getLogger(__name__)

TABLES = ("decoding", "bar_clock")
"""The tables of a corpus analysis's probes (``<name>.parquet``)."""

FIGURES = ("decoding", "bar_clock")
"""Their figures (``figures/<name>.png``)."""


@dataclass(frozen=True)
class Plan:
    """What a corpus analysis's ``decoding`` section asks for, with the layers known."""

    layers: tuple[int, ...]
    quantities: tuple[str, ...]
    features: tuple[str, ...]
    steps_per_tune: int
    phase_bins: int
    test_fraction: float
    l2: float
    iterations: int
    seed: int

    @classmethod
    def from_config(cls, section: dict, n_layers: int) -> Plan | None:
        if not section.get("enabled", True):
            return None
        layers = tuple(section.get("layers") or range(1, n_layers + 1))
        lists = {key: tuple(section[key]) for key in ("quantities", "features")}
        names = ("steps_per_tune", "phase_bins", "test_fraction", "l2", "iterations", "seed")
        return cls(layers, **lists, **{key: section[key] for key in names})

    def columns(self) -> list[tuple[int, str]]:
        return [(layer, quantity) for layer in self.layers for quantity in self.quantities]


def feature_labels(features: pd.DataFrame, feature: str, phase_bins: int) -> pd.Series:
    """A feature's label at every step, missing where the step has none (the header's
    bar phase, a rest's scale degree); the bar phase as its bin of ``phase_bins``."""
    column = features[feature]
    if feature == PHASE:
        bins = np.floor(column.to_numpy(float) * phase_bins)
        return pd.Series(bins, index=features.index).astype("Int16")
    return column


def split_tunes(tune_ids: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """The test set's tune ids: a seeded ``test_fraction`` of the tunes (at least one,
    and at least one left to train on)."""
    tunes = np.unique(tune_ids)
    if len(tunes) < 2:
        raise ValueError(f"probes need at least two tunes to hold one out; this analysis has {len(tunes)}")
    count = min(max(1, round(test_fraction * len(tunes))), len(tunes) - 1)
    return np.sort(np.random.default_rng([seed, 2]).permutation(tunes)[:count])


def decode_features(x, features: pd.DataFrame, test: np.ndarray, plan: Plan) -> list[dict]:
    """Every feature's probe and control probe on one layer and quantity's states ``x``,
    rows aligned with ``features``; ``test``: whether each row is a held-out tune's."""
    rows = []
    tokens = features["input_token"].to_numpy(dtype=object)
    for feature in plan.features:
        labels = feature_labels(features, feature, plan.phase_bins)
        defined = labels.notna().to_numpy()
        y = labels.to_numpy(dtype=object)
        train, held = defined & ~test, defined & test
        if len(set(y[train])) == 0 or not held.any():
            log.warning("feature %s: no labelled steps to train or test on; its probe is left out", feature)
            continue
        y = np.array([str(v) for v in y], dtype=object)  # one sortable type per feature
        x_train, x_held = x[train], x[held]  # copied once for both probes
        probe = fit_probe(x_train, y[train], plan.l2, plan.iterations)
        control_map = control_labels(tokens, y[train], plan.seed, feature)
        control = np.array([control_map[t] for t in tokens], dtype=object)
        control_probe = fit_probe(x_train, control[train], plan.l2, plan.iterations)
        accuracy = probe.accuracy(x_held, y[held])
        control_accuracy = control_probe.accuracy(x_held, control[held])
        rows.append(
            {
                "feature": feature,
                "n_classes": len(probe.classes),
                "n_train": int(train.sum()),
                "n_test": int(held.sum()),
                "train_accuracy": probe.accuracy(x_train, y[train]),
                "accuracy": accuracy,
                "control_accuracy": control_accuracy,
                "selectivity": accuracy - control_accuracy,
                "majority_accuracy": majority_accuracy(y[train], y[held]),
            }
        )
    return rows


def powers_of_two(units: int) -> list[int]:
    """1, 2, 4, ... below ``units``, and ``units`` itself."""
    return [k for k in (2**e for e in range(units.bit_length())) if k < units] + [units]


def bar_clock(x, phase: np.ndarray, test: np.ndarray, l2: float) -> list[dict]:
    """Held-out R^2 of (cos, sin) of the bar phase decoded from the k units whose own
    R^2 on it (the training steps') is largest, for k = 1, 2, 4, ... and every unit,
    and its share of the best R^2 of any k."""
    defined = np.isfinite(phase)
    target = np.column_stack([np.cos(2 * np.pi * phase), np.sin(2 * np.pi * phase)])
    train, held = defined & ~test, defined & test
    if train.sum() < 3 or held.sum() < 3:
        return []
    x_train, x_held = x[train], x[held]
    ranking = np.argsort(-unit_phase_r2(x_train, phase[train]), kind="stable")
    rows = []
    for k in powers_of_two(x.shape[1]):
        chosen = ranking[:k]
        r2 = ridge_r2(x_train[:, chosen], target[train], x_held[:, chosen], target[held], l2)
        rows.append({"k": k, "r2_test": r2, "top_units": " ".join(map(str, chosen[:8]))})
    best = max(row["r2_test"] for row in rows)  # the whole layer may overfit: not always it
    for row in rows:
        row["share_of_best"] = row["r2_test"] / best if best > 0 else np.nan
    return rows


def unit_phase_r2(x: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Each unit's R^2 on (cos, sin) of the phase: the selectivity table's statistic."""
    design = np.column_stack([np.ones(len(phase)), np.cos(2 * np.pi * phase), np.sin(2 * np.pi * phase)])
    x = np.asarray(x, np.float64)
    fitted = design @ np.linalg.lstsq(design, x, rcond=None)[0]
    centred = x - x.mean(axis=0)
    total = (centred**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1 - ((x - fitted) ** 2).sum(axis=0) / total, 0.0)


def decode_corpus(
    state_paths: list[str | Path], features_path: str | Path, plan: Plan
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The decoding and bar-clock tables of a corpus analysis, one layer and quantity's
    states in memory at a time."""
    decoding, clock = [], []
    for layer, quantity in plan.columns():
        started = time.perf_counter()
        keys, x = load_states(state_paths, layer, quantity)
        features = _labelled(features_path, keys, plan)
        tune_ids = features["tune_id"].to_numpy()
        if len(np.unique(tune_ids)) < 2:
            log.warning(
                "probes need at least two tunes to hold one out; %d steps of one tune sampled", len(keys)
            )
            return _empty()
        test = np.isin(tune_ids, split_tunes(tune_ids, plan.test_fraction, plan.seed))
        identity = {
            "layer": layer,
            "quantity": quantity,
            "n_train_tunes": len(np.unique(tune_ids[~test])),
            "n_test_tunes": len(np.unique(tune_ids[test])),
        }
        decoding += [identity | row for row in decode_features(x, features, test, plan)]
        phase = features[PHASE].to_numpy(float)
        clock += [identity | row for row in bar_clock(x, phase, test, plan.l2)]
        seconds = time.perf_counter() - started
        log.info("layer %d %s: %d steps decoded in %.1f s", layer, quantity, len(x), seconds)
    decoding, clock = (
        pd.DataFrame(decoding, columns=DECODING_COLUMNS),
        pd.DataFrame(clock, columns=CLOCK_COLUMNS),
    )
    return _typed(decoding), _typed(clock)


IDENTITY = ["layer", "quantity", "n_train_tunes", "n_test_tunes"]
DECODING_COLUMNS = IDENTITY + [
    "feature", "n_classes", "n_train", "n_test", "train_accuracy", "accuracy", "control_accuracy",
    "selectivity", "majority_accuracy",
]  # fmt: skip
CLOCK_COLUMNS = IDENTITY + ["k", "r2_test", "top_units", "share_of_best"]


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as integers, whether or not the table has rows."""
    kinds = {"layer": np.int8, "n_train_tunes": np.int32, "n_test_tunes": np.int32, "n_classes": np.int16,
             "n_train": np.int64, "n_test": np.int64, "k": np.int16}  # fmt: skip
    return table.astype({c: kinds[c] for c in table.columns if c in kinds})


def _labelled(features_path, keys: np.ndarray, plan: Plan) -> pd.DataFrame:
    """The features of the sampled steps, in the states' order."""
    wanted = {"tune_id", "step", "input_token", PHASE, *plan.features}
    features = pd.read_parquet(features_path, columns=sorted(wanted))
    sampled = pd.DataFrame({"tune_id": keys[:, 0].astype(np.int32), "step": keys[:, 1].astype(np.int32)})
    merged = sampled.merge(features, on=["tune_id", "step"], how="left", validate="one_to_one")
    if merged["input_token"].isna().any():
        missing = merged.loc[merged["input_token"].isna(), ["tune_id", "step"]].head(3).to_dict("records")
        raise ValueError(f"{features_path}: no features for sampled steps {missing}")
    return merged


def corpus_decoding(
    state_paths: list[str | Path],
    features_path: str | Path,
    tunes_path: str | Path,
    unit_means_path: str | Path,
    section: dict,
    out_dir: str | Path,
    name: str,
) -> None:
    """What the rule calls: a corpus analysis's probes (its ``decoding`` ``section``),
    their tables and figures in ``out_dir``; the aggregate's unit means say how many
    layers the model has."""
    from folkrnn_lens.corpus_analysis import figures as corpus_figures

    out_dir = Path(out_dir)
    n_layers = int(pd.read_parquet(unit_means_path, columns=["layer"])["layer"].max())
    plan = Plan.from_config(section, n_layers)
    tables = decode_corpus(state_paths, features_path, plan) if plan else _empty()
    for table_name, table in zip(TABLES, tables):
        table.to_parquet(out_dir / f"{table_name}.parquet", index=False)
    tunes = pd.read_parquet(tunes_path, columns=["status"])
    title = f"{name}: {int((tunes['status'] == 'ok').sum())} tunes"
    corpus_figures.decoding(tables[0], out_dir / "figures" / "decoding.png", title)
    corpus_figures.bar_clock(tables[1], out_dir / "figures" / "bar_clock.png", title)


def _empty() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _typed(pd.DataFrame(columns=DECODING_COLUMNS)), _typed(pd.DataFrame(columns=CLOCK_COLUMNS))
