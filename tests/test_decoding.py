"""Linear probes: the fit, Hewitt and Liang's control task, the split by tune, the sampled
states streamed by the parts, and the tables of a corpus analysis."""

import numpy as np
import pandas as pd
import pytest

from folkrnn_lens.corpus_analysis.part import STATES, analyse_part
from folkrnn_lens.corpus_analysis.tunes import TuneSpec, plan_batches
from folkrnn_lens.decoding.corpus import (
    Plan,
    bar_clock,
    decode_corpus,
    feature_labels,
    powers_of_two,
    split_tunes,
    unit_phase_r2,
)
from folkrnn_lens.decoding.linear import control_labels, fit_probe, majority_accuracy, ridge_r2
from folkrnn_lens.decoding.samples import load_states, sample_steps
from folkrnn_lens.features.steps import step_features
from folkrnn_lens.resemblance.settings import Settings
from folkrnn_lens.tokens.corpus import read_token_file
from folkrnn_lens.tokens.format import START
from tests.conftest import EXCERPT, small_model

PLAN = Plan(
    layers=(1, 2),
    quantities=("h",),
    features=("bar_phase", "next_is_bar", "input_type", "scale_degree", "meter", "mode"),
    steps_per_tune=24,
    phase_bins=8,
    test_fraction=0.25,
    l2=1e-3,
    iterations=100,
    seed=0,
)


