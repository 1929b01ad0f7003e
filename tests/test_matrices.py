"""The part-9 matrices against their definitions, written plainly, on small cases."""

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from folkrnn_lens.activations.tables import Provenance, load_activations, write_capture
from folkrnn_lens.config import resolve_section
from folkrnn_lens.matrices import maths
from folkrnn_lens.matrices.compute import compute_matrices, describe_row, matrices_in_memory
from folkrnn_lens.matrices.maths import (
    band_counts,
    cross_gramian,
    magnitude_gramian,
    onehot_gramian,
    onehot_matrix,
    pair_values,
    signed_gramian,
    softmax_l1_distances,
)
from folkrnn_lens.matrices.plan import check_bands, plan_analysis
from folkrnn_lens.names import KINDS, QUANTITIES, matrix_kind, matrix_name, parse_matrix_name

from .conftest import small_model

# ---- reference implementations: one pair at a time, straight from docs/specification.md ------


def reference_onehot(tokens):
    n = len(tokens)
    return np.array([[1.0 if tokens[s] == tokens[t] else 0.0 for t in range(n)] for s in range(n)])


def reference_l1(p):
    n = len(p)
    return np.array([[sum(abs(a - b) for a, b in zip(p[s], p[t])) for t in range(n)] for s in range(n)])


def reference_cosine(a, b):
    na, nb = np.sqrt(sum(x * x for x in a)), np.sqrt(sum(x * x for x in b))
    if na == 0 or nb == 0:
        return 0.0
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


def reference_cross(qa, qb):
    return np.array([[reference_cosine(qa[s], qb[t]) for t in range(len(qb))] for s in range(len(qa))])


# ---- the matrices ---------------------------------------------------------------


def test_onehot_gramian_is_one_where_the_tokens_agree():
    tokens = ["<s>", "M:6/8", "K:Cmaj", "c", "2", "c", "|", "c", "|"]
    g = onehot_gramian(tokens)
    np.testing.assert_array_equal(g, reference_onehot(tokens))
    assert g[3, 5] == g[3, 7] == g[6, 8] == 1 and g[3, 4] == 0
    x, distinct = onehot_matrix(tokens)
    assert x.shape == (9, len(distinct)) and np.all(x.sum(axis=1) == 1)


def test_softmax_distances_of_a_two_step_tune():
    p = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    d = softmax_l1_distances(p)
    assert d.shape == (2, 2)
    assert d[0, 0] == d[1, 1] == 0
    assert d[0, 1] == d[1, 0] == pytest.approx(0.6 + 0.0 + 0.2 + 0.4)


def test_disjoint_supports_are_exactly_distance_two():
    p = np.array(
        [[0.5, 0.5, 0, 0, 0], [0, 0, 0.25, 0.75, 0], [0, 0, 0, 0, 1.0], [0.5, 0.5, 0, 0, 0]], np.float32
    )
    d = softmax_l1_distances(p)
    for s, t in [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]:
        assert d[s, t] == 2.0
    assert d[0, 3] == 0.0
    counts = band_counts(d, "distance", 0.02, 1.98)
    assert (counts.n_pairs, counts.n_low, counts.n_high) == (6, 1, 5)


def test_softmax_distances_match_the_pairwise_definition_in_chunks():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(23, 11))
    p = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    expected = reference_l1(p.astype(np.float64))
    for chunk_bytes in (1, 23 * 11 * 8 * 5, 1 << 30):  # one row at a time, five, all
        np.testing.assert_allclose(softmax_l1_distances(p, chunk_bytes), expected, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=st.floats(0, 1)))
def test_softmax_distances_are_symmetric_and_within_zero_and_two(raw):
    p = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-12)
    p[raw.sum(axis=1) == 0, 0] = 1.0  # every row a distribution
    d = softmax_l1_distances(p)
    np.testing.assert_array_equal(d, d.T)
    assert np.all(np.diag(d) == 0) and np.all(d >= 0) and np.all(d <= 2 + 1e-6)
    np.testing.assert_allclose(d, reference_l1(p), atol=1e-5)


def test_gramians_are_cosines_of_the_steps():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(7, 5))
    expected = reference_cross(q, q)
    np.testing.assert_allclose(signed_gramian(q), expected, atol=1e-6)
    np.testing.assert_allclose(magnitude_gramian(q), np.abs(expected), atol=1e-6)
    np.testing.assert_allclose(np.diag(signed_gramian(q)), 1.0, atol=1e-6)


def test_gramians_of_known_angles_and_polarity():
    q = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0]])
    signed = signed_gramian(q)
    assert signed[0, 1] == 0 and signed[0, 2] == -1 and signed[0, 3] == pytest.approx(np.sqrt(0.5))
    assert magnitude_gramian(q)[0, 2] == 1


def test_a_zero_step_has_cosine_zero_with_every_step():
    q = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    g = signed_gramian(q)
    assert np.all(g[1] == 0) and np.all(g[:, 1] == 0)
    assert np.isfinite(g).all()


def test_cross_matrix_rows_are_steps_of_the_first_gate():
    rng = np.random.default_rng(2)
    a, b = rng.random((6, 4)), rng.normal(size=(6, 4))
    cross = cross_gramian(a, b)
    np.testing.assert_allclose(cross, reference_cross(a, b), atol=1e-6)
    assert cross[1, 4] == pytest.approx(reference_cosine(a[1], b[4]))
    assert not np.allclose(cross, cross.T)
    with pytest.raises(ValueError, match="7 steps"):
        cross_gramian(a, rng.random((7, 4)))


# ---- band counts ----------------------------------------------------------------


def test_band_counts_of_a_symmetric_matrix_count_each_unordered_pair_once():
    d = np.array(
        [
            [0.0, 0.01, 1.99, 1.0],
            [0.01, 0.0, 0.02, 1.98],
            [1.99, 0.02, 0.0, 0.5],
            [1.0, 1.98, 0.5, 0.0],
        ]
    )
    counts = band_counts(d, "distance", 0.02, 1.98)
    assert counts.pairs == "unordered" and counts.n_pairs == 6
    assert (counts.n_low, counts.n_high, counts.n_opposite) == (2, 2, None)  # bands are closed


def test_band_counts_of_cosines_ignore_or_keep_polarity_by_kind():
    g = np.array([[1.0, -0.99, 0.01], [-0.99, 1.0, 0.5], [0.01, 0.5, 1.0]])
    magnitude = band_counts(np.abs(g), "magnitude", 0.02, 0.98)
    assert (magnitude.n_pairs, magnitude.n_low, magnitude.n_high) == (3, 1, 1)
    signed = band_counts(g, "signed", 0.02, 0.98)
    assert (signed.n_low, signed.n_high, signed.n_opposite) == (1, 0, 1)


def test_band_counts_of_a_cross_matrix_count_ordered_off_diagonal_pairs():
    c = np.array([[1.0, 0.99, 0.0], [0.1, 0.5, -1.0], [0.99, 0.0, 0.3]])
    counts = band_counts(c, "cross", 0.02, 0.98)
    assert counts.pairs == "ordered" and counts.n_pairs == 6  # n(n-1), diagonal left out
    assert (counts.n_low, counts.n_high, counts.n_opposite) == (2, 2, 1)


def test_band_counts_of_onehot_are_same_and_different_tokens():
    g = reference_onehot(["a", "b", "a", "a", "c"])
    counts = band_counts(g, "onehot", 0.02, 0.98)
    assert (counts.n_pairs, counts.n_high, counts.n_low) == (10, 3, 7)


def test_band_counts_of_every_pair_add_up():
    rng = np.random.default_rng(3)
    d = rng.uniform(0, 2, (40, 40))
    d = (d + d.T) / 2
    counts = band_counts(d, "distance", 0.5, 1.5)
    upper = [d[s, t] for s, t in itertools.combinations(range(40), 2)]
    assert counts.n_pairs == 780
    assert counts.n_low == sum(v <= 0.5 for v in upper) and counts.n_high == sum(v >= 1.5 for v in upper)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown matrix kind"):
        band_counts(np.eye(2), "banana", 0.1, 0.9)


# ---- the plan ---------------------------------------------------------------------


def test_default_plan_is_part_nine():
    plan = plan_analysis({})
    names = plan.names
    assert names[:2] == ["onehot", "softmax_l1"]
    assert len(names) == 2 + 3 * 7 * 2 + 3 * 5
    for name in ("L1.h.abs", "L3.h.signed", "L2.g_pre.abs", "L2.i_x_o", "L3.f_x_i", "L1.h_x_o"):
        assert name in names
    cross = plan.spec("L2.f_x_i")
    assert (cross.kind, cross.layer, cross.quantity, cross.quantity_b) == ("cross", 2, "f", "i")
    animations = {a.name: a for a in plan.animations}
    assert len(animations) == 7 + 1 + 5
    assert animations["h.abs"].frames == (("L1.h.abs",), ("L2.h.abs",), ("L3.h.abs",))
    assert animations["onehot_vs_h"].frames[2] == ("onehot", "L3.h.abs")
    assert animations["i_x_o"].frames[0] == ("L1.i_x_o",)


def test_signed_gramians_alone_are_animated_in_place_of_the_abs_ones():
    plan = plan_analysis({"gramians": ["signed"], "cross_pairs": []}, [1, 2], ["h", "c"])
    animations = {a.name: a for a in plan.animations}
    assert set(animations) == {"c.signed", "h.signed", "onehot_vs_h"}
    assert animations["onehot_vs_h"].frames[1] == ("onehot", "L2.h.signed")
    plan = plan_analysis({"gramians": [], "cross_pairs": []}, [1, 2], ["h"])
    assert plan.animations == () and any("analysis.gramians makes none" in n for n in plan.skipped)


def test_only_layer_three_hidden_state():
    plan = plan_analysis({"layers": [3], "quantities": ["h"], "onehot": False, "softmax": False})
    assert plan.names == ["L3.h.abs", "L3.h.signed"]
    assert plan.animations == ()
    assert any("cross pair i x o" in note for note in plan.skipped)
    assert any("animations" in note for note in plan.skipped)


def test_analysis_defaults_to_what_was_recorded_and_refuses_what_was_not():
    plan = plan_analysis({}, [1, 3], ["h", "f", "c"])
    assert {spec.layer for spec in plan.matrices if spec.layer} == {1, 3}
    assert {spec.quantity for spec in plan.matrices if spec.quantity} == {"h", "f", "c"}
    assert not any(spec.kind == "cross" for spec in plan.matrices)
    with pytest.raises(ValueError, match="layer 2, but record.layers holds"):
        plan_analysis({"layers": [2]}, [1, 3], ["h"])
    with pytest.raises(ValueError, match="'o', but record.quantities holds"):
        plan_analysis({"quantities": ["o"]}, [1, 3], ["h"])
    with pytest.raises(ValueError, match="low .* must be below high"):
        plan_analysis({"bands": {"cosine": {"low": 0.9, "high": 0.1}}})
    with pytest.raises(ValueError, match=r"cosine: low \(0.99\) must be below high \(0.98\)"):
        plan_analysis({"bands": {"cosine": {"low": 0.99}}})  # the default high applies


def test_one_threshold_of_a_band_keeps_the_other_s_default():
    from folkrnn_lens.figures.style import Style

    bands = check_bands(resolve_section("analysis", {"bands": {"distance": {"low": 0.05}}})["bands"])
    assert bands == {"distance": {"low": 0.05, "high": 1.98}, "cosine": {"low": 0.02, "high": 0.98}}
    assert Style.from_config({"bands": {"distance": {"low": 0.05}}}).bands == bands


# ---- one transcription, from its Parquet tables -------------------------------------


@pytest.fixture(scope="module")
def tables(tmp_path_factory, excerpt):
    folder = tmp_path_factory.mktemp("capture")
    model = small_model(n_units=8)
    capture = model.read([excerpt[0].tokens[:30]])[0]
    provenance = Provenance(model_file="test", model_sha256="-", vocab=model.vocab, mode="read")
    write_capture(capture, provenance, folder / "steps.parquet", folder / "activations.parquet", [1, 2, 3])
    return folder, capture


