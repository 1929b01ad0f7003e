"""The bar-period analysis: bar positions of real and hand-built tunes, the merging and
resampling on bar phase, the bar bin of units built to follow the bar (and why the
resampling matters), and PeriodSums against direct computations and splits."""

import numpy as np
import pytest

from folkrnn_lens.features.steps import step_features
from folkrnn_lens.selectivity.period import (
    ARRAYS,
    PeriodSums,
    bar_position,
    bar_spectrum,
    merge_positions,
    resample_on_bars,
    tune_spectrum,
)


def columns(features):
    return (
        features["bar"].to_numpy(),
        features["bar_phase"].to_numpy(),
        (features["input_type"] == "bar").to_numpy(),
    )


def uneven_tune(seed=0, sizes=(3, 5, 8), n_bars=12):
    """Bars of 3, 5 and 8 steps and a closing bar line; unit 0 is cos(2 pi phase), unit
    1 noise, unit 2 cos(4 pi phase) (half a bar's period)."""
    size = np.resize(sizes, n_bars)
    bar = np.r_[np.repeat(np.arange(n_bars), size), n_bars - 1].astype(float)
    phase = np.r_[np.concatenate([np.arange(s) / s for s in size]), 0.0]
    line = np.zeros(len(bar), bool)
    line[-1] = True
    noise = np.random.default_rng(seed).normal(size=len(bar))
    x = np.stack([np.cos(2 * np.pi * phase), noise, np.cos(4 * np.pi * phase)], axis=1)
    return x, bar, phase, line


def test_bar_lines_take_the_next_events_position_and_a_pickup_keeps_its_phase():
    tokens = ["<s>", "M:4/4", "K:Cmaj", "C", "2", "D", "2", "|", "E", "4", "F", "2", "|", "G", "8", "|"]
    position = bar_position(*columns(step_features([*tokens, "A", "4"])))
    expected = [np.nan] * 3 + [0.5, 0.5, 0.75, 0.75, 1, 1, 1, 1.5, 1.5, 2, 2, 2, 3, 3, 3]
    np.testing.assert_array_equal(position, expected)
    assert bar_position(*columns(step_features(tokens)))[-1] == 3  # no event after: its bar's end


def test_a_bar_longer_than_the_meter_is_held_at_the_position_reached():
    tokens = ["<s>", "M:2/4", "K:Cmaj", "C", "2", "D", "2", "E", "2", "|", "F", "4", "|"]
    position = bar_position(*columns(step_features(tokens)))
    np.testing.assert_array_equal(position[3:], [0, 0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 2])


def test_steps_at_one_position_are_averaged_before_interpolating():
    position = np.array([np.nan, 0, 0, 0.5, 1, 1, 1, 2])
    x = np.array([99, 1, 3, 6, 4, 8, 0, 10], float)[:, None]
    knots, values = merge_positions(x, position)
    np.testing.assert_array_equal(knots, [0, 0.5, 1, 2])
    np.testing.assert_array_equal(values[:, 0], [2, 6, 4, 10])
    grid, y = resample_on_bars(x, position, per_bar=4)
    np.testing.assert_array_equal(grid, np.arange(8) / 4)
    np.testing.assert_allclose(y[:, 0], [2, 4, 6, 5, 4, 5.5, 7, 8.5])


def test_the_grid_covers_the_whole_bars_only():
    tokens = ["<s>", "M:4/4", "K:Cmaj", "C", "2", "D", "2", "|", "E", "4", "F", "2", "|", "G", "8", "|"]
    features = step_features([*tokens, "A", "4"])  # a pickup from phase 0.5, a last partial bar
    x = np.arange(len(features), dtype=float)[:, None]
    grid, y = resample_on_bars(x, bar_position(*columns(features)), per_bar=4)
    np.testing.assert_array_equal(grid, 1 + np.arange(8) / 4)
    assert y.shape == (8, 1) and y[0, 0] == np.mean([7, 8, 9])  # bar line, E, its length
    short = step_features(tokens[:13])  # one whole bar
    assert resample_on_bars(x[: len(short)], bar_position(*columns(short)), per_bar=4) is None


