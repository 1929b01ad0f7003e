"""Every comparison of one tune's Gramians (with X^T X at each shift, across layers,
across quantities) and the resemblance table that tests them: observed statistics,
the circular-shift null of every comparison in one batch of FFTs, the bar null, and
Holm's correction; within a memory budget (``MEMORY_BYTES``), a chunk of Gramians
at a time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from folkrnn_lens.names import INFLUENCE, ONEHOT, gramian_name
from folkrnn_lens.resemblance.statistics import (
    STATISTICS,
    TestResult,
    _diagonal_spectra,
    _test_result,
    _tied_ranks,
    bar_permutation_orders,
    dot,
    fft_length,
    holm,
    norm,
    prepared,
    ranks,
)

# ---- every comparison of one tune ---------------------------------------------------

FAMILIES = ("onehot", "layers", "quantities")
"""Against X^T X (at each shift); one quantity across layers; one layer across quantities."""

INFLUENCE_FAMILY = "influence"
"""The token influence matrix I against X^T X (at each shift) and each Gramian: made where
the tune's influence was measured (config's ``interventions.influence.compare``)."""


@dataclass(frozen=True)
class Comparison:
    """Matrix ``a`` (steps 0..n-1-shift) against matrix ``b`` (steps shift..n-1)."""

    family: str
    a: str
    b: str
    shift: int = 0


def plan_comparisons(
    layers: list[int],
    quantities: list[str],
    gramian: str,
    shifts: list[int],
    families: list[str] = FAMILIES,
    influence: bool = False,
) -> list[Comparison]:
    """Every Gramian against X^T X at each shift; each quantity's Gramians across
    pairs of layers; each layer's Gramians across pairs of quantities; and, with
    ``influence``, I against X^T X at each shift (I[s, t] against x_{s+shift} .
    x_{t+shift}) and every Gramian against I (G[s, t] against I[s, t])."""
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
    if influence:
        comparisons += [Comparison(INFLUENCE_FAMILY, INFLUENCE, ONEHOT, shift) for shift in shifts]
        comparisons += [
            Comparison(INFLUENCE_FAMILY, name[layer, q], INFLUENCE) for layer in layers for q in quantities
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
            self._prepared[key] = (result, norm(result))
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
        flat = permuted[: len(batch)].reshape(len(batch), -1)
        products[:, first : first + len(batch)] = _products(a_stack, flat)
    with np.errstate(invalid="ignore", divide="ignore"):
        return products / (a_norms[:, None] * b_norm)


def _products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T. BLAS's matrix products sum each entry in one thread, but numpy passes
    a 1 x 1 product to BLAS's dot, whose sums depend on the threads (see ``dot``)."""
    return np.array([[dot(a, b)]]) if len(a) == len(b) == 1 else a @ b.T


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
        for k, (shift, chunk) in enumerate(chunks):
            rows = [r for r in chunk if statistic_applies(name, comparisons[r])]
            progress(len(chunk) - len(rows), f"{name}, shift {shift}")
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


def statistic_applies(statistic: str, comparison: Comparison) -> bool:
    """CKA compares kernels (positive semi-definite Gramians); the influence matrix is
    not one, so its CKA is left undefined (NaN) rather than computed on a non-kernel."""
    return not (statistic == "cka" and INFLUENCE in (comparison.a, comparison.b))


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
            observed[k] = dot(a, b) / norms[k]
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
