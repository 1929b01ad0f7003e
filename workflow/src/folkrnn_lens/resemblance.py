"""How much two step-by-step similarity matrices resemble each other, with
significance tests that respect time.

Part 9 of Sturm's folk-rnn series eyeballs that the layer-2 hidden-state Gramian
"bears the most resemblance to X^T X". Here that resemblance is a number:

- Pearson and Spearman correlation of the off-diagonal entries (the pairs of
  different steps);
- linear CKA of the centred matrices (Kornblith et al. 2019):
  <HKH, HLH>_F / (||HKH||_F ||HLH||_F), H = I - 11^T / n.

Steps of a tune are not exchangeable, so the null distribution does not shuffle
steps one by one (that would destroy the autocorrelation both matrices share and
overstate significance). It moves one matrix against the other in time:

- circular shifts: steps relabelled t -> (t + k) mod n, for every k in 1..n-1
  (or a seeded sample of them);
- bar permutations: whole bars reordered, each bar's steps kept in order.

p = (1 + #{null >= observed}) / (1 + n_null), one-sided (resemblance larger than
chance). Holm's method corrects the p-values of all comparisons of a tune.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATISTICS = ("pearson", "spearman", "cka")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator > 0 else float("nan")


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank (as Spearman's rho needs)."""
    order = np.argsort(values, kind="stable")
    boundaries = np.flatnonzero(np.diff(values[order])) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    result = np.empty(len(values))
    result[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # mean rank of each tie
    return result


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(ranks(x), ranks(y))


def centre(matrix: np.ndarray) -> np.ndarray:
    """H M H with H = I - 11^T/n, without forming H."""
    matrix = matrix - matrix.mean(axis=0, keepdims=True)
    return matrix - matrix.mean(axis=1, keepdims=True)


def prepared(name: str, matrix: np.ndarray) -> np.ndarray:
    """The matrix M' for which a statistic is a normalised Frobenius product,
    stat(A, B) = <A', B'> / (|A'| |B'|). Reordering steps (rows and columns
    alike) commutes with this preparation, which makes null distributions cheap.

    pearson / spearman: off-diagonal entries (values, or their ranks) minus their
    mean, diagonal zero; cka: the centred matrix.
    """
    matrix = np.asarray(matrix, dtype=float)
    if name == "cka":
        return centre(matrix)
    if name not in STATISTICS:
        raise ValueError(f"unknown statistic {name!r}; expected one of {STATISTICS}")
    off = ~np.eye(matrix.shape[0], dtype=bool)
    values = matrix[off]
    if name == "spearman":
        values = ranks(values)
    result = np.zeros_like(matrix)
    result[off] = values - values.mean()
    return result


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.sum(a * b) / denominator) if denominator > 0 else float("nan")


def statistic(name: str, A: np.ndarray, B: np.ndarray) -> float:
    """Pearson or Spearman correlation of the off-diagonal entries (pairs of
    different steps), or linear CKA, of two n x n matrices of the same steps."""
    return _cosine(prepared(name, A), prepared(name, B))


def linear_cka(K: np.ndarray, L: np.ndarray) -> float:
    return statistic("cka", K, L)


def shifted_pair(A: np.ndarray, B: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """A's steps 0..n-1-shift against B's steps shift..n-1.

    With A an activation Gramian and B = X^T X of the input tokens, shift 1 sets
    the activations of step t against the token input at step t + 1, the token
    the model predicts at step t (DESIGN.md's one-step shift).
    """
    if shift < 0:
        B_part, A_part = shifted_pair(B, A, -shift)
        return A_part, B_part
    n = A.shape[0]
    return A[: n - shift, : n - shift], B[shift:, shift:]


def circular_shift_orders(n: int, count: int | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Step orders t -> (t + k) mod n: all k in 1..n-1, or ``count`` of them."""
    shifts = np.arange(1, n)
    if count is not None and count < len(shifts):
        shifts = np.sort(rng.choice(shifts, size=count, replace=False))
    return [(np.arange(n) + k) % n for k in shifts]


def bar_permutation_orders(bars: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Step orders that reorder whole bars (keeping the steps of a bar in order),
    never the identity. ``bars`` is each step's bar index (non-decreasing)."""
    labels = np.unique(bars)
    if len(labels) < 2:
        return []
    blocks = [np.flatnonzero(bars == label) for label in labels]
    orders = []
    for _ in range(count):
        permutation = rng.permutation(len(blocks))
        while np.array_equal(permutation, np.arange(len(blocks))):
            permutation = rng.permutation(len(blocks))
        orders.append(np.concatenate([blocks[k] for k in permutation]))
    return orders


@dataclass(frozen=True)
class TestResult:
    observed: float
    p_value: float
    n_null: int
    null_mean: float


def permutation_test(name: str, A: np.ndarray, B: np.ndarray, orders: list[np.ndarray]) -> TestResult:
    """The statistic of A against B, and against B with its steps reordered by each
    order (rows and columns alike): a one-sided p-value for resemblance."""
    a, b = prepared(name, A), prepared(name, B)
    null = np.array([_cosine(a, b[np.ix_(order, order)]) for order in orders])
    return _test_result(_cosine(a, b), null)


def circular_shift_test(name: str, A: np.ndarray, B: np.ndarray) -> TestResult:
    """permutation_test over every circular shift, computed by FFT."""
    return _test_result(statistic(name, A, B), circular_shift_null(name, A, B))


def _test_result(observed: float, null: np.ndarray) -> TestResult:
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or len(null) == 0:
        return TestResult(observed, float("nan"), len(null), float("nan"))
    p_value = (1 + np.sum(null >= observed - 1e-12)) / (1 + len(null))  # ties count against
    return TestResult(observed, float(p_value), len(null), float(null.mean()))


def circular_shift_null(name: str, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The statistic of A against B circularly shifted by every k in 1..n-1, all at
    once: <a, b shifted by k> = sum over diagonals d of the cross-correlation of
    a's and b's circular diagonals, which one FFT per matrix gives for every k
    (O(n^2 log n) instead of O(n^3)). Equals permutation_test's null over
    circular_shift_orders(n, None)."""
    a, b = prepared(name, A), prepared(name, B)
    n = a.shape[0]
    rows = np.arange(n)[:, None]
    diagonals = (rows + np.arange(n)[None, :]) % n  # [s, d] -> column (s + d) mod n
    a_d, b_d = a[rows, diagonals], b[rows, diagonals]  # (s, d): entry (s, s + d)
    spectrum = np.conj(np.fft.rfft(a_d, axis=0)) * np.fft.rfft(b_d, axis=0)
    products = np.fft.irfft(spectrum.sum(axis=1), n=n)  # [k] = sum a[s, t] b[s + k, t + k]
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    if denominator == 0:
        return np.full(n - 1, np.nan)
    return products[1:] / denominator


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), NaN left as NaN."""
    p_values = np.asarray(p_values, float)
    adjusted = np.full_like(p_values, np.nan)
    valid = np.flatnonzero(np.isfinite(p_values))
    m = len(valid)
    if m == 0:
        return adjusted
    order = valid[np.argsort(p_values[valid], kind="stable")]
    scaled = (m - np.arange(m)) * p_values[order]
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted
