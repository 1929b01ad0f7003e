"""Unit selectivity against direct computations, the split of a corpus into parts, a
unit built to follow the bar phase, and units independent of every feature."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from folkrnn_lens.selectivity.measures import (
    PHASE,
    FeatureSums,
    benjamini_hochberg,
    pooled_p_values,
    tune_orders,
)


def synthetic_tunes(rng, count=12, n=80, units=6):
    """Tunes of random token types and bar phases; unit 0 follows the phase (a cosine
    peaking at 0.25), unit 1 the token type, the rest are noise."""
    tunes = []
    for tune_id in range(count):
        phase = (np.arange(n) % 8) / 8 + rng.uniform(0, 0.01, n)
        kinds = rng.choice(["pitch", "duration", "bar"], size=n).astype(object)
        x = rng.normal(size=(n, units))
        x[:, 0] += 2 * np.cos(2 * np.pi * (phase - 0.25))
        x[:, 1] += np.where(kinds == "bar", 1.5, 0.0)
        phase[:3] = np.nan  # the header: undefined
        kinds[:3] = None
        tunes.append((tune_id, x, phase, kinds))
    return tunes


def summed(tunes, feature, shuffles=19, categories=("pitch", "duration", "bar")):
    sums = FeatureSums(feature, ("cos", "sin") if feature == PHASE else categories, 6, shuffles)
    for tune_id, x, phase, kinds in tunes:
        sums.add(x, phase if feature == PHASE else kinds, tune_orders(tune_id, len(x), shuffles, 0))
    return sums


def test_eta_squared_and_the_phase_r2_equal_direct_computations():
    tunes = synthetic_tunes(np.random.default_rng(0))
    x = np.concatenate([t[1][3:] for t in tunes])
    kinds = np.concatenate([t[3][3:] for t in tunes])
    phase = np.concatenate([t[2][3:] for t in tunes])
    eta, _ = summed(tunes, "input_type").statistic()
    frame = pd.DataFrame(x).assign(kind=kinds)
    means = frame.groupby("kind").transform("mean").to_numpy()
    expected = ((means - x.mean(axis=0)) ** 2).sum(axis=0) / ((x - x.mean(axis=0)) ** 2).sum(axis=0)
    np.testing.assert_allclose(eta, expected, rtol=1e-6)
    r2, _ = summed(tunes, PHASE).statistic()
    design = np.column_stack([np.ones(len(x)), np.cos(2 * np.pi * phase), np.sin(2 * np.pi * phase)])
    fitted = design @ np.linalg.lstsq(design, x, rcond=None)[0]
    expected = 1 - ((x - fitted) ** 2).sum(axis=0) / ((x - x.mean(axis=0)) ** 2).sum(axis=0)
    np.testing.assert_allclose(r2, expected, rtol=1e-6)
    assert np.argmax(r2) == 0 and np.argmax(eta) == 1


def test_two_parts_add_up_to_the_same_integers_as_one():
    tunes = synthetic_tunes(np.random.default_rng(1))
    for feature in ("input_type", PHASE):
        whole, first = summed(tunes, feature), summed(tunes[:5], feature)
        first.merge(summed(tunes[5:], feature))
        for name in ("total", "squares", "counts", "design", "sums", "null_sums"):
            np.testing.assert_array_equal(getattr(first, name), getattr(whole, name), err_msg=name)


def test_the_built_unit_is_selected_and_noise_units_at_the_fdr_level():
    tunes = synthetic_tunes(np.random.default_rng(2), units=6)
    observed, null = summed(tunes, PHASE, shuffles=99).statistic()
    adjusted = benjamini_hochberg(pooled_p_values(observed, null))
    assert observed[0] > null.max() and adjusted[0] <= 0.05  # beyond every shuffle of every unit
    assert (adjusted[1:] > 0.05).all()
    selected = []
    for seed in range(20):  # units independent of the phase, in many corpora
        noise = synthetic_tunes(np.random.default_rng(100 + seed))
        for tune_id, x, _, _ in noise:
            x[:, :2] = np.random.default_rng([seed, tune_id]).normal(size=(len(x), 2))
        observed, null = summed(noise, PHASE, shuffles=49).statistic()
        selected.append((benjamini_hochberg(pooled_p_values(observed, null)) <= 0.05).mean())
    assert np.mean(selected) <= 0.05  # the FDR level


def test_pooled_p_values_and_benjamini_hochberg_by_hand_and_against_scipy():
    null = np.array([[0.1, 0.2], [0.3, 0.4]])
    np.testing.assert_allclose(pooled_p_values(np.array([0.35, 0.5]), null), [2 / 5, 1 / 5])
    p = np.random.default_rng(3).uniform(size=40) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"))
    assert np.isnan(benjamini_hochberg(np.array([0.01, np.nan]))[1])


def test_shuffles_are_the_tune_s_own_whatever_else_is_read():
    assert (tune_orders(7, 30, 5, 0) == tune_orders(7, 30, 5, 0)).all()
    assert not (tune_orders(7, 30, 5, 0) == tune_orders(8, 30, 5, 0)).all()
    assert sorted(tune_orders(7, 30, 5, 0)[2]) == list(range(30))
    with pytest.raises(ValueError):
        FeatureSums("input_type", ("a",), 2, 3).add(np.zeros((4, 3)), ["a"] * 4, tune_orders(0, 4, 3, 0))


def test_a_tuning_curve_is_each_bin_s_mean_and_its_band():
    from folkrnn_lens.selectivity.tuning import TuningSums

    tunes = synthetic_tunes(np.random.default_rng(4))
    whole, first, second = TuningSums(8, 6), TuningSums(8, 6), TuningSums(8, 6)
    for k, (_, x, phase, _) in enumerate(tunes):
        whole.add(x, phase)
        (first if k < 5 else second).add(x, phase)
    np.testing.assert_array_equal(first.sums + second.sums, whole.sums)
    curve = whole.table([0]).set_index("bin")
    x = np.concatenate([t[1][3:, 0] for t in tunes])
    phase = np.concatenate([t[2][3:] for t in tunes])
    inside = (phase * 8).astype(int) == 2
    assert curve.loc[2, "n_steps"] == inside.sum()
    assert curve.loc[2, "mean"] == pytest.approx(x[inside].mean())
    half = 1.959964 * x[inside].std(ddof=0) / np.sqrt(inside.sum() - 1)
    assert curve.loc[2, "high"] - curve.loc[2, "mean"] == pytest.approx(half, rel=1e-6)
    assert curve["mean"].idxmax() == 2  # the unit built to peak at phase 0.25
