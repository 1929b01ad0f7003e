"""The matrices of part 9, as maths: Gramians and distances between the steps of one
tune, and how many pairs of steps fall in each colour band.

Every matrix is n x n for a tune of n steps, computed with matrix products (or,
for the L1 distances, one broadcast per chunk of rows), never a Python loop
over pairs. Activations come as (n_steps, n_units) arrays, one row per step, so
docs/specification.md's Q^T Q (columns = steps) is ``A @ A.T`` here.

A cross matrix ``L{l}.{a}_x_{b}`` is U_a^T U_b: row s is gate a at step s, column
t is gate b at step t. It is not symmetric; figures draw b along the vertical
axis (docs/specification.md).

Unit normalisation of a zero activation vector (a step where every unit is
exactly 0) is undefined: its cosines with every step, itself included, are
defined as 0 here.

Band counts (``band_counts``) are over unique pairs of different steps: the
n(n-1)/2 pairs above the diagonal of a symmetric matrix, and the n(n-1) ordered
off-diagonal pairs of a cross matrix (which is not symmetric, so (s, t) and
(t, s) are different pairs). Bands are closed intervals:

- distance: low band d <= low (close), high band d >= high (nearly disjoint);
- onehot, magnitude: low band |v| <= low (orthogonal), high band |v| >= high;
- signed, cross: low band |v| <= low (orthogonal), high band v >= high (same
  direction), and ``n_opposite`` counts v <= -high (opposite directions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from folkrnn_lens.names import KINDS

# ---- the matrices ---------------------------------------------------------------


def onehot_matrix(tokens: list[str]) -> tuple[np.ndarray, list[str]]:
    """X as rows: (n_steps, n_distinct) one-hot rows, and the distinct tokens in order."""
    vocab, codes = np.unique(np.asarray(tokens, dtype=str), return_inverse=True)
    x = np.zeros((len(tokens), len(vocab)), np.float32)
    x[np.arange(len(tokens)), codes] = 1.0
    return x, vocab.tolist()


def onehot_gramian(tokens: list[str]) -> np.ndarray:
    """X^T X: entry (s, t) is 1 where steps s and t read the same token, else 0."""
    x, _ = onehot_matrix(tokens)
    return x @ x.T


def softmax_l1_distances(p: np.ndarray, chunk_bytes: int = 64 << 20, dtype=np.float64) -> np.ndarray:
    """D[s, t] = ||p_s - p_t||_1 for the rows of p (n_steps, vocab): 0 on the
    diagonal, 2 where two distributions have disjoint supports.

    Vectorised one block of rows at a time; a block's (rows, n, vocab) difference
    holds at most ``chunk_bytes``, so memory stays bounded for long tunes. Sums in
    ``dtype``: float32 is four times faster, to about 1e-6 (corpus mode's band counts).
    """
    p = np.asarray(p, dtype=dtype)
    n, vocab = p.shape
    rows = max(1, chunk_bytes // max(1, n * vocab * p.itemsize))
    d = np.empty((n, n), dtype)
    for start in range(0, n, rows):
        block = p[start : start + rows]
        d[start : start + rows] = np.abs(block[:, None, :] - p[None, :, :]).sum(axis=2)
    d = np.minimum(d, d.T)  # exactly symmetric whatever the summation order
    np.fill_diagonal(d, 0.0)
    return d.astype(np.float32)


def unit_rows(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Each row scaled to unit L2 norm; an all-zero row stays zero (its cosines are 0)."""
    a = np.asarray(a, dtype=dtype)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)


def signed_gramian(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Q^T Q with unit-norm columns: cos of the angle between the activations of two
    steps (rows of ``a``, (n_steps, n_units)); 0 with an all-zero step. Computed in
    ``dtype`` (float32: twice as fast, to about 1e-7), returned as float32."""
    u = unit_rows(a, dtype)
    gramian = u @ u.T
    return np.clip(gramian, -1.0, 1.0, out=gramian).astype(np.float32)


def magnitude_gramian(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    """|Q^T Q| with unit-norm columns: the absolute cosine, ignoring polarity."""
    gramian = signed_gramian(a, dtype)
    return np.abs(gramian, out=gramian)


def cross_gramian(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U_a^T U_b: entry (s, t) is cos(a_s, b_t). Row index: steps of a; column: steps of b."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"cross matrix of {a.shape[0]} and {b.shape[0]} steps")
    return np.clip(unit_rows(a) @ unit_rows(b).T, -1.0, 1.0).astype(np.float32)


# ---- band counts ----------------------------------------------------------------


@dataclass(frozen=True)
class BandCounts:
    pairs: str  # "unordered" or "ordered"
    n_pairs: int
    n_low: int
    n_high: int
    n_opposite: int | None


def pair_values(matrix: np.ndarray, symmetric: bool) -> np.ndarray:
    """The values of the unique pairs of different steps: the upper triangle of a
    symmetric matrix, every off-diagonal entry of a non-symmetric one."""
    n = matrix.shape[0]
    if symmetric:
        return matrix[np.triu_indices(n, k=1)]
    return matrix[~np.eye(n, dtype=bool)]


BAND_ROWS = 256  # rows of a matrix counted at once: bounded memory for long tunes


def band_counts(matrix: np.ndarray, kind: str, low: float, high: float) -> BandCounts:
    """How many unique pairs of different steps fall in the low and the high band
    (closed intervals; see the module docstring for each kind's bands). Counted a
    block of rows at a time, so a long tune's matrix is never copied whole."""
    if kind not in KINDS:
        raise ValueError(f"unknown matrix kind {kind!r}; expected one of {KINDS}")
    symmetric = kind != "cross"
    n = matrix.shape[0]
    n_low = n_high = n_opposite = 0
    for start in range(0, n, BAND_ROWS):
        values = _pairs_of_rows(matrix, start, min(n, start + BAND_ROWS), symmetric)
        if kind == "distance":
            n_low += np.count_nonzero(values <= low)
            n_high += np.count_nonzero(values >= high)
        elif kind in ("onehot", "magnitude"):
            n_low += np.count_nonzero(np.abs(values) <= low)
            n_high += np.count_nonzero(np.abs(values) >= high)
        else:
            n_low += np.count_nonzero(np.abs(values) <= low)
            n_high += np.count_nonzero(values >= high)
            n_opposite += np.count_nonzero(values <= -high)
    n_pairs = n * (n - 1) // 2 if symmetric else n * (n - 1)
    opposite = int(n_opposite) if kind in ("signed", "cross") else None
    return BandCounts("unordered" if symmetric else "ordered", n_pairs, int(n_low), int(n_high), opposite)


def _pairs_of_rows(matrix: np.ndarray, start: int, stop: int, symmetric: bool) -> np.ndarray:
    """The values (float64) of rows start..stop-1 that pair_values would keep."""
    block = np.asarray(matrix[start:stop], dtype=np.float64)
    rows = np.arange(start, stop)[:, None]
    cols = np.arange(matrix.shape[1])[None, :]
    return block[cols > rows] if symmetric else block[cols != rows]
