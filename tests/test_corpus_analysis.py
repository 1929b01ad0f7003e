"""Corpus mode: every tune's resemblance table and summaries, streamed in parts,
then aggregated; and the fast per-tune resemblance table it rests on."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image
from scipy import stats

from folkrnn_lens.corpus_analysis.aggregate import (
    AGGREGATE_TABLES,
    FIGURES,
    aggregate_resemblance,
    corpus_aggregate,
    layer_winners,
    mann_whitney,
)
from folkrnn_lens.corpus_analysis.measures import _bar_matrix
from folkrnn_lens.corpus_analysis.part import PART_TABLES, analyse_part
from folkrnn_lens.corpus_analysis.tunes import TuneSpec, plan_batches, read_batches, select_tunes
from folkrnn_lens.decoding.corpus import FIGURES as DECODING_FIGURES
from folkrnn_lens.decoding.corpus import TABLES as DECODING_TABLES
from folkrnn_lens.matrices.maths import magnitude_gramian, onehot_gramian
from folkrnn_lens.resemblance.comparisons import (
    Comparison,
    plan_comparisons,
    prepared_symmetric,
    resemblance_table,
)
from folkrnn_lens.resemblance.settings import Settings
from folkrnn_lens.resemblance.statistics import (
    bar_permutation_orders,
    circular_shift_test,
    permutation_test,
    prepared,
    shifted_pair,
)
from folkrnn_lens.tokens.corpus import build_corpus
from folkrnn_lens.tokens.format import bar_indices, read_token_file

from .conftest import EXCERPT, small_model
from .test_workflow import make_workdir, run_snakemake

QUANTITIES = ["i", "f", "g_pre", "g", "o", "c", "h"]
SMALL = "music21:oneills1850/0001-0050.abc"


# ---- the per-tune table -------------------------------------------------------------


def random_tune(rng, n=40):
    tokens = list(rng.choice(["a", "b", "c", "d", "|"], size=n))
    matrices = {"onehot": onehot_gramian(tokens)}
    walk = rng.normal(size=(n, 8)).cumsum(axis=0)
    for layer in (1, 2):
        for q in ("h", "c"):
            matrices[f"L{layer}.{q}.abs"] = magnitude_gramian(walk + rng.normal(size=walk.shape) * layer)
    return matrices, np.asarray(bar_indices(tokens))


def test_spearman_on_the_upper_triangle_equals_all_off_diagonal_entries():
    rng = np.random.default_rng(1)
    m = np.round(magnitude_gramian(rng.normal(size=(15, 3))), 2)  # with ties
    a, b = prepared("spearman", m), prepared_symmetric("spearman", m)
    np.testing.assert_allclose(a / np.linalg.norm(a), b / np.linalg.norm(b), atol=1e-12)


def test_comparisons_cover_onehot_at_each_shift_and_pairs_of_layers_and_quantities():
    comparisons = plan_comparisons([1, 2, 3], ["c", "h"], "abs", [0, 1])
    assert Comparison("onehot", "L2.h.abs", "onehot", 1) in comparisons
    assert Comparison("layers", "L1.c.abs", "L3.c.abs", 0) in comparisons
    assert Comparison("quantities", "L3.c.abs", "L3.h.abs", 0) in comparisons
    assert len(comparisons) == 2 * 6 + 2 * 3 + 3 * 1
    with pytest.raises(ValueError, match="unknown comparison families"):
        plan_comparisons([1], ["h"], "abs", [0], families=["onehot", "tokens"])


@pytest.mark.parametrize("n", [40, 68])  # 67 steps at shift 1: the padded FFT length
def test_the_table_equals_each_test_run_on_its_own(n):
    rng = np.random.default_rng(2)
    matrices, bars = random_tune(rng, n)
    comparisons = plan_comparisons([1, 2], ["c", "h"], "abs", [0, 1])
    table = resemblance_table(matrices, bars, comparisons, bar_permutations=30, seed=4)
    assert len(table) == len(comparisons)
    for row, c in zip(table.itertuples(), comparisons):
        A, B = shifted_pair(matrices[c.a], matrices[c.b], c.shift)
        orders = bar_permutation_orders(bars[c.shift :], 30, np.random.default_rng([4, c.shift]))
        for name in ("pearson", "spearman", "cka"):
            circular = circular_shift_test(name, A, B)
            bar = permutation_test(name, A, B, orders)
            assert getattr(row, name) == pytest.approx(circular.observed, abs=1e-10)
            assert getattr(row, f"{name}_p_circular") == pytest.approx(circular.p_value)
            assert getattr(row, f"{name}_n_circular") == len(A) - 1
            assert getattr(row, f"{name}_p_bars") == pytest.approx(bar.p_value)
    # Holm-adjusted p-values are at least the raw ones
    assert (table["cka_p_circular_holm"] >= table["cka_p_circular"] - 1e-12).all()


TABLE_IN_A_PROCESS = """
import sys
import numpy as np
from folkrnn_lens.resemblance.comparisons import plan_comparisons, resemblance_table
arrays = dict(np.load(sys.argv[1]))
bars = arrays.pop("bars")
comparisons = plan_comparisons([1, 2], ["c", "h"], "abs", [0, 1])
table = resemblance_table(arrays, bars, comparisons, bar_permutations=17, seed=4)
table.to_parquet(sys.argv[2])
"""


def test_the_table_is_the_same_bits_with_one_or_two_blas_threads(tmp_path):
    """BLAS's dot splits sums of more than 10,000 terms (matrices over 100 steps)
    among its threads; 17 bar permutations leave a batch of one (a 1 x 1 product)."""
    matrices, bars = random_tune(np.random.default_rng(5), n=150)
    np.savez(tmp_path / "tune.npz", bars=bars, **matrices)
    tables = []
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        out = tmp_path / f"{threads}.parquet"
        command = [sys.executable, "-c", TABLE_IN_A_PROCESS, str(tmp_path / "tune.npz"), str(out)]
        subprocess.run(command, env=env, check=True)
        tables.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(*tables, check_exact=True)


def test_a_shift_longer_than_the_tune_leaves_its_rows_untested():
    matrices, bars = random_tune(np.random.default_rng(3), n=4)
    comparisons = plan_comparisons([1, 2], ["h"], "abs", [0, 3, 9])
    table = resemblance_table(matrices, bars, comparisons, bar_permutations=5)
    short = table[table["shift"] > 2]
    assert len(short) == 4 and short[["pearson", "cka_p_circular", "spearman_p_bars"]].isna().all().all()
    assert table.loc[table["shift"] == 0, "pearson"].notna().all()


def test_the_bar_null_only_for_the_families_asked():
    rng = np.random.default_rng(3)
    matrices, bars = random_tune(rng)
    comparisons = plan_comparisons([1, 2], ["h"], "abs", [0, 1])
    table = resemblance_table(
        matrices, bars, comparisons, ["cka"], bar_permutations=10, bar_families=["onehot"]
    )
    tested = table["cka_n_bars"] > 0
    assert tested.equals(table["family"] == "onehot")
    assert table.loc[~tested, "cka_p_bars"].isna().all()


def test_settings_default_to_what_was_recorded_and_reject_more():
    settings = Settings.from_config({"bar_permutations": 5}, [1, 3], ["h", "i"], {"families": ["onehot"]})
    assert (settings.layers, settings.quantities, settings.families) == ((1, 3), ("i", "h"), ("onehot",))
    with pytest.raises(ValueError, match="layer 2"):
        Settings.from_config({"layers": [2]}, [1, 3], ["h"])


# ---- corpus mode, as a library ------------------------------------------------------


def test_batches_of_generated_tunes_keep_seed_order():
    tunes = select_tunes({"generate": {"count": 37, "seed": 2}})
    batches = plan_batches(tunes, 2048, max_length=256)
    assert [len(b) for b in batches] == [8, 8, 8, 8, 5]
    assert [len(b) for b in plan_batches(tunes, 4096, max_length=1000)][:2] == [4, 4]  # the budget holds
    assert [t.seed for b in batches for t in b] == list(range(2, 39))


def test_a_sample_is_seeded_and_keeps_corpus_order(tmp_path):
    build_corpus([SMALL], tmp_path / "tunes.txt", tmp_path / "tunes.parquet")
    args = (tmp_path / "tunes.parquet", tmp_path / "tunes.txt")
    sample = select_tunes({"corpus": "small", "sample": 10, "seed": 3}, *args)
    assert [t.tune_id for t in sample] == list(range(10))
    assert sample == select_tunes({"corpus": "small", "sample": 10, "seed": 3}, *args)
    assert sample != select_tunes({"corpus": "small", "sample": 10, "seed": 4}, *args)
    every = select_tunes({"corpus": "small"}, *args)
    numbers = [int(t.source.split("corpus id ")[1].rstrip(")")) for t in sample]
    assert numbers == sorted(numbers) and len(every) > 30
    assert {t.tokens for t in sample} <= {t.tokens for t in every}
    generated = select_tunes({"generate": {"count": 3, "seed": 5}})
    assert [(t.seed, t.origin) for t in generated] == [(5, "generated"), (6, "generated"), (7, "generated")]


def test_read_batches_hold_at_most_the_step_budget():
    tunes = [TuneSpec(k, "real", tokens=("x",) * (10 + 7 * k)) for k in range(12)]
    batches = read_batches(tunes, 200)
    assert sorted(t.tune_id for b in batches for t in b) == list(range(12))
    for batch in batches:
        longest = max(len(t.tokens) + 1 for t in batch)
        assert len(batch) == 1 or longest * len(batch) <= 200


def test_bar_matrix_is_the_mean_over_the_steps_of_two_bars():
    matrix = np.arange(16.0).reshape(4, 4)
    means, present = _bar_matrix(matrix, np.array([0, 0, 1, 1]), 3)
    assert means[0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))
    assert means[0, 1] == pytest.approx(np.mean([2, 3, 6, 7]))
    assert present[:2, :2].all() and not present[2].any() and not present[:, 2].any()


def test_mann_whitney_matches_scipy():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=30).round(1), rng.normal(0.5, size=25).round(1)  # ties too
    auc, p = mann_whitney(x, y)
    reference = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=False)
    assert auc == pytest.approx(reference.statistic / (30 * 25))
    assert p == pytest.approx(reference.pvalue)


def test_aggregate_by_hand_and_untested_nulls_as_nan():
    rows = []
    for tune, (value, p) in enumerate([(0.2, 0.01), (0.4, 0.20), (0.9, 0.04)]):
        rows.append({"tune_id": tune, "family": "onehot", "a": "L1.h.abs", "b": "onehot", "shift": 0,
                     "cka": value, "cka_null_mean": 0.3, "cka_p_circular": p, "cka_p_circular_holm": 2 * p,
                     "cka_p_bars": np.nan, "cka_p_bars_holm": np.nan})  # fmt: skip
    table = aggregate_resemblance(pd.DataFrame(rows), ["cka"], alpha=0.05).iloc[0]
    assert (table["n_tunes"], table["median"], table["mean"]) == (3, 0.4, pytest.approx(0.5))
    assert table["share_above_null_mean"] == pytest.approx(2 / 3)
    assert table["share_p_circular"] == pytest.approx(2 / 3)  # 0.01 and 0.04
    assert table["share_p_circular_holm"] == pytest.approx(1 / 3)  # 0.02 only
    assert (
        table["n_tested_bars"] == 0
        and np.isnan(table["share_p_bars"])
        and np.isnan(table["share_p_bars_holm"])
    )
    assert (table["a_layer"], table["a_quantity"]) == (1, "h")


def test_layer_winners_count_the_best_layer_of_each_tune():
    rows = []
    for tune, best in enumerate([2, 2, 1]):
        for layer in (1, 2):
            rows.append(
                {"tune_id": tune, "family": "onehot", "a": f"L{layer}.h.abs", "b": "onehot", "shift": 0,
                 "cka": 1.0 if layer == best else 0.5}
            )  # fmt: skip
    winners = layer_winners(pd.DataFrame(rows), "cka").set_index("layer")
    assert winners.loc[2, "n_tunes"] == 2 and winners.loc[1, "n_tunes"] == 1
    assert winners.loc[2, "share"] == pytest.approx(2 / 3)


def test_a_tune_the_model_cannot_read_fails_alone(tmp_path):
    model = small_model(n_units=8)
    good = read_token_file(EXCERPT)[:3]
    tunes = [TuneSpec(k, "real", title=f"t{k}", tokens=tuple(t.tokens)) for k, t in enumerate(good)]
    tunes.insert(1, TuneSpec(9, "real", title="bad", tokens=("M:4/4", "K:Cmaj", "c", "zz9", "|")))
    settings = Settings.from_config({"bar_permutations": 0}, [1, 2, 3], QUANTITIES, {"families": ["onehot"]})
    bands = {"distance": {"low": 0.02, "high": 1.98}, "cosine": {"low": 0.02, "high": 0.98}}
    batches = plan_batches(tunes, 2048)
    counts = analyse_part(model, batches, None, settings, bands, {"low": 0.1, "high": 0.9}, 8, tmp_path, {})
    assert counts == {"ok": 3, "failed": 1}
    table = pd.read_parquet(tmp_path / "tunes.parquet").set_index("tune_id")
    assert table.loc[9, "status"] == "failed" and "'zz9' at position 4" in table.loc[9, "reason"]
    resemblance = pd.read_parquet(tmp_path / "resemblance.parquet")
    assert sorted(resemblance["tune_id"].unique()) == [0, 1, 2]
    assert len(resemblance) == 3 * 21 * 2
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert set(summary["origin"]) == {"real"}
    summary = summary[summary["tune_id"] == 0].set_index("matrix")
    assert set(summary.index) >= {"onehot", "softmax_l1", "L2.h.abs"}
    assert summary.loc[["onehot", "softmax_l1", "L2.h.abs"], "kind"].tolist() == [
        "onehot",
        "distance",
        "magnitude",
    ]
    with np.load(tmp_path / "accumulators.npz") as arrays:
        assert arrays["unit_steps"][0] == sum(len(t.tokens) + 1 for t in tunes if t.tune_id != 9)


def test_an_analysis_where_no_tune_could_be_read_says_so(tmp_path):
    model = small_model(n_units=8)
    tunes = [TuneSpec(k, "real", title=f"bad {k}", tokens=("M:4/4", "K:Cmaj", "zz9")) for k in range(2)]
    settings = Settings.from_config({"bar_permutations": 0}, [1], ["h"], {"families": ["onehot"]})
    bands = {"distance": {"low": 0.02, "high": 1.98}, "cosine": {"low": 0.02, "high": 0.98}}
    part = tmp_path / "parts" / "0"
    batches = plan_batches(tunes, 2048)
    analyse_part(model, batches, None, settings, bands, {"low": 0.1, "high": 0.9}, 8, part, {})
    for table in ("resemblance", "summary", "saturation"):  # empty, but with every column
        assert pd.read_parquet(part / f"{table}.parquet").empty
    assert "pearson_p_circular_holm" in pd.read_parquet(part / "resemblance.parquet").columns
    with pytest.raises(ValueError, match=r"none of its 2 tunes .*tune 0: .*'zz9' at position 3"):
        corpus_aggregate([part], tmp_path / "all", settings, "broken")


def test_unit_means_and_the_attribution_add_up_to_the_same_bits_however_the_tunes_are_split():
    """Each unit's mean of each quantity and the top layer's attribution by type of the
    next token equal a direct computation over the steps of every tune; summed as two
    parts, the sums are the same integers as in one."""
    from folkrnn_lens.corpus_analysis.aggregate import corpus_attribution, unit_means
    from folkrnn_lens.corpus_analysis.measures import Accumulators, Readout
    from folkrnn_lens.interventions.attribution import logit_attribution
    from folkrnn_lens.tokens.format import token_type

    model = small_model(n_units=16)
    captures = model.read([list(tune.tokens) for tune in read_token_file(EXCERPT)[:4]])
    settings = Settings.from_config({}, [1, 2, 3], QUANTITIES)

    def accumulate(part):
        sums = Accumulators(settings, [], 4, 16, 3, Readout.of(model, top=3))
        for capture in part:
            sums.add_units(capture)
            sums.add_attribution(capture)
            sums.unit_steps += len(capture.input_tokens)
        return sums

    whole, first, second = accumulate(captures), accumulate(captures[:1]), accumulate(captures[1:])
    for key in ("unit_sums", "attribution_sums", "attribution_top", "attribution_steps"):
        np.testing.assert_array_equal(getattr(first, key) + getattr(second, key), getattr(whole, key), key)
    arrays = {key: getattr(whole, key) for key in ("unit_sums", "unit_steps", "attribution_sums",
                                                    "attribution_top", "attribution_steps")}  # fmt: skip
    means = unit_means(arrays).set_index(["layer", "quantity", "unit"]).sort_index()["mean"]
    expected = np.concatenate([c.quantity(2, "c") for c in captures]).mean(axis=0)
    np.testing.assert_allclose(means.loc[2, "c"].to_numpy(), expected, atol=1e-6)
    table = corpus_attribution(arrays, 3).set_index(["token_type", "unit"]).sort_index()
    per_tune = pd.concat(
        [logit_attribution(model, c.quantity(3, "h"), c.output_tokens, 3).summary for c in captures]
    )
    n_top = per_tune.groupby(["token_type", "unit"])["n_top"].sum().sort_index()
    np.testing.assert_array_equal(table["n_top"].to_numpy(), n_top.to_numpy())
    W = model.W_out.detach().double().numpy()
    pushes = np.concatenate([c.quantity(3, "h") * W[:, model.encode(c.output_tokens)].T for c in captures])
    pitch = np.array([token_type(t) == "pitch" for c in captures for t in c.output_tokens])
    np.testing.assert_allclose(table.loc["pitch", "mean_contribution"], pushes[pitch].mean(axis=0), atol=1e-6)
    assert table.loc["pitch", "n_steps"].iloc[0] == pitch.sum() > 0


# ---- corpus mode, run by Snakemake --------------------------------------------------


def corpus_config(jobs: int) -> dict:
    return {
        "model": {
            "file": "untrained",
            "untrained": {"n_layers": 3, "n_units": 16, "seed": 2, "vocabulary_corpora": ["small"]},
        },
        "corpora": {"small": {"sources": [SMALL]}},
        "transcriptions": {"one": {"abc": SMALL, "x": 3}},
        "record": {"layers": [1, 2, 3], "quantities": ["f", "h"]},
        "analysis": {"layers": [3], "quantities": ["h"], "softmax": False, "gramians": ["abs"],
                     "cross_pairs": [], "animation": {"enabled": False}, "score": {"enabled": False}},
        "resemblance": {"enabled": False, "bar_permutations": 19},
        "corpus_analysis": {
            "real12": {
                "tunes": {"corpus": "small", "sample": 12, "seed": 1}, "jobs": jobs, "batch_steps": 1024
            },
            "gen5": {"tunes": {"generate": {"count": 5, "seed": 7, "max_length": 60}}, "jobs": 1,
                     "tune_figures": True, "resemblance": {"saturation": {"low": 0.3}},
                     "selectivity": {"enabled": False}, "decoding": {"enabled": False}},
        },
        "corpus_comparisons": [["real12", "gen5"]],
        "interventions": {"ablation": {"value": "mean", "corpus_analysis": "real12"}},
        "torch_threads": 2,  # more than -j 1 gives: the tables must not change
    }  # fmt: skip


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("corpus"), corpus_config(jobs=2))
    run_snakemake(workdir, "-j", "2")
    return workdir / "results"


@pytest.mark.slow
def test_a_dozen_tunes_end_to_end(corpus_run):
    folder = corpus_run / "corpus_analysis" / "real12"
    tunes = pd.read_parquet(folder / "tunes.parquet")
    assert len(tunes) == 12 and (tunes["status"] == "ok").all() and tunes["tune_id"].is_unique
    assert tunes["tokens"].str.startswith("M:").all()
    resemblance = pd.read_parquet(folder / "resemblance.parquet")
    per_tune = len(plan_comparisons([1, 2, 3], ["f", "h"], "abs", [0, 1]))
    assert len(resemblance) == 12 * per_tune
    assert (resemblance["cka_n_bars"] == 19).any()
    aggregate = pd.read_parquet(folder / "aggregate.parquet")
    assert (aggregate["n_tunes"] == 12).all()
    assert aggregate["share_p_circular"].between(0, 1).all()
    assert (aggregate["share_p_circular_holm"] <= aggregate["share_p_circular"]).all()
    winners = pd.read_parquet(folder / "winners.parquet")
    assert (winners.groupby(["statistic", "shift", "quantity"])["n_tunes"].sum() == 12).all()
    units = pd.read_parquet(folder / "unit_saturation.parquet")
    assert len(units) == 3 * 3 * 16 and units["frac_below"].between(0, 1).all()
    with np.load(folder / "bar_averages.npz") as arrays:
        assert arrays["onehot"].shape == (32, 32) and arrays["n_tunes"][0, 0] == 12
    features = pd.read_parquet(folder / "features.parquet")
    assert len(features) == tunes["n_steps"].sum() and features["tune_id"].is_monotonic_increasing
    assert features.groupby("tune_id")["step"].first().eq(0).all()
    means = pd.read_parquet(folder / "unit_means.parquet")
    assert len(means) == 3 * 7 * 16 and (means["n_steps"] == tunes["n_steps"].sum()).all()
    attribution = pd.read_parquet(folder / "attribution.parquet")
    assert (
        len(attribution) == 4 * 16
        and attribution.groupby("token_type")["n_steps"].first().sum() == tunes["n_steps"].sum()
    )
    selectivity = pd.read_parquet(folder / "selectivity.parquet")
    assert len(selectivity) == 3 * 2 * 5 * 16  # layers x quantities h, c x features x units
    assert (
        selectivity["p_value"].between(0, 1).all() and (selectivity["p_bh"] >= selectivity["p_value"]).all()
    )
    summary = pd.read_parquet(folder / "selectivity_summary.parquet")
    assert (summary["n_selective"] <= summary["n_units"]).all() and len(summary) == 3 * 2 * 5
    curves = pd.read_parquet(folder / "tuning.parquet")
    assert len(curves) == 3 * 2 * 16 * 12  # layers x quantities x units x bins
    per_curve = curves.groupby(["layer", "quantity", "unit"])["n_steps"].sum()
    assert (per_curve == features["bar_phase"].notna().sum()).all()
    assert (curves["low"] <= curves["mean"]).all() and (curves["mean"] <= curves["high"]).all()
    period = pd.read_parquet(folder / "bar_period.parquet")
    assert len(period) == 3 * 2 * 16 and (period["n_tunes"] <= 12).all() and period["n_tunes"].max() > 6
    assert period["mean_share"].dropna().between(0, 1).all()
    population = pd.read_parquet(folder / "bar_period_summary.parquet")
    assert len(population) == 3 * 2 and population["mean_share"].between(0, 1).all()
    decoding = pd.read_parquet(folder / "decoding.parquet")
    assert len(decoding) == 3 * 2 * 6  # layers x quantities x features
    assert (decoding["n_test_tunes"] == 3).all() and (decoding["n_train_tunes"] == 9).all()
    assert decoding[["accuracy", "control_accuracy", "majority_accuracy"]].stack().between(0, 1).all()
    clock = pd.read_parquet(folder / "bar_clock.parquet")
    assert len(clock) == 3 * 2 * 5 and clock["k"].max() == 16  # k = 1, 2, 4, 8, 16
    for figure in (*FIGURES, *DECODING_FIGURES):
        image = np.asarray(Image.open(folder / "figures" / f"{figure}.png").convert("L"))
        assert image.shape[0] > 200 and image.std() > 5, figure
    assert (corpus_run / "logs" / "corpus_analysis" / "real12" / "part_1.log").exists()
    assert (corpus_run / "benchmarks" / "corpus_analysis" / "real12" / "part_0.tsv").exists()


@pytest.mark.slow
def test_a_transcription_s_units_are_ablated_to_a_corpus_analysis_s_means(corpus_run):
    path = corpus_run / "transcriptions" / "one" / "interventions" / "ablation_summary.parquet"
    facts = json.loads(pq.read_schema(path).metadata[b"folkrnn_lens.interventions"])
    assert facts["ablation"]["value"] == "mean"
    assert facts["ablation"]["means"] == "results/corpus_analysis/real12/unit_means.parquet"
    assert pd.read_parquet(path)["delta_loss"].abs().max() > 0


@pytest.mark.slow
def test_generated_tunes_and_the_comparison(corpus_run):
    tunes = pd.read_parquet(corpus_run / "corpus_analysis" / "gen5" / "tunes.parquet")
    assert tunes["seed"].tolist() == [7, 8, 9, 10, 11] and (tunes["origin"] == "generated").all()
    assert (tunes["n_steps"] <= 60).all()
    for table in ("selectivity", "tuning", "bar_period", "bar_period_summary", "decoding", "bar_clock"):
        assert pd.read_parquet(corpus_run / "corpus_analysis" / "gen5" / f"{table}.parquet").empty
    figures = sorted((corpus_run / "corpus_analysis" / "gen5" / "parts" / "0" / "figures").glob("*.png"))
    assert [f.name for f in figures] == [f"{k}.png" for k in range(5)]
    image = np.asarray(Image.open(figures[0]).convert("L"))
    assert image.shape[1] > 4 * image.shape[0] / 2 and image.std() > 5  # four panels side by side
    assert not list((corpus_run / "corpus_analysis" / "real12" / "parts" / "0" / "figures").glob("*.png"))
    comparison = pd.read_parquet(corpus_run / "corpus_comparisons" / "real12_vs_gen5" / "comparison.parquet")
    assert {"median_real12", "median_gen5", "auc", "p_holm"} <= set(comparison.columns)
    assert comparison["auc"].between(0, 1).all()
    assert (corpus_run / "corpus_comparisons" / "real12_vs_gen5" / "comparison.png").stat().st_size > 10_000


@pytest.mark.slow
def test_one_job_or_two_give_the_same_tables(corpus_run, tmp_path):
    workdir = make_workdir(tmp_path / "one", corpus_config(jobs=1))
    target = "results/corpus_analysis/real12/decoding.parquet"
    run_snakemake(workdir, "-j", "1", target)
    tables = (*PART_TABLES, *AGGREGATE_TABLES, *DECODING_TABLES)
    for table in tables:  # same order too
        one = pd.read_parquet(workdir / "results" / "corpus_analysis" / "real12" / f"{table}.parquet")
        two = pd.read_parquet(corpus_run / "corpus_analysis" / "real12" / f"{table}.parquet")
        pd.testing.assert_frame_equal(one, two, check_exact=True)


def part_metadata(results, analysis):
    path = results / "corpus_analysis" / analysis / "parts" / "0" / "saturation.parquet"
    return json.loads(pq.read_schema(path).metadata[b"folkrnn_lens"])


@pytest.mark.slow
def test_an_analysis_uses_its_own_saturation_thresholds(corpus_run):
    """gen5 sets its own low threshold; high comes from the top level's defaults."""
    assert part_metadata(corpus_run, "gen5")["saturation"] == {"low": 0.3, "high": 0.9}
    assert part_metadata(corpus_run, "real12")["saturation"] == {"low": 0.1, "high": 0.9}
    gen5 = pd.read_parquet(corpus_run / "corpus_analysis" / "gen5" / "saturation.parquet")
    real12 = pd.read_parquet(corpus_run / "corpus_analysis" / "real12" / "saturation.parquet")
    assert gen5["mean_frac_below"].mean() > real12["mean_frac_below"].mean()  # a higher low: more below


def test_cuda_without_a_cuda_device_is_refused_by_name():
    import torch

    from folkrnn_lens.model.checkpoint import use_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="device 'cuda' but torch sees no CUDA device"):
        use_device("cuda", 1)