def test_matrices_of_a_transcription_match_the_definitions(tables, tmp_path):
    folder, capture = tables
    plan = compute_matrices(
        "tune",
        folder / "steps.parquet",
        folder / "activations.parquet",
        tmp_path / "matrices.npz",
        tmp_path / "summary.parquet",
        plan_analysis({"quantities": ["h", "o", "i", "f"], "cross_pairs": [["i", "o"], ["f", "i"]]}),
        summary_html=tmp_path / "summary.html",
    )
    data = np.load(tmp_path / "matrices.npz")
    assert set(data.files) == {*plan.names, "tokens", "bars", "steps"}
    np.testing.assert_array_equal(data["steps"], np.arange(len(capture.input_tokens)))
    n = len(capture.input_tokens)
    assert data["tokens"].tolist() == capture.input_tokens
    np.testing.assert_array_equal(data["onehot"], reference_onehot(capture.input_tokens))
    np.testing.assert_allclose(
        data["softmax_l1"], reference_l1(capture.softmax.astype(np.float64)), atol=1e-5
    )
    act = {(k + 1, q): capture.activations[k, QUANTITIES.index(q)] for k in range(3) for q in QUANTITIES}
    np.testing.assert_allclose(data["L2.h.signed"], reference_cross(act[2, "h"], act[2, "h"]), atol=1e-5)
    np.testing.assert_allclose(data["L3.o.abs"], np.abs(reference_cross(act[3, "o"], act[3, "o"])), atol=1e-5)
    np.testing.assert_allclose(data["L1.f_x_i"], reference_cross(act[1, "f"], act[1, "i"]), atol=1e-5)
    assert all(data[name].shape == (n, n) and data[name].dtype == np.float32 for name in plan.names)

    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert summary["matrix"].tolist() == plan.names
    row = summary.set_index("matrix").loc["softmax_l1"]
    assert (row.n_steps, row.n_pairs, row.pairs, row.low_threshold, row.high_threshold) == (
        n,
        n * (n - 1) // 2,
        "unordered",
        0.02,
        1.98,
    )
    assert row.n_low == band_counts(data["softmax_l1"], "distance", 0.02, 1.98).n_low
    cross = summary.set_index("matrix").loc["L2.i_x_o"]
    assert (cross.pairs, cross.n_pairs, cross.layer, cross.quantity, cross.quantity_b) == (
        "ordered",
        n * (n - 1),
        2,
        "i",
        "o",
    )
    html = (tmp_path / "summary.html").read_text()
    assert "unique pairs of different steps" in html and "L2.i_x_o" in html


def test_the_npz_is_the_same_bytes_every_time(tables, tmp_path):
    folder, _ = tables
    for run in ("a", "b"):
        compute_matrices(
            "tune",
            folder / "steps.parquet",
            folder / "activations.parquet",
            tmp_path / run / "m.npz",
            tmp_path / run / "s.parquet",
            plan_analysis({"quantities": ["h"]}),
        )
    assert (tmp_path / "a" / "m.npz").read_bytes() == (tmp_path / "b" / "m.npz").read_bytes()
    assert (tmp_path / "a" / "s.parquet").read_bytes() == (tmp_path / "b" / "s.parquet").read_bytes()


def test_a_missing_quantity_is_named(tables, tmp_path):
    folder, _ = tables
    with pytest.raises(KeyError, match="no layer 4 quantity 'h'"):
        load_activations(folder / "activations.parquet", {(4, "h")})


def test_describe_row_reads_like_part_nine():
    row = pd.Series(
        {
            "kind": "distance",
            "pairs": "unordered",
            "n_pairs": 13366,
            "n_low": 3,
            "n_high": 12,
            "low_threshold": 0.02,
            "high_threshold": 1.98,
            "n_opposite": None,
        }
    )
    text = describe_row(row)
    assert text == (
        "of the 13366 unique pairs of different steps, 3 have a distance <= 0.02 and 12 a distance >= 1.98"
    )


def test_matrix_kind_inverts_matrix_name():
    for kind in ("onehot", "distance", "magnitude", "signed", "cross"):
        assert matrix_kind(matrix_name(kind, 2, "h", "c")) == kind
    for bad in ("L2.h", "L2.x.abs", "L2.h.abs.signed", "L2.i_x_", "l2.h.abs", "onehot2"):
        with pytest.raises(ValueError, match="not a matrix name"):
            matrix_kind(bad)


def test_parse_matrix_name_gives_back_every_part():
    for spec in plan_analysis().matrices:
        assert parse_matrix_name(spec.name) == (spec.kind, spec.layer, spec.quantity, spec.quantity_b)
    assert parse_matrix_name("L12.g_pre_x_g") == ("cross", 12, "g_pre", "g")


