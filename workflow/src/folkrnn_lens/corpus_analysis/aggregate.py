"""Corpus mode, the parts together: the parts' tables concatenated (one part in
memory at a time) and their accumulators added up; per comparison, the
distribution over the tunes (``aggregate.parquet``), which layer resembles X^T X
most in how many tunes (``winners.parquet``), per-unit saturation over every step
(``unit_saturation.parquet``), each unit's mean of every quantity
(``unit_means.parquet``), the top layer's direct logit attribution by type of the
token that came next (``attribution.parquet``), the bar-aligned average matrices,
their figures; and two analyses set against each other (Mann-Whitney, Holm-adjusted).
"""

from __future__ import annotations

import json
import logging
from math import erfc, sqrt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from folkrnn_lens.corpus_analysis.measures import unfixed
from folkrnn_lens.corpus_analysis.part import PART_TABLES
from folkrnn_lens.names import GATES, QUANTITIES
from folkrnn_lens.resemblance.settings import Settings
from folkrnn_lens.resemblance.statistics import holm, ranks
from folkrnn_lens.resemblance.transcription import layers_and_quantities
from folkrnn_lens.selectivity.corpus import (
    PERIOD,
    from_arrays,
    period_tables,
    selectivity_summary,
    selectivity_table,
    tuning_table,
)
from folkrnn_lens.selectivity.corpus import Plan as SelectivityPlan
from folkrnn_lens.selectivity.period import PeriodSums
from folkrnn_lens.tokens.format import TOKEN_TYPES

log = logging.getLogger(__name__)


# ---- the parts together -------------------------------------------------------------


def combine_parts(part_dirs: list[str | Path], out_dir: str | Path) -> None:
    """Concatenate the parts' tables in tune order (the same rows in the same order
    however many jobs ran) and add up their accumulators, into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in PART_TABLES:
        tables = [pq.read_table(Path(part) / f"{name}.parquet") for part in part_dirs]
        filled = [table for table in tables if table.num_rows] or tables[:1]
        schema = _without_part(filled[0].schema)
        combined = pa.concat_tables([table.cast(schema) for table in filled])
        if combined.num_rows:
            combined = combined.sort_by("tune_id")  # stable: a tune's rows keep their order
        pq.write_table(combined, out_dir / f"{name}.parquet")
    total = None
    for part in part_dirs:
        with np.load(Path(part) / "accumulators.npz") as arrays:
            loaded = {key: arrays[key] for key in arrays.files}
        if total is None:
            total = loaded
        else:
            for key, value in loaded.items():
                if key != "matrix_names":
                    total[key] = total[key] + value
    np.savez(out_dir / "accumulators.npz", **total)


def _provenance(path: str | Path) -> dict:
    """The facts a part wrote into its tables' metadata (key ``folkrnn_lens``)."""
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata.get(b"folkrnn_lens", b"{}"))


def _without_part(schema: pa.Schema) -> pa.Schema:
    """A part's schema, its provenance metadata kept but for the part's number."""
    metadata = dict(schema.metadata or {})
    if b"folkrnn_lens" in metadata:
        facts = json.loads(metadata[b"folkrnn_lens"])
        facts.pop("part", None)
        metadata[b"folkrnn_lens"] = json.dumps(facts).encode()
    return schema.with_metadata(metadata)


def aggregate_resemblance(resemblance: pd.DataFrame, statistics: list[str], alpha: float) -> pd.DataFrame:
    """One row per (comparison, statistic) over the tunes: how many, the mean and
    quartiles; how far above its circular-shift null mean it is on average and in
    what share of tunes; and the share of tunes where its p-value is below
    ``alpha`` under each null, raw (one test per tune: about ``alpha`` by chance)
    and Holm-adjusted over the tune's comparisons."""
    keys = ["family", "a", "b", "shift"]
    rows = []
    for key, group in resemblance.groupby(keys, sort=False):
        for name in statistics:
            values = group[name].dropna()
            row = dict(zip(keys, key))
            row.update(
                statistic=name,
                n_tunes=int(len(values)),
                mean=float(values.mean()) if len(values) else np.nan,
                q25=float(values.quantile(0.25)) if len(values) else np.nan,
                median=float(values.median()) if len(values) else np.nan,
                q75=float(values.quantile(0.75)) if len(values) else np.nan,
            )
            excess = (group[name] - group[f"{name}_null_mean"]).dropna()
            row["mean_excess"] = float(excess.mean()) if len(excess) else np.nan
            row["share_above_null_mean"] = float((excess > 0).mean()) if len(excess) else np.nan
            for null in ("circular", "bars"):
                raw, adjusted = group[f"{name}_p_{null}"], group[f"{name}_p_{null}_holm"]
                tested = raw.notna()
                row[f"n_tested_{null}"] = int(tested.sum())
                # NaN where no tune was tested under this null (the columns are always there)
                row[f"share_p_{null}"] = float((raw[tested] < alpha).mean()) if tested.any() else np.nan
                row[f"share_p_{null}_holm"] = (
                    float((adjusted[tested] < alpha).mean()) if tested.any() else np.nan
                )
            rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("a", "b"):
        parsed = layers_and_quantities(table[column])
        table[f"{column}_layer"] = parsed["layer"].astype("Int8")
        table[f"{column}_quantity"] = parsed["quantity"]
    return table


def layer_winners(resemblance: pd.DataFrame, statistic: str) -> pd.DataFrame:
    """For each tune, shift and quantity, the layer whose Gramian resembles X^T X
    most; counted over tunes: one row per (shift, quantity, layer)."""
    onehot = resemblance[resemblance["family"] == "onehot"].dropna(subset=[statistic])
    parsed = layers_and_quantities(onehot["a"])
    onehot = onehot.assign(layer=parsed["layer"].astype(int), quantity=parsed["quantity"])
    best = onehot.loc[onehot.groupby(["tune_id", "shift", "quantity"])[statistic].idxmax()]
    counts = best.groupby(["shift", "quantity", "layer"]).size().rename("n_tunes").reset_index()
    totals = best.groupby(["shift", "quantity"]).size().rename("of_tunes").reset_index()
    counts = counts.merge(totals, on=["shift", "quantity"])
    counts["share"] = counts["n_tunes"] / counts["of_tunes"]
    counts.insert(0, "statistic", statistic)
    return counts


def unit_saturation(accumulators: dict, layers: list[int]) -> pd.DataFrame:
    """Per (layer, gate, unit): the fractions of all the corpus's steps below and above."""
    steps = int(accumulators["unit_steps"][0])
    frames = []
    for li, layer in enumerate(layers):
        for gi, gate in enumerate(GATES):
            below = accumulators["unit_below"][li, gi] / max(steps, 1)
            above = accumulators["unit_above"][li, gi] / max(steps, 1)
            frames.append(
                pd.DataFrame(
                    {
                        "layer": np.int8(layer),
                        "gate": gate,
                        "unit": np.arange(len(below), dtype=np.int32),
                        "n_steps": steps,
                        "frac_below": below.astype(np.float32),
                        "frac_above": above.astype(np.float32),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


AGGREGATE_TABLES = (
    "aggregate",
    "winners",
    "unit_saturation",
    "unit_means",
    "attribution",
    "selectivity",
    "selectivity_summary",
    "tuning",
    "bar_period",
    "bar_period_summary",
)
"""The tables the aggregate writes beside the parts' (``<name>.parquet``)."""

FIGURES = (
    "distributions",
    "winners",
    "bar_averages",
    "saturation",
    "attribution",
    "selectivity",
    "tuning",
    "bar_period",
)
"""The figures of a corpus analysis (``figures/<name>.png``)."""


def unit_means(accumulators: dict) -> pd.DataFrame:
    """One row per (layer, quantity, unit): the unit's mean over every step of every
    tune analysed, what unit ablation holds a unit at with ``value: mean`` over a corpus."""
    sums = unfixed(accumulators["unit_sums"])  # (L, Q, H)
    steps = int(accumulators["unit_steps"][0])
    L, Q, H = sums.shape
    return pd.DataFrame(
        {
            "layer": np.repeat(np.arange(1, L + 1), Q * H).astype(np.int8),
            "quantity": np.tile(np.repeat(QUANTITIES[:Q], H), L),
            "unit": np.tile(np.arange(H), L * Q).astype(np.int16),
            "mean": (sums / max(steps, 1)).ravel(),
            "n_steps": np.int64(steps),
        }
    )


def corpus_attribution(accumulators: dict, top_units: int) -> pd.DataFrame:
    """One row per (top-layer unit, type of the token that came next): over the steps
    predicting that type, the unit's mean direct push h_t[j] W_out[j, y_t] on its
    logit, how often it was among the ``top_units`` pushing it most, and that share."""
    sums = unfixed(accumulators["attribution_sums"])  # (types, H)
    top, steps = accumulators["attribution_top"], accumulators["attribution_steps"]
    T, H = sums.shape
    per_type = np.repeat(steps, H)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "unit": np.tile(np.arange(H), T).astype(np.int16),
                "token_type": np.repeat(TOKEN_TYPES[:T], H),
                "n_steps": per_type.astype(np.int64),
                "mean_contribution": np.where(per_type > 0, sums.ravel() / per_type, np.nan),
                "n_top": top.ravel().astype(np.int64),
                "share_top": np.where(per_type > 0, top.ravel() / per_type, np.nan),
                "top_units": np.int16(top_units),
            }
        )


def _no_selectivity() -> pd.DataFrame:
    """The selectivity table of an analysis that measures none: its columns, no rows."""
    columns = {"layer": np.int8, "quantity": object, "feature": object, "unit": np.int16, "statistic": object,
               "value": float, "null_mean": float, "p_value": float, "p_bh": float, "selective": bool,
               "n_steps": np.int64}  # fmt: skip
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})


def _no_tuning() -> pd.DataFrame:
    """The tuning table of an analysis that measures no selectivity: columns, no rows."""
    columns = {"layer": np.int8, "quantity": object, "unit": np.int16, "bin": np.int16, "phase": float,
               "n_steps": np.int64, "mean": float, "low": float, "high": float}  # fmt: skip
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})


def _no_period() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bar-period tables of an analysis that measures no selectivity: columns, no rows."""
    units, population = period_tables({(0, "", PERIOD): PeriodSums(0)})
    return units, population.iloc[0:0]


def bar_averages(accumulators: dict) -> dict[str, np.ndarray]:
    """The bar-aligned matrices averaged over the tunes that have both bars
    (NaN where none has)."""
    sums, tunes = accumulators["bar_sums"], accumulators["bar_tunes"]
    means = np.divide(sums, tunes, out=np.full_like(sums, np.nan), where=tunes > 0)
    names = [str(name) for name in accumulators["matrix_names"]]
    return {name: means[k] for k, name in enumerate(names)} | {"n_tunes": tunes[0]}


def mann_whitney(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """P(X > Y) + P(X = Y)/2 (the AUC, 0.5 when alike) and the two-sided p-value of
    the Mann-Whitney U test (normal approximation with tie correction)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return np.nan, np.nan
    combined = np.concatenate([x, y])
    r = ranks(combined)
    u = r[:n1].sum() - n1 * (n1 + 1) / 2
    _, tie_counts = np.unique(combined, return_counts=True)
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - np.sum(tie_counts**3 - tie_counts) / (n * (n - 1)))
    if variance <= 0:
        return u / (n1 * n2), np.nan
    z = (u - n1 * n2 / 2) / sqrt(variance)
    return u / (n1 * n2), erfc(abs(z) / sqrt(2))


def compare_corpora(
    first: pd.DataFrame, second: pd.DataFrame, statistics: list[str], labels: tuple[str, str]
) -> pd.DataFrame:
    """Per (comparison, statistic) present in both: each corpus's median and tune
    count, and how the two distributions differ (AUC = P(first > second), the
    Mann-Whitney p-value, Holm-adjusted over the rows)."""
    keys = ["family", "a", "b", "shift"]
    rows = []
    grouped = dict(iter(second.groupby(keys, sort=False)))
    for key, group in first.groupby(keys, sort=False):
        if key not in grouped:
            continue
        other = grouped[key]
        for name in statistics:
            x, y = group[name].dropna().to_numpy(), other[name].dropna().to_numpy()
            auc, p = mann_whitney(x, y)
            row = dict(zip(keys, key))
            row.update(
                statistic=name,
                **{
                    f"n_{labels[0]}": len(x),
                    f"median_{labels[0]}": float(np.median(x)) if len(x) else np.nan,
                },
                **{
                    f"n_{labels[1]}": len(y),
                    f"median_{labels[1]}": float(np.median(y)) if len(y) else np.nan,
                },
                auc=auc,
                p_value=p,
            )
            rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p_value"].to_numpy())
    return table


# ---- what the rules call ------------------------------------------------------------