def _linear_classes(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 20-dimensional Gaussian points, split by linear boundaries."""
    x = rng.normal(size=(n, 20))
    return x, np.argmax(x @ rng.normal(size=(20, 3)), axis=1)


def _chance(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The accuracy of predictions independent of the truth, with the same frequencies."""
    classes = np.union1d(predicted, truth)
    return float(sum(np.mean(predicted == c) * np.mean(truth == c) for c in classes))


def test_a_probe_separates_separable_classes_and_scores_at_chance_on_shuffled_labels():
    rng = np.random.default_rng(0)
    x, y = _linear_classes(4000, rng)
    probe = fit_probe(x[:3000], y[:3000], l2=1e-4)
    assert probe.accuracy(x[3000:], y[3000:]) > 0.95
    gaps = []
    for _ in range(5):
        shuffled = fit_probe(x[:3000], rng.permutation(y[:3000]), l2=1e-3)
        accuracy = shuffled.accuracy(x[3000:], y[3000:])
        gaps.append(accuracy - _chance(shuffled.predict(x[3000:]), y[3000:]))
    assert abs(np.mean(gaps)) < 0.03  # one shuffle strays (a random fit is lumpy); five do not


def test_a_probe_of_one_class_predicts_it_and_strings_and_labels_unseen_in_training_count_wrong():
    x = np.arange(12, dtype=float).reshape(6, 2)
    probe = fit_probe(x, np.array(["a"] * 6), l2=1e-3)
    assert probe.predict(x).tolist() == ["a"] * 6
    assert probe.accuracy(x, np.array(["a", "a", "b", "b", "a", "a"])) == pytest.approx(4 / 6)


def test_the_control_task_gives_each_token_type_one_label_drawn_from_the_label_distribution():
    """Hewitt and Liang: a random label per word type, sampled from the task's empirical
    distribution of labels, so the control labels' distribution over types follows it."""
    types = np.array([f"t{k}" for k in range(4000)])
    labels = np.array(["x"] * 700 + ["y"] * 200 + ["z"] * 100)
    mapping = control_labels(types, labels, seed=3, name="feature")
    assert set(mapping) == set(types)
    drawn = pd.Series(list(mapping.values())).value_counts(normalize=True)
    assert drawn["x"] == pytest.approx(0.7, abs=0.03) and drawn["z"] == pytest.approx(0.1, abs=0.02)
    assert control_labels(types, labels, seed=3, name="feature") == mapping  # seeded
    assert control_labels(types, labels, seed=3, name="other") != mapping  # per feature


def test_the_test_tunes_are_a_seeded_share_of_the_tunes_never_split_between_sets():
    tune_ids = np.repeat(np.arange(40), 7)
    test = split_tunes(tune_ids, 0.25, seed=5)
    assert len(test) == 10 and set(test) <= set(range(40))
    assert np.array_equal(test, split_tunes(np.random.default_rng(1).permutation(tune_ids), 0.25, 5))
    assert not np.array_equal(test, split_tunes(tune_ids, 0.25, 6))
    assert len(split_tunes(np.array([4, 4, 9]), 0.9, 0)) == 1  # one tune left to train on
    with pytest.raises(ValueError, match="at least two tunes"):
        split_tunes(np.array([3, 3]), 0.25, 0)


def test_the_bar_phase_probe_reads_bins_of_the_phase_and_undefined_steps_have_no_label():
    features = step_features([START, "M:4/4", "K:Cmaj", "C", "2", "D", "6", "|", "E", "4", "</s>"])
    bins = feature_labels(features, "bar_phase", 8)
    assert bins.isna().tolist()[:3] == [True, True, True]  # the header has no phase
    assert bins.iloc[3:10].tolist() == [0, 0, 2, 2, 0, 0, 0] and pd.isna(bins.iloc[10])  # nor the end


def test_a_single_phase_unit_decodes_the_bar_clock_alone_and_noise_units_add_nothing():
    rng = np.random.default_rng(0)
    tune_ids = np.repeat(np.arange(30), 40)
    phase = rng.random(len(tune_ids))
    x = rng.normal(size=(len(phase), 16))
    x[:, 5] = np.cos(2 * np.pi * phase)
    x[:, 9] = np.sin(2 * np.pi * phase)
    test = np.isin(tune_ids, split_tunes(tune_ids, 0.25, 0))
    rows = pd.DataFrame(bar_clock(x, phase, test, l2=1e-3)).set_index("k")
    assert rows.index.tolist() == powers_of_two(16) == [1, 2, 4, 8, 16]
    assert rows.loc[1, "top_units"].split()[0] in ("5", "9")
    assert rows.loc[1, "r2_test"] == pytest.approx(0.5, abs=0.05)  # one of cos, sin
    assert rows.loc[2, "r2_test"] > 0.99 and rows.loc[16, "r2_test"] > 0.98
    assert rows.loc[2, "share_of_best"] == pytest.approx(1, abs=0.02)


def test_each_units_phase_r2_and_the_ridge_r2_match_least_squares():
    rng = np.random.default_rng(1)
    phase = rng.random(500)
    x = rng.normal(size=(500, 3)) + np.column_stack([3 * np.sin(2 * np.pi * phase), np.zeros(500), phase])
    design = np.column_stack([np.ones(500), np.cos(2 * np.pi * phase), np.sin(2 * np.pi * phase)])
    for unit in range(3):
        residual = x[:, unit] - design @ np.linalg.lstsq(design, x[:, unit], rcond=None)[0]
        expected = 1 - (residual**2).sum() / ((x[:, unit] - x[:, unit].mean()) ** 2).sum()
        assert unit_phase_r2(x, phase)[unit] == pytest.approx(expected)
    y = x @ np.array([[1.0], [2.0], [-1.0]]) + 0.5
    assert ridge_r2(x[:400], y[:400], x[400:], y[400:], l2=0.0) == pytest.approx(1.0)


def test_sampled_steps_depend_on_the_tune_and_seed_alone():
    steps = sample_steps(7, 100, 24, seed=0)
    assert len(steps) == 24 and np.all(np.diff(steps) > 0) and steps.max() < 100
    assert np.array_equal(steps, sample_steps(7, 100, 24, seed=0))
    assert not np.array_equal(steps, sample_steps(8, 100, 24, seed=0))
    assert np.array_equal(sample_steps(7, 10, 24, seed=0), np.arange(10))


def _analyse(tmp_path, tunes, jobs: int, plan: Plan = PLAN) -> list:
    model = small_model(n_units=16)
    settings = Settings.from_config({"bar_permutations": 0}, [1], ["h"], {"families": ["onehot"]})
    bands = {"distance": {"low": 0.02, "high": 1.98}, "cosine": {"low": 0.02, "high": 0.98}}
    batches = plan_batches(tunes, 600)
    folders = []
    for part in range(jobs):
        folder = tmp_path / f"{jobs}_{part}"
        thresholds = {"low": 0.1, "high": 0.9}
        analyse_part(
            model, batches[part::jobs], None, settings, bands, thresholds, 8, folder, {}, decoding=plan
        )
        folders.append(folder)
    return folders, model


def _excerpt_tunes() -> list[TuneSpec]:
    return [
        TuneSpec(k, "real", title=f"t{k}", tokens=tuple(t.tokens))
        for k, t in enumerate(read_token_file(EXCERPT))
    ]


def test_the_parts_sample_the_states_of_the_steps_and_any_split_gives_the_same_rows(tmp_path):
    tunes = _excerpt_tunes()
    one, model = _analyse(tmp_path, tunes, 1)
    two, _ = _analyse(tmp_path, tunes, 2)
    keys, states = load_states([f / f"{STATES}.parquet" for f in one], 2, "h")
    keys_two, states_two = load_states([f / f"{STATES}.parquet" for f in two], 2, "h")
    assert np.array_equal(keys, keys_two) and np.array_equal(states, states_two)
    assert len(keys) == sum(min(24, len(t.tokens) + 1) for t in tunes)
    tune = tunes[3]
    capture = model.read([list(tune.tokens)])[0]
    rows = keys[:, 0] == 3
    expected = capture.quantity(2, "h")[sample_steps(3, len(tune.tokens) + 1, 24, 0)]
    assert np.array_equal(keys[rows, 1], sample_steps(3, len(tune.tokens) + 1, 24, 0))
    assert np.array_equal(states[rows], expected.astype(np.float32))


def _features_table(folders, path):
    table = pd.concat([pd.read_parquet(f / "features.parquet") for f in folders]).sort_values("tune_id")
    table.to_parquet(path, index=False)
    return path


def test_a_corpus_analysis_decodes_every_feature_with_its_control_the_same_with_one_job_or_two(tmp_path):
    tunes = _excerpt_tunes()
    one, _ = _analyse(tmp_path, tunes, 1)
    two, _ = _analyse(tmp_path, tunes, 2)
    tables = []
    for folders in (one, two):
        features = _features_table(folders, tmp_path / f"features_{len(folders)}.parquet")
        tables.append(decode_corpus([f / f"{STATES}.parquet" for f in folders], features, PLAN))
    for first, second in zip(*tables):
        pd.testing.assert_frame_equal(first, second)
    decoding, clock = tables[0]
    assert set(decoding["feature"]) == set(PLAN.features)
    assert len(decoding) == 2 * len(PLAN.features) and len(clock) == 2 * len(powers_of_two(16))
    assert (decoding["n_test_tunes"] == 3).all() and (decoding["n_train_tunes"] == 9).all()
    row = decoding.set_index(["layer", "feature"]).loc[(1, "input_type")]
    assert row["accuracy"] > row["majority_accuracy"] + 0.1  # the token read is in the state
    expected = row["accuracy"] - row["control_accuracy"]
    assert row["selectivity"] == pytest.approx(expected)
    assert decoding["accuracy"].between(0, 1).all() and decoding["majority_accuracy"].between(0, 1).all()


def test_a_probe_on_real_states_with_shuffled_labels_scores_at_chance(tmp_path):
    """Labels shuffled across the training steps carry nothing the states can decode:
    the held-out accuracy falls to chance, what predictions independent of the labels
    with the same frequencies get."""
    tunes = _excerpt_tunes()
    folders, _ = _analyse(tmp_path, tunes, 1)
    keys, x = load_states([f / f"{STATES}.parquet" for f in folders], 1, "h")
    features = pd.read_parquet(folders[0] / "features.parquet").set_index(["tune_id", "step"])
    labels = features.loc[list(map(tuple, keys)), "input_type"].to_numpy()
    test = np.isin(keys[:, 0], split_tunes(keys[:, 0], 0.25, 0))
    real = fit_probe(x[~test], labels[~test], 1e-3).accuracy(x[test], labels[test])
    gaps = []
    for seed in range(3):
        shuffled = np.random.default_rng(seed).permutation(labels[~test])
        probe = fit_probe(x[~test], shuffled, 1e-3)
        gaps.append(probe.accuracy(x[test], labels[test]) - _chance(probe.predict(x[test]), labels[test]))
    assert real > majority_accuracy(labels[~test], labels[test]) + 0.1 and abs(np.mean(gaps)) < 0.05
