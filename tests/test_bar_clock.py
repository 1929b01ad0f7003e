"""A unit built by hand to count the bar's eighths (tests/bar_clock.py), among units of
random weights: it holds the bar position that the features compute, the project's
selectivity finds it the most bar-phase selective unit of its layer, and the random
units are selected for a feature independent of the music at no more than the FDR level."""

import numpy as np
import pandas as pd
import pytest

from folkrnn_lens.features.steps import bar_eighths, step_features
from folkrnn_lens.selectivity import corpus
from folkrnn_lens.selectivity.corpus import Plan, add_tune, new_sums, selectivity_table

from .bar_clock import bar_clock_model

UNIT, SCALE, UNITS = 5, 1 / 64, 32


@pytest.fixture(scope="module")
def reads(excerpt):
    """(capture, step features) of each of the excerpt's 12 tunes, read by the model."""
    model = bar_clock_model(unit=UNIT, n_units=UNITS, scale=SCALE)
    captures = model.read([tune.tokens for tune in excerpt])
    return [(capture, step_features(list(capture.input_tokens))) for capture in captures]


def counted_bars(features: pd.DataFrame) -> pd.Series:
    """Per step, whether its bar is one the unit counts exactly with the phase's origin:
    no tuplet, broken rhythm or chord (written lengths are the sounding ones and add up),
    not a pickup (whose phase is shifted to end at 1) and not longer than the meter (whose
    phase wraps round); the header (no phase) is left out too."""
    whole = float(bar_eighths(features["meter"][0]))
    bars = features.assign(end=features["onset"] + features["duration"]).groupby("bar")
    length = bars["end"].max() - bars["onset"].min()
    irregular = bars["input_type"].agg(lambda types: bool({"tuplet", "broken", "chord"} & set(types)))
    pickup = (length.index == 0) & (length < whole)
    counted = ~irregular & (length <= whole) & ~pickup
    return features["bar"].map(counted).astype(bool) & features["bar_phase"].notna()


def test_the_unit_s_cell_is_the_eighths_read_in_the_bar(reads):
    """c / scale after a step is where the step's event starts in the bar (bar_phase x the
    meter's eighths) plus what of the event the step has read: 1 at its note or rest, the
    written length at its length token (which multiplies the 1), 0 at a bar line (c reset
    there, phase 0). The header leaves c at 0."""
    counted, body = [], []
    for capture, features in reads:
        c = capture.quantity(1, "c")[:, UNIT].astype(np.float64) / SCALE
        kind = features["input_type"]
        assert (c[kind.isin(["start", "meter", "mode"]).to_numpy()] == 0).all()
        read = np.select(
            [kind.isin(["pitch", "rest"]), kind == "duration"], [1.0, features["duration"].to_numpy()], 0.0
        )
        expected = features["bar_phase"].to_numpy() * float(bar_eighths(features["meter"][0])) + read
        steps = counted_bars(features).to_numpy()
        np.testing.assert_allclose(c[steps], expected[steps], rtol=0, atol=1e-4)
        np.testing.assert_allclose(c[(kind == "bar").to_numpy()], 0, atol=1e-9)
        counted.append(steps.sum())
        body.append(features["bar_phase"].notna().sum())
    assert sum(counted) > 0.5 * sum(body)  # most of the excerpt is plain bars (64% of its steps)


def test_the_unit_is_its_layer_s_most_bar_phase_selective(reads):
    """Through the corpus analysis's selectivity sums (as corpus_analysis/part.py adds
    them), the unit has the largest bar-phase R^2 of layer 1, in c and in h, and is
    selected at the FDR level.

    The shuffles are the configuration's default 49: the smallest pooled p-value is
    1 / (1 + shuffles x units), so a unit alone beyond every shuffle has a BH-adjusted p
    of units / (1 + shuffles x units), about 1 / shuffles: 0.0526 with 19 shuffles, never
    selected at an FDR of 0.05; 0.0204 with 49."""
    plan = Plan(
        layers=(1,), quantities=("c", "h"), features=("bar_phase", "input_type"),
        shuffles=49, seed=0, fdr=0.05, tuning_bins=12,
    )  # fmt: skip
    sums = new_sums(plan, UNITS)
    for tune_id, (capture, features) in enumerate(reads):
        add_tune(sums, plan, tune_id, capture, features)
    table = selectivity_table(sums, plan.fdr)
    for quantity in plan.quantities:
        phase = table[(table["feature"] == "bar_phase") & (table["quantity"] == quantity)].set_index("unit")
        ranked = phase["value"].sort_values(ascending=False)
        assert ranked.index[0] == UNIT, ranked.head()
        assert phase.loc[UNIT, "selective"]
        assert ranked.iloc[0] > 0.5 > ranked.iloc[1]  # a ramp through the bar fits a sinusoid to about 0.55