@pytest.mark.parametrize("kind", KINDS)
def test_band_counts_in_blocks_of_rows_equal_counting_every_pair_at_once(kind, monkeypatch):
    """A long tune's matrix is counted a few rows at a time; the counts are those of
    all unique pairs of different steps gathered at once."""
    rng = np.random.default_rng(1)
    matrix = rng.uniform(0, 2, (23, 23)) if kind == "distance" else rng.uniform(-1, 1, (23, 23))
    if kind != "cross":
        matrix = (matrix + matrix.T) / 2
    monkeypatch.setattr(maths, "BAND_ROWS", 5)
    low, high = (0.3, 1.7) if kind == "distance" else (0.2, 0.8)
    counts = band_counts(matrix, kind, low, high)
    values = pair_values(matrix, kind != "cross")
    magnitude = values if kind in ("distance", "signed", "cross") else np.abs(values)
    assert counts.n_pairs == values.size
    if kind == "distance":
        assert (counts.n_low, counts.n_high) == ((values <= low).sum(), (values >= high).sum())
    else:
        assert counts.n_low == (np.abs(values) <= low).sum()
        assert counts.n_high == (magnitude >= high).sum()
    assert counts.n_opposite == ((values <= -high).sum() if kind in ("signed", "cross") else None)


def test_the_matrices_stage_writes_each_matrix_as_it_goes(tmp_path):
    """matrices.npz holds the same arrays as matrices_in_memory, in the plan's order then
    tokens and bars, written one at a time (NpzWriter)."""
    model = small_model()
    capture = model.read([["M:4/4", "K:Cmaj", "C", "D", "|", "E", "F", "|", "G", "A", "|"]])[0]
    provenance = _provenance(model)
    write_capture(capture, provenance, tmp_path / "steps.parquet", tmp_path / "activations.parquet")
    plan = compute_matrices(
        "t",
        tmp_path / "steps.parquet",
        tmp_path / "activations.parquet",
        tmp_path / "m.npz",
        tmp_path / "s.parquet",
        plan_analysis(),
    )
    expected = matrices_in_memory(tmp_path / "steps.parquet", tmp_path / "activations.parquet", plan)
    with np.load(tmp_path / "m.npz") as written:
        assert list(written.keys()) == [*plan.names, "tokens", "bars", "steps"] == list(expected)
        for key in expected:
            np.testing.assert_array_equal(written[key], expected[key])


def _provenance(model):
    return Provenance(model_file="test", model_sha256="-", vocab=model.vocab, mode="read")


def test_a_window_of_steps_gives_that_block_of_every_matrix(tmp_path):
    """window (start, stop): the matrices of steps start..stop-1 are that block of the
    whole tune's matrices; tokens, bars and steps say which steps they are."""
    model = small_model()
    tokens = ["M:4/4", "K:Cmaj", *("C D | E F | G A | B c |".split() * 2)]
    capture = model.read([tokens])[0]
    steps, acts = tmp_path / "steps.parquet", tmp_path / "activations.parquet"
    write_capture(capture, _provenance(model), steps, acts)
    plan = plan_analysis({})
    whole = matrices_in_memory(steps, acts, plan)
    compute_matrices("t", steps, acts, tmp_path / "w.npz", tmp_path / "s.parquet", plan, window=(5, 17))
    with np.load(tmp_path / "w.npz") as window:
        np.testing.assert_array_equal(window["steps"], np.arange(5, 17))
        assert window["tokens"].tolist() == capture.input_tokens[5:17]
        np.testing.assert_array_equal(window["bars"], whole["bars"][5:17])
        for name in plan.names:
            np.testing.assert_allclose(window[name], whole[name][5:17, 5:17], atol=1e-6, err_msg=name)
    assert (pd.read_parquet(tmp_path / "s.parquet")["n_steps"] == 12).all()
    with pytest.raises(ValueError, match="window of steps 20..39 does not fit a tune of"):
        matrices_in_memory(steps, acts, plan, window=(20, 40))


def test_an_influence_matrix_of_other_steps_is_refused_naming_the_file(tmp_path):
    from folkrnn_lens.matrices.compute import load_influence, save_npz

    path = tmp_path / "influence.npz"
    save_npz(path, {"influence": np.zeros((5, 5), np.float32)})
    assert load_influence(path, 5).shape == (5, 5)
    with pytest.raises(ValueError, match=r"influence.npz: an influence matrix of 5 steps.* has 6"):
        load_influence(path, 6)
