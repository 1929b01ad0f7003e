"""How much of each unit's variance a musical feature explains, summed tune by tune so
that a corpus streams through in bounded memory, with a null from shuffling the feature
within each tune (docs/selectivity.md).

For a categorical feature with categories c, a unit's eta squared is the share of its
variance between the categories' means,

    eta^2 = sum_c n_c (mean_c - mean)^2 / sum_t (x_t - mean)^2,

and for the bar phase phi the circular-linear association is the R^2 of the unit on
(cos phi, sin phi): how well a sinusoid of the phase (any peak phase) fits it. Both come
from sums over the steps (``FeatureSums``), and so do their nulls: each tune's feature
values are reordered among its own steps ``shuffles`` times (seeded by the tune, so the
same whatever split of the corpus into parts), which keeps every tune's distribution of
the feature and breaks its pairing with the activations. The sums are integers of
2^-24 (``fixed``), so they add to the same bits in any order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from folkrnn_lens.corpus_analysis.measures import fixed, unfixed

PHASE = "bar_phase"
"""The circular feature; every other feature is categorical."""


def tune_orders(tune_id: int, n: int, shuffles: int, seed: int) -> np.ndarray:
    """(shuffles, n): reorderings of a tune's n steps, seeded by the tune and ``seed``
    alone, so a tune gets the same ones in any part."""
    rng = np.random.default_rng([seed, tune_id])
    return np.argsort(rng.random((shuffles, n)), axis=1, kind="stable")


@dataclass(frozen=True)
class Prepared:
    """A tune's feature made ready to add: which steps define it, its terms (one-hot
    categories, or cos and sin of the phase) and its shuffles of those steps."""

    defined: np.ndarray  # (n,) bool
    terms: np.ndarray  # (defined steps, C)
    shuffled: np.ndarray  # (K * C, defined steps): the terms of every shuffle, transposed


@dataclass
class FeatureSums:
    """Sums over the steps where a feature is defined, for the units of one (layer,
    quantity): per category (or, for the phase, per cos / sin term) the observed sums
    and the shuffled ones."""

    feature: str
    categories: tuple  # the categories (PHASE: ("cos", "sin"))
    units: int
    shuffles: int

    def __post_init__(self):
        C, U, K = len(self.categories), self.units, self.shuffles
        self.steps = np.zeros(1, np.int64)
        self.total = np.zeros(U, np.int64)  # sum x (fixed)
        self.squares = np.zeros(U, np.int64)  # sum x^2
        self.counts = np.zeros(C, np.int64)  # categorical: steps per category
        self.design = np.zeros((C, C), np.int64)  # phase: sums of (cos, sin) products
        self.design_total = np.zeros(C, np.int64)  # phase: sums of cos, sin
        self.sums = np.zeros((C, U), np.int64)  # sum x per category / x cos, x sin
        self.null_sums = np.zeros((K, C, U), np.int64)

    def add(self, x: np.ndarray, values: np.ndarray, orders: np.ndarray) -> None:
        """One tune: ``x`` (n, U) activations, ``values`` (n,) the feature (NaN or None
        where undefined), ``orders`` (K, n) its shuffles (tune_orders)."""
        self.add_prepared(x, self.prepare(values, orders))

    def prepare(self, values: np.ndarray, orders: np.ndarray) -> Prepared:
        """What ``add`` needs of a tune's feature values, made once for every (layer,
        quantity) that takes the same feature."""
        values = np.asarray(values, dtype=object if self.feature != PHASE else float)
        defined = np.array([v is not None and v == v for v in values])  # v == v: not NaN
        terms = self._terms(values[defined])
        shuffled = terms[_restricted(orders, defined)]  # (K, defined steps, C)
        return Prepared(defined, terms, shuffled.transpose(0, 2, 1).reshape(-1, len(terms)))

    def add_prepared(self, x: np.ndarray, prepared: Prepared) -> None:
        """One tune's activations ``x`` (n, U) with its prepared feature."""
        x, terms = np.asarray(x, np.float64)[prepared.defined], prepared.terms
        self.steps += len(x)
        self.total += fixed(x.sum(axis=0))
        self.squares += fixed((x * x).sum(axis=0))
        self.sums += fixed(terms.T @ x)
        if self.feature == PHASE:
            self.design += fixed(terms.T @ terms)
            self.design_total += fixed(terms.sum(axis=0))
        else:
            self.counts += terms.sum(axis=0).astype(np.int64)
        self.null_sums += fixed(prepared.shuffled @ x).reshape(self.null_sums.shape)  # one product

    def _terms(self, values: np.ndarray) -> np.ndarray:
        if self.feature == PHASE:
            angle = 2 * np.pi * values.astype(float)
            return np.stack([np.cos(angle), np.sin(angle)], axis=1)
        index = {category: k for k, category in enumerate(self.categories)}
        terms = np.zeros((len(values), len(self.categories)))
        known = [k for k, v in enumerate(values) if v in index]
        terms[known, [index[values[k]] for k in known]] = 1.0
        return terms

    def statistic(self) -> tuple[np.ndarray, np.ndarray]:
        """(observed (U,), null (K, U)): eta squared, or the phase's R^2."""
        n = int(self.steps[0])
        total, squares = unfixed(self.total), unfixed(self.squares)
        spread = squares - total**2 / max(n, 1)  # sum (x - mean)^2
        if self.feature == PHASE:
            explained = _phase_explained
            args = (unfixed(self.design), unfixed(self.design_total), total, n)
        else:
            explained = _between
            args = (self.counts, total, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            observed = explained(unfixed(self.sums), *args) / spread
            null = np.stack([explained(unfixed(s), *args) for s in self.null_sums]) / spread
        return observed, null

    def merge(self, other: FeatureSums) -> None:
        """Add another part's sums."""
        for name in ("steps", "total", "squares", "counts", "design", "design_total", "sums", "null_sums"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _restricted(orders: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """The shuffles of the defined steps alone: each order with the undefined steps
    taken out and the rest renumbered."""
    keep = np.flatnonzero(defined)
    rank = np.full(len(defined), -1)
    rank[keep] = np.arange(len(keep))
    kept = rank[orders]
    return kept[kept >= 0].reshape(len(orders), len(keep))


def _between(sums: np.ndarray, counts: np.ndarray, total: np.ndarray, n: int) -> np.ndarray:
    """sum_c n_c (mean_c - mean)^2 = sum_c S_c^2 / n_c - S^2 / n, over present categories."""
    present = counts > 0
    return (sums[present] ** 2 / counts[present, None]).sum(axis=0) - total**2 / max(n, 1)


def _phase_explained(sums, design, design_total, total, n) -> np.ndarray:
    """The sum of squares that the least-squares fit a + b cos + c sin explains."""
    mean_terms = design_total / max(n, 1)
    covariance = design - n * np.outer(mean_terms, mean_terms)  # of (cos, sin)
    cross = sums - np.outer(design_total, total) / max(n, 1)  # (2, U): of (cos, sin) with x
    return (cross * np.linalg.solve(covariance, cross)).sum(axis=0)


def pooled_p_values(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """One-sided p-values of each unit against the null statistics of every unit of the
    layer pooled (shuffling makes the feature's pairing with any unit exchangeable):
    (1 + #{null >= observed}) / (1 + null's size); NaN where a unit never varies."""
    pool = np.sort(null[np.isfinite(null)])
    above = len(pool) - np.searchsorted(pool, observed, side="left")
    p = (1 + above) / (1 + len(pool))
    return np.where(np.isfinite(observed), p, np.nan)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept out of the count): a unit is
    selected at false discovery rate q where its adjusted p is at most q."""
    p = np.asarray(p, float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted
