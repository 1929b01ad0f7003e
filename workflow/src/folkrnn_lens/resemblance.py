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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .matrices import magnitude_gramian, onehot_gramian, select_recorded, signed_gramian
from .names import QUANTITIES

STATISTICS = ("pearson", "spearman", "cka")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator > 0 else float("nan")


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
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
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


# ---- every comparison of one tune ---------------------------------------------------

FAMILIES = ("onehot", "layers", "quantities")
"""Against X^T X (at each shift); one quantity across layers; one layer across quantities."""


@dataclass(frozen=True)
class Comparison:
    """Matrix ``a`` (steps 0..n-1-shift) against matrix ``b`` (steps shift..n-1)."""

    family: str
    a: str
    b: str
    shift: int = 0


def gramian_name(layer: int, quantity: str, gramian: str = "abs") -> str:
    return f"L{layer}.{quantity}.{gramian}"  # as matrices.matrix_name names it


def plan_comparisons(
    layers: list[int],
    quantities: list[str],
    gramian: str = "abs",
    shifts: list[int] = (0, 1),
    families: list[str] = FAMILIES,
) -> list[Comparison]:
    """Every Gramian against X^T X at each shift; each quantity's Gramians across
    pairs of layers; each layer's Gramians across pairs of quantities."""
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown comparison families {sorted(unknown)}; expected some of {FAMILIES}")
    name = {(layer, q): gramian_name(layer, q, gramian) for layer in layers for q in quantities}
    comparisons = []
    if "onehot" in families:
        comparisons += [
            Comparison("onehot", name[layer, q], "onehot", shift)
            for shift in shifts
            for layer in layers
            for q in quantities
        ]
    if "layers" in families:
        comparisons += [
            Comparison("layers", name[la, q], name[lb, q])
            for q in quantities
            for k, la in enumerate(layers)
            for lb in layers[k + 1 :]
        ]
    if "quantities" in families:
        comparisons += [
            Comparison("quantities", name[layer, qa], name[layer, qb])
            for layer in layers
            for k, qa in enumerate(quantities)
            for qb in quantities[k + 1 :]
        ]
    return comparisons


def prepared_symmetric(name: str, matrix: np.ndarray) -> np.ndarray:
    """``prepared`` for a symmetric matrix, exactly symmetric (products like A A^T
    can differ in the last bit across the diagonal), ranking only the pairs
    above the diagonal: each pair appears twice among the off-diagonal entries,
    which maps every average rank r to 2r - 1/2, the same correlation at half the
    sorting."""
    matrix = np.asarray(matrix)
    matrix = (matrix + matrix.T) / 2
    if name != "spearman":
        return prepared(name, matrix)
    n = matrix.shape[0]
    upper = np.triu_indices(n, 1)
    values = ranks(matrix[upper])  # in the matrix's own precision: float32 sorts faster
    result = np.zeros((n, n))
    result[upper] = values - values.mean()
    return result + result.T


@functools.lru_cache(maxsize=8)
def _upper_pairs(n: int) -> tuple[np.ndarray, ...]:
    """Rows, columns, and flat indices above and below the diagonal, of the pairs
    of different steps of an n x n matrix."""
    rows, cols = (index.astype(np.int32) for index in np.triu_indices(n, 1))
    return rows, cols, rows * n + cols, cols * n + rows  # int32: tunes of up to 46,000 steps


class _Windows:
    """Prepared matrices and their norms, each computed once per (matrix, window
    of steps, statistic) however many comparisons use it."""

    def __init__(self, matrices: dict[str, np.ndarray]):
        self.matrices = matrices
        self._prepared: dict = {}
        self._sorted: dict = {}

    def release_prepared(self) -> None:
        """Let the prepared windows go (the sorted whole matrices stay)."""
        self._prepared.clear()

    def release(self) -> None:
        """Let everything go: prepared windows and sorted whole matrices."""
        self._prepared.clear()
        self._sorted.clear()

    def prepared(self, name: str, matrix: str, start: int, stop: int) -> tuple[np.ndarray, float]:
        key = (name, matrix, start, stop)
        if key not in self._prepared:
            if name == "spearman":
                result = self._ranked_window(matrix, start, stop)
            else:
                result = prepared_symmetric(name, self.matrices[matrix][start:stop, start:stop])
            self._prepared[key] = (result, float(np.linalg.norm(result)))
        return self._prepared[key]

    def _ranked_window(self, matrix: str, start: int, stop: int) -> np.ndarray:
        """prepared_symmetric("spearman", window) from one sort of the whole matrix:
        the pairs of a window of steps keep their order, so only the ties need
        averaging again (a shifted window then costs no sort of its own)."""
        n = self.matrices[matrix].shape[0]
        if matrix not in self._sorted:
            rows, cols, upper, lower = _upper_pairs(n)
            flat = np.asarray(self.matrices[matrix]).ravel()
            values = (flat[upper] + flat[lower]) / 2  # as (M + M^T) / 2, exactly symmetric
            order = np.argsort(values)
            self._sorted[matrix] = (rows[order], cols[order], upper[order], values[order])
        rows, cols, upper, values = self._sorted[matrix]
        m = stop - start
        if m == n:
            ranked, index = _tied_ranks(values), upper
        else:
            keep = (rows >= start) & (cols < stop)
            ranked, index = _tied_ranks(values[keep]), (rows[keep] - start) * m + (cols[keep] - start)
        result = np.zeros(m * m)
        result[index] = ranked - ranked.mean()
        result = result.reshape(m, m)
        return result + result.T

    def spectra(self, name: str, keys: list[tuple[str, int, int]], repeated: bool) -> dict:
        """The FFT spectra (_diagonal_spectra) of the circular diagonals of matrices
        (name, start, stop) of one window size, by key: a few at a time and not
        kept, as a long tune's spectra take hundreds of MB."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        size = unique[0][2] - unique[0][1]
        spectra, per_batch = {}, _batch_size(SPECTRA_BATCH, 32 * size * size)
        for first in range(0, len(unique), per_batch):
            batch = unique[first : first + per_batch]
            stack = np.stack([self.prepared(name, *key)[0] for key in batch])
            spectra.update(zip(batch, _diagonal_spectra(stack, True, fft_length(size), repeated)))
        return spectra


SPECTRA_BATCH = 8  # matrices per batch of FFTs: fewer calls, bounded memory
BATCH_BYTES = 128 << 20  # the temporaries of one batch (FFTs, permuted copies) at most


def _batch_size(most: int, bytes_each: int) -> int:
    """Up to ``most`` items a batch, fewer where their temporaries would pass BATCH_BYTES."""
    return int(np.clip(BATCH_BYTES // max(bytes_each, 1), 1, most))


def _bar_nulls(
    windows: _Windows, name: str, group: list[Comparison], bars: np.ndarray, count: int, seed: int
) -> np.ndarray:
    """(len(group), n_orders) statistics against ``b`` with whole bars reordered, for
    comparisons sharing one ``b`` and shift: b's permuted copies are made once and
    every ``a`` meets them in one matrix product."""
    b, shift = group[0].b, group[0].shift
    n = windows.matrices[b].shape[0]
    rng = np.random.default_rng([seed, shift])  # the same orders for every b of a window
    orders = bar_permutation_orders(bars[shift:], count, rng)
    if not orders:
        return np.empty((len(group), 0))
    b_prepared, b_norm = windows.prepared(name, b, shift, n)
    orders = np.asarray(orders)
    a_stack = np.stack([windows.prepared(name, c.a, 0, n - shift)[0].ravel() for c in group])
    a_norms = np.array([windows.prepared(name, c.a, 0, n - shift)[1] for c in group])
    products = np.empty((len(group), len(orders)))
    m = len(b_prepared)
    per_batch = _batch_size(PERMUTED_BATCH, 8 * m * m)
    # Buffers reused for every batch: copying into pages already touched is several
    # times faster than into freshly allocated ones.
    permuted, rows = np.empty((per_batch, m, m)), np.empty((m, m))
    for first in range(0, len(orders), per_batch):  # a few permuted copies of b at a time
        batch = orders[first : first + per_batch]
        for k, order in enumerate(batch):
            np.take(b_prepared, order, axis=0, out=rows)
            np.take(rows, order, axis=1, out=permuted[k])
        products[:, first : first + len(batch)] = a_stack @ permuted[: len(batch)].reshape(len(batch), -1).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return products / (a_norms[:, None] * b_norm)


PERMUTED_BATCH = 16  # 16 copies of a 1,000-step matrix: 128 MB (fewer for longer tunes)


def resemblance_table(
    matrices: dict[str, np.ndarray],
    bars: np.ndarray,
    comparisons: list[Comparison],
    statistics: list[str] = STATISTICS,
    circular_shifts: bool = True,
    bar_permutations: int = 0,
    bar_families: list[str] = FAMILIES,
    seed: int = 0,
    memory_bytes: int | None = None,
    progress=None,
) -> pd.DataFrame:
    """One row per comparison of one tune: each statistic, and its one-sided
    p-values against the circular-shift null (every shift, by FFT) and the
    bar-permutation null (``bar_permutations`` seeded orders, for the comparisons
    of ``bar_families``), raw and Holm-adjusted across the tune's comparisons (per
    statistic and null).

    ``matrices`` maps names to symmetric n x n matrices (``onehot`` and Gramians):
    a dict, or a LazyGramians that computes them when asked; ``bars`` is each
    step's bar index. The comparisons of a shift are taken in chunks whose
    matrices, prepared and transformed, fit in ``memory_bytes`` (default
    MEMORY_BYTES): a short tune's all at once, a long tune's a few matrices at a
    time (recomputed where a later chunk needs them again). ``progress(count,
    what)`` is told of every ``count`` comparisons of a statistic done.
    """
    n = len(bars)
    columns = {
        "family": [c.family for c in comparisons],
        "a": [c.a for c in comparisons],
        "b": [c.b for c in comparisons],
        "shift": np.array([c.shift for c in comparisons], np.int8),
        "n_steps": np.array([n - c.shift for c in comparisons], np.int32),
    }
    tested = [c.family in bar_families for c in comparisons]
    by_shift: dict[int, list[int]] = {}
    for row, c in enumerate(comparisons):
        by_shift.setdefault(c.shift, []).append(row)
    most = matrices_per_chunk(n, memory_bytes)
    chunks = [
        (shift, chunk)
        for shift, rows in by_shift.items()
        if n - shift >= 2  # else no pair of steps is left to compare: untested
        for chunk in comparison_chunks(rows, comparisons, most)
    ]
    progress = progress or (lambda count, what: None)
    for name in statistics:
        windows = _Windows(matrices)  # one statistic's cache at a time: memory for long tunes
        observed = np.full(len(comparisons), np.nan)
        circular, bar = [_UNTESTED] * len(comparisons), [_UNTESTED] * len(comparisons)
        for k, (shift, rows) in enumerate(chunks):
            group = [comparisons[r] for r in rows]
            group_observed, group_circular = _observed_and_circular(
                windows, name, group, shift, n, circular_shifts
            )
            untested = [r for r in rows if not tested[r] or bar_permutations <= 0]
            progress(len(untested), f"{name}, shift {shift}")
            group_bar = _bar_tests(
                windows,
                name,
                group,
                [tested[r] for r in rows],
                group_observed,
                bars,
                bar_permutations,
                seed,
                functools.partial(progress, what=f"{name}, shift {shift}, bar null"),
            )
            for j, row in enumerate(rows):
                observed[row], circular[row], bar[row] = group_observed[j], group_circular[j], group_bar[j]
            # windows of another shift are not reused; in chunks, nothing is kept
            if len(chunks) > len(by_shift):
                windows.release()
            elif k + 1 == len(chunks) or chunks[k + 1][0] != shift:
                windows.release_prepared()
        columns[name] = observed
        columns[f"{name}_null_mean"] = np.array([r.null_mean for r in circular])
        for null, results in (("circular", circular), ("bars", bar)):
            p_values = np.array([r.p_value for r in results])
            columns[f"{name}_p_{null}"] = p_values
            columns[f"{name}_p_{null}_holm"] = holm(p_values)
            columns[f"{name}_n_{null}"] = np.array([r.n_null for r in results], np.int32)
    return pd.DataFrame(columns)


_UNTESTED = TestResult(float("nan"), float("nan"), 0, float("nan"))

MEMORY_BYTES = 2 << 30
"""What one tune's comparisons may hold at once, by default: all of a 1,000-step
tune's matrices fit; a 5,000-step tune's are taken two at a time."""


def bytes_per_matrix(n: int) -> int:
    """What one compared n x n matrix holds while its chunk runs: the Gramian
    (float32), a prepared window (float64), Spearman's sorted pairs and its FFT
    spectra (up to twice the matrix where a window's length is padded)."""
    return 28 * n * n


def transient_bytes(n: int) -> int:
    """The largest temporaries beside them: preparing one matrix (symmetrised and
    centred copies), and one batch of FFTs or permuted copies (BATCH_BYTES)."""
    return 24 * n * n + 2 * BATCH_BYTES


def matrices_per_chunk(n: int, memory_bytes: int | None = None) -> int:
    """How many matrices a chunk of comparisons may touch (at least two: a comparison's)."""
    budget = (memory_bytes or MEMORY_BYTES) - transient_bytes(n)
    return max(2, budget // max(bytes_per_matrix(n), 1))


def comparison_chunks(rows: list[int], comparisons: list[Comparison], most: int) -> list[list[int]]:
    """``rows``, cut into runs whose comparisons touch at most ``most`` distinct
    matrices; ordered by ``b`` first, so that the comparisons sharing a ``b`` stay
    together and its bar-permuted copies are made once."""
    chunks, current, touched = [], [], set()
    for row in sorted(rows, key=lambda row: (comparisons[row].b, comparisons[row].a)):
        matrices = {comparisons[row].a, comparisons[row].b}
        if current and len(touched | matrices) > most:
            chunks.append(current)
            current, touched = [], set()
        current.append(row)
        touched |= matrices
    return chunks + ([current] if current else [])


def _observed_and_circular(
    windows: _Windows, name: str, comparisons: list[Comparison], shift: int, n: int, circular_shifts: bool
) -> tuple[np.ndarray, list[TestResult]]:
    """Each comparison's statistic, and its test against every circular shift, for
    comparisons of one ``shift`` (one window size: one batch of FFTs)."""
    m = n - shift
    a_keys = [(c.a, 0, m) for c in comparisons]
    b_keys = [(c.b, shift, n) for c in comparisons]
    observed, norms = np.full(len(comparisons), np.nan), np.zeros(len(comparisons))
    for k, (a_key, b_key) in enumerate(zip(a_keys, b_keys)):
        (a, a_norm), (b, b_norm) = windows.prepared(name, *a_key), windows.prepared(name, *b_key)
        norms[k] = a_norm * b_norm
        if norms[k] > 0:  # else a constant matrix: no correlation is defined
            observed[k] = float(np.vdot(a.ravel(), b.ravel())) / norms[k]
    valid = np.flatnonzero(norms > 0)
    results = [_UNTESTED] * len(comparisons)
    if not circular_shifts or m < 3 or len(valid) == 0:
        for k in valid:
            results[k] = TestResult(observed[k], float("nan"), 0, float("nan"))
        return observed, results
    length = fft_length(m)
    a_spectra = windows.spectra(name, [a_keys[k] for k in valid], repeated=False)
    b_spectra = a_spectra if length == m else {}  # unpadded, one spectrum serves both
    missing = [b_keys[k] for k in valid if b_keys[k] not in b_spectra]
    b_spectra.update(windows.spectra(name, missing, repeated=True))
    cross = np.stack(
        [np.einsum("fd,fd->f", np.conj(a_spectra[a_keys[k]]), b_spectra[b_keys[k]]) for k in valid]
    )
    products = np.fft.irfft(cross, n=length, axis=1)[:, :m]
    for k, null in zip(valid, products[:, 1:] / norms[valid, None]):
        results[k] = _test_result(observed[k], null)
    return observed, results


def _bar_tests(
    windows: _Windows,
    name: str,
    comparisons: list[Comparison],
    tested: list[bool],
    observed: np.ndarray,
    bars: np.ndarray,
    count: int,
    seed: int,
    progress=None,
) -> list[TestResult]:
    """The test of each ``tested`` comparison against ``count`` reorderings of whole bars
    of b; ``progress(k)`` is told of each group of k comparisons done."""
    results = [_UNTESTED] * len(comparisons)
    if count <= 0:
        return results
    groups: dict[tuple[str, int], list[int]] = {}
    for row, c in enumerate(comparisons):
        if tested[row]:
            groups.setdefault((c.b, c.shift), []).append(row)
    for rows in groups.values():
        nulls = _bar_nulls(windows, name, [comparisons[r] for r in rows], bars, count, seed)
        for row, null in zip(rows, nulls):
            results[row] = _test_result(observed[row], null)
        if progress is not None:
            progress(len(rows))
    return results


# ---- from config and activations ---------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """config's ``resemblance`` section, resolved: what one tune's table compares."""

    layers: tuple[int, ...]
    quantities: tuple[str, ...]
    gramian: str = "abs"
    statistics: tuple[str, ...] = STATISTICS
    shifts: tuple[int, ...] = (0, 1)
    families: tuple[str, ...] = FAMILIES
    circular_shifts: bool = True
    bar_permutations: int = 199
    bar_families: tuple[str, ...] = FAMILIES
    seed: int = 0
    alpha: float = 0.05

    @classmethod
    def from_config(
        cls,
        section: dict,
        recorded_layers: list[int],
        recorded_quantities: list[str],
        overrides: dict | None = None,
    ) -> Settings:
        """Layers and quantities default to what was recorded; asking for more is an
        error naming it. ``overrides`` (a corpus analysis's own) win over ``section``."""
        merged = {**section, **(overrides or {})}
        layers, quantities = select_recorded("resemblance", merged, recorded_layers, recorded_quantities)
        layers = sorted(layers)
        fields = {key: merged[key] for key in cls.__dataclass_fields__ if key in merged}
        fields = {key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()}
        fields["layers"] = tuple(layers)
        fields["quantities"] = tuple(q for q in QUANTITIES if q in quantities)
        return cls(**fields)

    def comparisons(self) -> list[Comparison]:
        return plan_comparisons(
            list(self.layers), list(self.quantities), self.gramian, list(self.shifts), list(self.families)
        )

    def table(
        self, matrices, bars: np.ndarray, memory_bytes: int | None = None, progress=None
    ) -> pd.DataFrame:
        return resemblance_table(
            matrices,
            bars,
            self.comparisons(),
            list(self.statistics),
            self.circular_shifts,
            self.bar_permutations,
            list(self.bar_families),
            self.seed,
            memory_bytes,
            progress,
        )


def gramians_of(activation, tokens: list[str], settings: Settings, dtype=np.float64) -> dict[str, np.ndarray]:
    """X^T X and the Gramian of each compared (layer, quantity) of one tune;
    ``activation(layer, quantity)`` returns its (n_steps, n_units) array. ``dtype``
    is the precision of the products (corpus mode: float32)."""
    gramian = magnitude_gramian if settings.gramian == "abs" else signed_gramian
    matrices = {"onehot": onehot_gramian(tokens)}
    for layer in settings.layers:
        for quantity in settings.quantities:
            matrices[gramian_name(layer, quantity, settings.gramian)] = gramian(
                activation(layer, quantity), dtype
            )
    return matrices


class LazyGramians(Mapping):
    """X^T X and the Gramians of ``settings`` by name, like gramians_of, but each
    computed when first asked for and only the most recent ``keep`` kept: a long
    tune's Gramians do not fit in memory together."""

    def __init__(self, activation, tokens: list[str], settings: Settings, keep: int, dtype=np.float64):
        self.activation, self.tokens, self.settings, self.dtype = activation, tokens, settings, dtype
        self.keep = max(1, keep)
        self.names = ["onehot"] + [
            gramian_name(layer, quantity, settings.gramian)
            for layer in settings.layers
            for quantity in settings.quantities
        ]
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._cache:
            self._cache[name] = self._cache.pop(name)  # most recently used last
            return self._cache[name]
        if name not in self.names:
            raise KeyError(name)
        while len(self._cache) >= self.keep:
            self._cache.pop(next(iter(self._cache)))
        self._cache[name] = self._compute(name)
        return self._cache[name]

    def _compute(self, name: str) -> np.ndarray:
        if name == "onehot":
            return onehot_gramian(self.tokens)
        gramian = magnitude_gramian if self.settings.gramian == "abs" else signed_gramian
        layer, quantity = name.split(".")[:2]
        return gramian(self.activation(int(layer[1:]), quantity), self.dtype)

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)