def test_resampling_puts_the_bar_period_in_one_bin_where_the_raw_steps_smear_it():
    x, bar, phase, line = uneven_tune()
    spectrum = tune_spectrum(x, bar, phase, line, per_bar=16)
    share, power = spectrum["share"], spectrum["power"]
    assert share[0] > 0.9 and share[1] < 0.1 and share[2] < 0.2
    assert np.argmax(power[1:, 2]) + 1 == 24  # two cycles a bar over 12 bars
    assert 2 * power[24, 2] / power[1:, 2].sum() > 0.5
    assert spectrum["peak_ratio"][0] > 1e6 and spectrum["flat_share"] == 2 / (12 * 16 - 1)
    naive = bar_spectrum(x, 12)  # the raw steps: 12 cycles over the tune, no resampling
    assert naive["share"][0] < 0.5 < share[0]


def test_a_constant_unit_has_no_share():
    y = np.ones((32, 2))
    y[:, 1] = np.cos(2 * np.pi * np.arange(32) / 8)
    spectrum = bar_spectrum(y, 4)
    assert np.isnan(spectrum["share"][0]) and np.isnan(spectrum["peak_ratio"][0])
    assert spectrum["share"][1] == pytest.approx(1)


def test_period_sums_add_up_over_parts_and_match_the_per_tune_shares():
    tunes = [uneven_tune(seed, sizes) for seed, sizes in enumerate([(3, 5, 8), (4, 6), (7,)])]
    tunes[1][0][:, 1] = 0.5  # a constant unit: undefined in that tune
    whole, first, rest = PeriodSums(3), PeriodSums(3), PeriodSums(3)
    assert all(whole.add(*tune) for tune in tunes)
    first.add(*tunes[0])
    for tune in tunes[1:]:
        rest.add(*tune)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(whole, name), getattr(first, name) + getattr(rest, name))
    spectra = [tune_spectrum(*tune) for tune in tunes]
    table = whole.table()
    shares = np.array([s["share"] for s in spectra])
    np.testing.assert_allclose(table["mean_share"], np.nanmean(shares, axis=0), atol=1e-6)
    np.testing.assert_array_equal(table["n_tunes"], [3, 2, 3])
    ratios = np.exp(np.nanmean(np.log([s["peak_ratio"] for s in spectra]), axis=0))
    np.testing.assert_allclose(table["mean_peak_ratio"], ratios, rtol=1e-5)
    assert (table["share_low"] <= table["mean_share"]).all()
    population = [s["bar_power"].sum() / s["total_power"].sum() for s in spectra]
    assert whole.population()["mean_share"] == pytest.approx(np.mean(population), abs=1e-6)


def test_a_tune_below_two_whole_bars_is_not_added():
    sums = PeriodSums(3)
    assert sums.add(*uneven_tune(n_bars=2))
    assert not sums.add(*uneven_tune(n_bars=1)) and sums.tunes[0] == 1 and sums.population()["n_tunes"] == 1


def test_the_excerpts_positions_rise_and_move_only_at_bar_lines_and_overlong_bars(excerpt):
    for tune in excerpt:
        features = step_features(["<s>", *tune.tokens])
        bar, phase, line = columns(features)
        position = bar_position(bar, phase, line)
        defined = np.isfinite(phase)
        assert (np.diff(position[defined]) >= 0).all()
        moved = defined & ~line & (position != bar + phase)
        notes = features[defined & ~line]
        overlong = set(notes["bar"][notes["bar_phase"].groupby(notes["bar"]).diff() < 0])
        assert set(bar[moved]) == overlong
        follows_event = line[:-1] & defined[1:] & ~line[1:]
        np.testing.assert_array_equal(position[:-1][follows_event], position[1:][follows_event])
        grid, y = resample_on_bars(np.random.default_rng(0).normal(size=(len(bar), 2)), position)
        assert len(grid) == 16 * (np.floor(np.nanmax(position)) - np.ceil(np.nanmin(position)))
        assert np.isfinite(y).all()
