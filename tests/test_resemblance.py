import numpy as np
import pandas as pd
import pytest
from scipy import stats

from folkrnn_lens.names import QUANTITIES
from folkrnn_lens.resemblance.comparisons import (
    bytes_per_matrix,
    comparison_chunks,
    matrices_per_chunk,
    transient_bytes,
)
from folkrnn_lens.resemblance.saturation import saturation_fractions, saturation_table
from folkrnn_lens.resemblance.settings import LazyGramians, Settings, gramians_of
from folkrnn_lens.resemblance.statistics import (
    bar_permutation_orders,
    circular_shift_null,
    circular_shift_orders,
    circular_shift_test,
    fft_length,
    holm,
    linear_cka,
    pearson,
    permutation_test,
    ranks,
    shifted_pair,
    statistic,
)


def gram(X: np.ndarray) -> np.ndarray:
    return X @ X.T


def off(M: np.ndarray) -> np.ndarray:
    return M[np.triu_indices(len(M), 1)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_hand_computed_pearson_and_ranks():
    assert pearson(np.array([1.0, 2, 3]), np.array([2.0, 4, 6])) == pytest.approx(1.0)
    assert pearson(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1.0)
    np.testing.assert_array_equal(ranks(np.array([10.0, 30, 20, 20])), [1, 4, 2.5, 2.5])


def test_correlations_match_scipy_on_off_diagonal_entries(rng):
    for _ in range(5):
        A, B = gram(rng.normal(size=(12, 4))), gram(rng.normal(size=(12, 4)))
        B[0, 1] = B[1, 0] = B[2, 3] = B[3, 2]  # a tie, for Spearman
        assert statistic("pearson", A, B) == pytest.approx(stats.pearsonr(off(A), off(B))[0], abs=1e-12)
        assert statistic("spearman", A, B) == pytest.approx(stats.spearmanr(off(A), off(B))[0], abs=1e-12)


def cka_reference(X: np.ndarray, Y: np.ndarray) -> float:
    """Kornblith et al.'s feature-space formula: ||Y^T X||^2 / (||X^T X|| ||Y^T Y||), centred X, Y."""
    X, Y = X - X.mean(axis=0), Y - Y.mean(axis=0)
    return np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))


def test_linear_cka_matches_the_feature_space_formula(rng):
    X, Y = rng.normal(size=(30, 8)), rng.normal(size=(30, 5))
    assert linear_cka(gram(X), gram(Y)) == pytest.approx(cka_reference(X, Y), abs=1e-12)


def test_cka_of_a_matrix_with_itself_and_of_a_rotation_is_one(rng):
    X = rng.normal(size=(25, 6))
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert linear_cka(gram(X), gram(X)) == pytest.approx(1.0)
    assert linear_cka(gram(X), gram(X @ Q)) == pytest.approx(1.0)
    assert linear_cka(gram(X), gram(3.0 * X)) == pytest.approx(1.0)  # isotropic scaling


def test_shifted_pair_sets_step_t_against_step_t_plus_shift():
    A, B = np.arange(16.0).reshape(4, 4), -np.arange(16.0).reshape(4, 4)
    a, b = shifted_pair(A, B, 1)
    np.testing.assert_array_equal(a, A[:3, :3])
    np.testing.assert_array_equal(b, B[1:, 1:])
    a, b = shifted_pair(A, B, -1)
    np.testing.assert_array_equal(a, A[1:, 1:])
    np.testing.assert_array_equal(b, B[:3, :3])


def test_null_orders_are_shifts_and_bar_permutations(rng):
    orders = circular_shift_orders(5, None, rng)
    assert [o.tolist() for o in orders[:2]] == [[1, 2, 3, 4, 0], [2, 3, 4, 0, 1]]
    assert len(orders) == 4 and len(circular_shift_orders(50, 10, rng)) == 10
    bars = np.array([0, 0, 1, 1, 1, 2])
    for order in bar_permutation_orders(bars, 20, rng):
        assert sorted(order.tolist()) == list(range(6))
        assert order.tolist() != list(range(6))
        blocks = [order[k : k + 2].tolist() for k in range(len(order))]
        assert [0, 1] in blocks and [2, 3] in blocks and [3, 4] in blocks  # bars kept whole, in order
    assert bar_permutation_orders(np.zeros(4, int), 5, rng) == []


def test_few_bars_give_every_other_order_once_and_many_bars_distinct_ones(rng):
    three = np.repeat([0, 1, 2], 4)
    orders = bar_permutation_orders(three, 199, rng)  # 3! - 1 = 5: all of them, an exact test
    assert len(orders) == 5 and len({tuple(o) for o in orders}) == 5
    seven = np.repeat(np.arange(7), 2)
    orders = bar_permutation_orders(seven, 199, rng)
    assert len(orders) == 199 and len({tuple(o) for o in orders}) == 199