def corpus_aggregate(
    part_dirs: list[str | Path],
    out_dir: str | Path,
    settings: Settings,
    name: str = "",
    selectivity: dict | None = None,
) -> None:
    """Combine the parts of a corpus analysis and write its aggregate tables and figures."""
    from folkrnn_lens.corpus_analysis import figures as corpus_figures

    out_dir = Path(out_dir)
    combine_parts(part_dirs, out_dir)
    tunes = pd.read_parquet(out_dir / "tunes.parquet", columns=["tune_id", "status", "reason"])
    if not (tunes["status"] == "ok").any():
        reasons = "; ".join(f"tune {t.tune_id}: {t.reason}" for t in tunes.head(3).itertuples())
        raise ValueError(
            f"corpus analysis {name!r}: none of its {len(tunes)} tunes could be analysed, so there is "
            f"nothing to aggregate ({reasons}; every reason: {Path(part_dirs[0]).parent}/*/tunes.parquet)"
        )
    resemblance = pd.read_parquet(out_dir / "resemblance.parquet")
    aggregate = aggregate_resemblance(resemblance, list(settings.statistics), settings.alpha)
    aggregate.to_parquet(out_dir / "aggregate.parquet", index=False)
    winners = pd.concat([layer_winners(resemblance, s) for s in settings.statistics], ignore_index=True)
    winners.to_parquet(out_dir / "winners.parquet", index=False)
    with np.load(out_dir / "accumulators.npz") as arrays:
        accumulators = {key: arrays[key] for key in arrays.files}
    units = unit_saturation(accumulators, list(settings.layers))
    units.to_parquet(out_dir / "unit_saturation.parquet", index=False)
    unit_means(accumulators).to_parquet(out_dir / "unit_means.parquet", index=False)
    top_units = int(_provenance(out_dir / "tunes.parquet").get("attribution_top_units", 10))
    attribution = corpus_attribution(accumulators, top_units)
    attribution.to_parquet(out_dir / "attribution.parquet", index=False)
    averages = bar_averages(accumulators)
    np.savez(out_dir / "bar_averages.npz", **averages)
    figures = out_dir / "figures"
    figures.mkdir(exist_ok=True)
    title = f"{name}: {int((tunes['status'] == 'ok').sum())} tunes"
    corpus_figures.distributions(aggregate, resemblance, settings, figures / "distributions.png", title)
    corpus_figures.winners(winners, settings, figures / "winners.png", title)
    corpus_figures.bar_averages(averages, figures / "bar_averages.png", title)
    corpus_figures.saturation(units, accumulators["unit_steps"][0], figures / "saturation.png", title)
    corpus_figures.attribution(attribution, figures / "attribution.png", title)
    units = int(accumulators["unit_sums"].shape[-1])
    plan = SelectivityPlan.from_config(selectivity or {"enabled": False}, accumulators["unit_sums"].shape[0])
    sums = from_arrays(accumulators, plan, units) if plan else {}
    selective = selectivity_table(sums, plan.fdr) if plan else _no_selectivity()
    selective.to_parquet(out_dir / "selectivity.parquet", index=False)
    selectivity_summary(selective).to_parquet(out_dir / "selectivity_summary.parquet", index=False)
    corpus_figures.selectivity(selective, figures / "selectivity.png", title)
    curves = tuning_table(sums) if plan else _no_tuning()
    curves.to_parquet(out_dir / "tuning.parquet", index=False)
    corpus_figures.tuning(curves, selective, figures / "tuning.png", title)
    period, population = period_tables(sums) if plan else _no_period()
    period.to_parquet(out_dir / "bar_period.parquet", index=False)
    population.to_parquet(out_dir / "bar_period_summary.parquet", index=False)
    corpus_figures.bar_period(period, population, figures / "bar_period.png", title)
    log.info("%s: %d comparisons aggregated over %d tunes", name, len(aggregate), len(tunes))


def corpus_comparison(
    first_dir: str | Path,
    second_dir: str | Path,
    labels: tuple[str, str],
    settings: Settings,
    out_dir: str | Path,
) -> None:
    """Two corpus analyses set against each other: a table and a figure."""
    from folkrnn_lens.corpus_analysis import figures as corpus_figures

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first = pd.read_parquet(Path(first_dir) / "resemblance.parquet")
    second = pd.read_parquet(Path(second_dir) / "resemblance.parquet")
    table = compare_corpora(first, second, list(settings.statistics), labels)
    table.to_parquet(out_dir / "comparison.parquet", index=False)
    corpus_figures.comparison(first, second, labels, settings, out_dir / "comparison.png")
