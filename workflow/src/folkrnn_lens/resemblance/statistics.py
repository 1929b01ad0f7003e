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

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

STATISTICS = ("pearson", "spearman", "cka")


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """The sum of a * b over all entries, the same bits however many BLAS threads
    run: BLAS's dot (np.vdot, vector @ vector, np.linalg.norm) splits a sum of more
    than 10,000 terms among its threads, so its last bits change with their number."""
    return float(np.einsum("i,i->", a.reshape(-1), b.reshape(-1)))


def norm(a: np.ndarray) -> float:
    """The Frobenius norm, by ``dot``."""
    return math.sqrt(dot(a, a))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = math.sqrt(dot(x, x) * dot(y, y))
    return dot(x, y) / denominator if denominator > 0 else float("nan")


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank (as Spearman's rho needs)."""
    order = np.argsort(values)  # any order within ties: they get their mean rank
    result = np.empty(len(values))
    result[order] = _tied_ranks(values[order])
    return result


def _tied_ranks(sorted_values: np.ndarray) -> np.ndarray:
    """The ranks (from 1) of sorted values, each run of ties given its mean rank."""
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(sorted_values)]])
    return np.repeat((starts + ends + 1) / 2.0, ends - starts)


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
    matrix = np.array(matrix, dtype=float)  # a copy this function may change
    if name == "cka":
        return centre(matrix)
    if name not in STATISTICS:
        raise ValueError(f"unknown statistic {name!r}; expected one of {STATISTICS}")
    n = matrix.shape[0]
    if name == "spearman":
        off = ~np.eye(n, dtype=bool)
        matrix[off] = ranks(matrix[off])
    if n > 1:  # the mean of the off-diagonal entries, without gathering them
        matrix -= (matrix.sum() - np.trace(matrix)) / (n * n - n)
    np.fill_diagonal(matrix, 0.0)
    return matrix


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = norm(a) * norm(b)
    return dot(a, b) / denominator if denominator > 0 else float("nan")


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
    the model predicts at step t (docs/specification.md's one-step shift).
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
    never the identity and no order twice: all k! - 1 of them where that is at
    most ``count`` (an exact test for a tune of few bars), else ``count`` distinct
    ones drawn at random. ``bars`` is each step's bar index (non-decreasing)."""
    labels = np.unique(bars)
    if len(labels) < 2 or count <= 0:
        return []
    blocks = [np.flatnonzero(bars == label) for label in labels]
    identity = tuple(range(len(blocks)))
    if math.factorial(len(blocks)) - 1 <= count:
        permutations = [p for p in itertools.permutations(identity) if p != identity]
    else:
        seen, permutations = {identity}, []
        while len(permutations) < count:
            permutation = tuple(int(k) for k in rng.permutation(len(blocks)))
            if permutation not in seen:
                seen.add(permutation)
                permutations.append(permutation)
    return [np.concatenate([blocks[k] for k in permutation]) for permutation in permutations]


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


def fft_length(n: int) -> int:
    """The FFT length for circular correlations of length n: n itself, unless n has
    a large prime factor (FFTs of length 173 cost ten times those of 175); then
    the first 5-smooth length >= 2n - 1, over which a zero-padded sequence
    against a twice-repeated one gives the same circular correlation."""
    m, factor = n, 2
    while factor * factor <= m:
        while m % factor == 0:
            m //= factor
        factor += 1
    if m <= 60:  # the largest prime factor: small enough for a direct FFT
        return n
    length = 2 * n - 1
    while True:
        rest = length
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return length
        length += 1


def _diagonal_spectra(prepared_stack: np.ndarray, symmetric: bool, length: int, repeated: bool) -> np.ndarray:
    """rfft over s of the circular diagonals (s, d) -> entry (s, (s + d) mod n) of
    each matrix of a (k, n, n) stack, such that summing conj(A) B over the
    diagonals gives the sum over all n of them, at FFT length ``length``: n, or
    (fft_length) one that needs each diagonal zero-padded (A) or ``repeated``
    twice (B).

    A symmetric matrix needs only diagonals d = 0..n//2, weighted: diagonal
    n - d is diagonal d moved by d steps, so its spectrum differs by a phase,
    which cancels in conj(A) B. That halves the work.
    """
    k, n, _ = prepared_stack.shape
    count = n // 2 + 1 if symmetric else n
    flat = np.ascontiguousarray(prepared_stack).reshape(k, n * n)
    diagonals = flat.take(_diagonal_index(n, count), axis=1).reshape(k, n, count)
    if symmetric:
        diagonals[:, :, 1 : (n + 1) // 2] *= np.sqrt(2.0)  # d and n - d; d = n/2 is its own mirror
    if repeated and length != n:
        diagonals = np.concatenate([diagonals, diagonals], axis=1)
    return np.fft.rfft(diagonals, n=length, axis=1)


@functools.lru_cache(maxsize=32)
def _diagonal_index(n: int, count: int) -> np.ndarray:
    """Flat indices of entries (s, (s + d) mod n), s < n, d < count, of an n x n matrix."""
    rows = np.arange(n)[:, None]
    return (rows * n + (rows + np.arange(count)) % n).ravel()


def _shift_products(spectrum_a: np.ndarray, spectrum_b: np.ndarray, n: int, length: int) -> np.ndarray:
    """[k] = sum over s, t of a[s, t] b[s + k, t + k] (indices mod n), every k at once."""
    return np.fft.irfft(np.einsum("fd,fd->f", np.conj(spectrum_a), spectrum_b), n=length)[:n]


def circular_shift_null(name: str, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The statistic of A against B circularly shifted by every k in 1..n-1, all at
    once: <a, b shifted by k> = sum over diagonals d of the cross-correlation of
    a's and b's circular diagonals, which one FFT per matrix gives for every k
    (O(n^2 log n) instead of O(n^3)). Equals permutation_test's null over
    circular_shift_orders(n, None)."""
    a, b = prepared(name, A), prepared(name, B)
    n = a.shape[0]
    denominator = norm(a) * norm(b)
    if denominator == 0:
        return np.full(n - 1, np.nan)
    length = fft_length(n)
    spectrum_a = _diagonal_spectra(a[None], symmetric=False, length=length, repeated=False)[0]
    spectrum_b = _diagonal_spectra(b[None], symmetric=False, length=length, repeated=True)[0]
    return _shift_products(spectrum_a, spectrum_b, n, length)[1:] / denominator


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