def test_bar_null_of_unrelated_matrices_in_few_bars_is_not_overconfident(rng):
    """With 3 bars only 5 other orders exist, so no p-value can fall below 1/6."""
    bars = np.repeat([0, 1, 2], 8)
    p_values = []
    for _ in range(100):
        A, B = np.abs(np.corrcoef(ar1(rng, 24, 4))), np.abs(np.corrcoef(ar1(rng, 24, 4)))
        result = permutation_test("pearson", A, B, bar_permutation_orders(bars, 199, rng))
        assert result.n_null == 5
        p_values.append(result.p_value)
    assert min(p_values) >= 1 / 6


def test_a_matrix_resembles_itself_significantly(rng):
    X = ar1(rng, 60, 5)  # autocorrelated, like activations
    G = gram(X / np.linalg.norm(X, axis=1, keepdims=True))
    result = permutation_test("pearson", G, G, circular_shift_orders(60, None, rng))
    assert result.observed == pytest.approx(1.0)
    assert result.p_value == pytest.approx(1 / 60)
    assert result.n_null == 59


def ar1(rng: np.random.Generator, n: int, width: int, phi: float = 0.7) -> np.ndarray:
    """A stationary autocorrelated sequence of feature vectors."""
    X = np.empty((n, width))
    X[0] = rng.normal(size=width) / np.sqrt(1 - phi**2)
    for t in range(1, n):
        X[t] = phi * X[t - 1] + rng.normal(size=width)
    return X


def test_circular_shift_null_of_unrelated_matrices_gives_uniform_p_values(rng):
    p_values = []
    for _ in range(300):
        A, B = np.abs(np.corrcoef(ar1(rng, 40, 6))), np.abs(np.corrcoef(ar1(rng, 40, 6)))
        p_values.append(permutation_test("pearson", A, B, circular_shift_orders(40, None, rng)).p_value)
    p_values = np.array(p_values)
    assert stats.kstest(p_values, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(p_values < 0.05) < 0.09


@pytest.mark.parametrize("n", [23, 67])  # a direct FFT length; a padded one (fft_length)
@pytest.mark.parametrize("name", ["pearson", "spearman", "cka"])
def test_fft_circular_shift_null_equals_the_direct_one(rng, name, n):
    A, B = np.abs(np.corrcoef(ar1(rng, n, 4))), np.abs(np.corrcoef(ar1(rng, n, 4)))
    orders = circular_shift_orders(n, None, rng)
    direct = [statistic(name, A, B[np.ix_(order, order)]) for order in orders]
    np.testing.assert_allclose(circular_shift_null(name, A, B), direct, atol=1e-12)
    fast, slow = circular_shift_test(name, A, B), permutation_test(name, A, B, orders)
    assert fast.p_value == slow.p_value and fast.n_null == slow.n_null == n - 1


def test_fft_length_pads_only_lengths_with_a_large_prime_factor():
    assert [fft_length(n) for n in (23, 150, 175, 176)] == [23, 150, 175, 176]
    assert fft_length(173) == 360  # prime: 5-smooth and at least 2 * 173 - 1
    assert fft_length(2 * 67) == 270


def test_holm_adjustment_by_hand():
    adjusted = holm(np.array([0.01, 0.04, 0.03, np.nan, 0.005]))
    np.testing.assert_allclose(adjusted[[0, 1, 2, 4]], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[3])


def test_saturation_fractions_and_table():
    values = np.array([[0.05, 0.5, 0.95], [0.02, 0.95, 0.99], [0.5, 0.91, 0.2], [0.08, 0.5, 0.93]])
    below, above = saturation_fractions(values, 0.1, 0.9)
    np.testing.assert_allclose(below, [0.75, 0, 0])
    np.testing.assert_allclose(above, [0, 0.5, 0.75])
    table = saturation_table({(2, "f"): values, (1, "i"): values[:, :2]}, 0.1, 0.9)
    assert table[["layer", "gate"]].drop_duplicates().values.tolist() == [[1, "i"], [2, "f"]]
    assert len(table) == 5 and table["n_steps"].eq(4).all()


def tune_gramians(rng, n=60, layers=(1, 2), quantities=("f", "h")):
    """X^T X of a tune with repeating tokens and bars, and random activations per (layer, quantity)."""
    tokens = [str(k) for k in rng.integers(0, 6, size=n)]
    bars = np.repeat(np.arange(n // 6), 6)
    acts = {(layer, q): rng.normal(size=(n, 8)) for layer in layers for q in quantities}
    settings = Settings.from_config({"bar_permutations": 19}, list(layers), list(quantities))
    return tokens, bars, acts, settings


def test_a_long_tune_in_chunks_gives_the_table_of_all_at_once(rng):
    """Under a memory budget that fits two matrices at a time, every comparison is
    still made, with the same statistics and p-values (the nulls use the same orders)."""
    tokens, bars, acts, settings = tune_gramians(rng)
    whole = settings.table(gramians_of(lambda layer, q: acts[layer, q], tokens, settings), bars)
    n = len(tokens)
    assert matrices_per_chunk(n, transient_bytes(n) + 2 * bytes_per_matrix(n)) == 2
    calls = []
    lazy = LazyGramians(lambda layer, q: acts[layer, q], tokens, settings, keep=2)
    chunked = settings.table(
        lazy,
        bars,
        memory_bytes=transient_bytes(n) + 2 * bytes_per_matrix(n),
        progress=lambda count, what: calls.append((count, what)),
    )
    total = len(settings.comparisons()) * len(settings.statistics)
    assert sum(count for count, _ in calls) == total  # every comparison reported done
    pd.testing.assert_frame_equal(whole, chunked, check_exact=False, rtol=1e-12, atol=1e-12)


def test_chunks_keep_the_comparisons_of_one_b_together():
    """Each chunk's bar null permutes each of its b's once for every comparison
    against it, so a b's comparisons are cut only where a chunk ends."""
    settings = Settings.from_config({}, [1, 2, 3], list(QUANTITIES))
    comparisons = [c for c in settings.comparisons() if c.shift == 0]
    rows = list(range(len(comparisons)))
    for most in (3, 4, 8, 15):
        chunks = comparison_chunks(rows, comparisons, most)
        assert sorted(row for chunk in chunks for row in chunk) == rows
        for chunk in chunks:
            assert len({m for row in chunk for m in (comparisons[row].a, comparisons[row].b)}) <= most
        permuted = sum(len({comparisons[row].b for row in chunk}) for chunk in chunks)
        assert permuted <= len({c.b for c in comparisons}) + len(chunks) - 1, most


def test_lazy_gramians_equal_the_eager_ones_and_keep_only_a_few(rng):
    tokens, bars, acts, settings = tune_gramians(rng)
    eager = gramians_of(lambda layer, q: acts[layer, q], tokens, settings)
    lazy = LazyGramians(lambda layer, q: acts[layer, q], tokens, settings, keep=2)
    assert list(lazy) == list(eager)
    for name in eager:
        np.testing.assert_array_equal(lazy[name], eager[name])
    assert len(lazy._cache) == 2
    with pytest.raises(KeyError):
        lazy["L9.h.abs"]


def test_the_influence_matrix_is_compared_over_the_pairs_s_before_t(rng):
    """I is upper triangular: its comparisons use I[s, t] for s < t against G[s, t], so an
    I equal to a Gramian's upper triangle correlates 1 with it (and its bar null runs);
    CKA, defined for kernels only, is left undefined; in chunks, the same table."""
    tokens, bars, acts, settings = tune_gramians(rng)
    matrices = gramians_of(lambda layer, q: acts[layer, q], tokens, settings)
    target = matrices["L2.h.abs"]
    matrices["influence"] = np.triu(target)
    table = settings.table(matrices, bars, influence=True)
    rows = table[table["family"] == "influence"].set_index(["a", "b", "shift"])
    assert len(rows) == len(settings.shifts) + len(settings.layers) * len(settings.quantities)
    same = rows.loc[("L2.h.abs", "influence", 0)]
    assert same["pearson"] == pytest.approx(1.0) and same["spearman"] == pytest.approx(1.0)
    assert np.isnan(same["cka"]) and same["pearson_n_bars"] > 0
    other = rows.loc[("L1.f.abs", "influence", 0)]
    expected = stats.pearsonr(off(matrices["L1.f.abs"]), off(target))[0]
    assert other["pearson"] == pytest.approx(expected)
    shifted = rows.loc[("influence", "onehot", 1)]
    n = len(tokens)
    expected = stats.pearsonr(off(target[: n - 1, : n - 1]), off(matrices["onehot"][1:, 1:]))[0]
    assert shifted["pearson"] == pytest.approx(expected)
    lazy = LazyGramians(
        lambda layer, q: acts[layer, q], tokens, settings, keep=2, given={"influence": np.triu(target)}
    )
    chunked = settings.table(
        lazy, bars, memory_bytes=transient_bytes(n) + 2 * bytes_per_matrix(n), influence=True
    )
    pd.testing.assert_frame_equal(chunked, table)