def test_random_units_are_selected_for_a_feature_independent_of_the_music_at_the_fdr_level(
    reads, monkeypatch
):
    """Random-weight units may legitimately be selective for the bar phase itself: they
    respond to the tokens they read, and which tokens are read goes with the bar phase
    (bar lines at phase 0, long notes on strong beats, length tokens after notes), a
    pairing that shuffling the phase within a tune breaks. Selected for the bar phase,
    they would not be false discoveries; so false discoveries are counted on a feature
    independent of the music: one of four categories drawn at random for every step
    (seeded per corpus and tune), in 10 corpora of the excerpt's tunes, over the 190
    random units of the three layers' c and h. Their pooled p-values are about uniform
    (a share near 0.05 of them at most 0.05), and BH selects at most the FDR level's
    share of them (with every unit null, it selects hardly any)."""
    monkeypatch.setitem(corpus.CATEGORIES, "coin", (0, 1, 2, 3))
    plan = Plan(
        layers=(1, 2, 3), quantities=("c", "h"), features=("coin",),
        shuffles=49, seed=0, fdr=0.05, tuning_bins=12,
    )  # fmt: skip
    random_units = np.ones((len(plan.layers), UNITS), bool)
    random_units[0, UNIT] = False  # every unit but the built one is random
    shares, small_p = [], []
    for corpus_seed in range(10):
        sums = new_sums(plan, UNITS)
        for tune_id, (capture, features) in enumerate(reads):
            rng = np.random.default_rng([corpus_seed, tune_id])
            coin = features.assign(coin=rng.integers(0, 4, len(features)))
            add_tune(sums, plan, tune_id, capture, coin)
        table = selectivity_table(sums, plan.fdr)
        for quantity in plan.quantities:
            rows = table[table["quantity"] == quantity].sort_values(["layer", "unit"])
            selected = rows["selective"].to_numpy().reshape(len(plan.layers), UNITS)
            shares.append(selected[random_units].mean())
            p = rows["p_value"].to_numpy().reshape(len(plan.layers), UNITS)
            small_p.append((p[random_units] <= 0.05).mean())
    assert np.mean(small_p) <= 2 * 0.05
    assert np.mean(shares) <= plan.fdr


def test_the_probes_decode_the_bar_phase_from_the_built_unit_and_the_clock_is_that_one_unit(reads):
    """Over every step of the excerpt's tunes, split by tune: the bar clock's most
    phase-selective unit of layer 1's h is the built one, and it alone decodes the phase
    about as well as the whole layer; the bar-phase probe beats its control task."""
    from folkrnn_lens.decoding.corpus import Plan as DecodingPlan
    from folkrnn_lens.decoding.corpus import bar_clock, decode_features, split_tunes

    x = np.concatenate([capture.quantity(1, "h") for capture, _ in reads])
    features = pd.concat([f.assign(tune_id=k) for k, (_, f) in enumerate(reads)], ignore_index=True)
    tune_ids = features["tune_id"].to_numpy()
    test = np.isin(tune_ids, split_tunes(tune_ids, 0.25, 0))
    clock = pd.DataFrame(bar_clock(x, features["bar_phase"].to_numpy(float), test, l2=1e-3)).set_index("k")
    assert clock.loc[1, "top_units"].split()[0] == str(UNIT)
    # a ramp through the bar gives (cos, sin) of the phase an R^2 of about 0.3 at most
    assert clock.loc[1, "r2_test"] > 0.2 and clock.loc[1, "share_of_best"] > 0.9
    plan = DecodingPlan((1,), ("c",), ("bar_phase",), 0, 4, 0.25, 1e-3, 200, 0)
    (row,) = decode_features(x, features, test, plan)
    assert row["accuracy"] > row["majority_accuracy"] + 0.2 and row["selectivity"] > 0.1
