"""config's ``resemblance`` section, resolved (``Settings``), and the Gramians it compares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from folkrnn_lens.config import resolve_section
from folkrnn_lens.matrices.maths import magnitude_gramian, onehot_gramian, signed_gramian
from folkrnn_lens.matrices.plan import select_recorded
from folkrnn_lens.names import QUANTITIES, gramian_name, parse_matrix_name
from folkrnn_lens.resemblance.comparisons import Comparison, plan_comparisons, resemblance_table


@dataclass(frozen=True)
class Saturation:
    """Gate saturation thresholds: below ``low`` left-saturated, above ``high`` right."""

    low: float
    high: float


@dataclass(frozen=True)
class Settings:
    """config's ``resemblance`` section, resolved: what one tune's table compares, and
    the gate-saturation thresholds. Built by ``from_config`` only, so every value comes
    from the config or the schema's defaults."""

    layers: tuple[int, ...]
    quantities: tuple[str, ...]
    gramian: str
    statistics: tuple[str, ...]
    shifts: tuple[int, ...]
    families: tuple[str, ...]
    circular_shifts: bool
    bar_permutations: int
    bar_families: tuple[str, ...]
    seed: int
    alpha: float
    saturation: Saturation

    @classmethod
    def from_config(
        cls,
        section: dict | None,
        recorded_layers: list[int],
        recorded_quantities: list[str],
        overrides: dict | None = None,
    ) -> Settings:
        """Layers and quantities default to what was recorded; asking for more is an
        error naming it. ``overrides`` (a corpus analysis's own) win over ``section``,
        key by key (so ``saturation: {low: 0.3}`` keeps the section's high)."""
        merged = resolve_section("resemblance", section)
        for key, value in (overrides or {}).items():
            merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
        layers, quantities = select_recorded("resemblance", merged, recorded_layers, recorded_quantities)
        fields = {key: merged[key] for key in cls.__dataclass_fields__ if key in merged}
        fields = {key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()}
        fields["layers"] = tuple(sorted(layers))
        fields["quantities"] = tuple(q for q in QUANTITIES if q in quantities)
        fields["saturation"] = _saturation(merged["saturation"])
        return cls(**fields)

    def comparisons(self, influence: bool = False) -> list[Comparison]:
        """What one tune's table compares; with ``influence``, I as well."""
        return plan_comparisons(
            list(self.layers),
            list(self.quantities),
            self.gramian,
            list(self.shifts),
            list(self.families),
            influence,
        )

    def table(
        self,
        matrices,
        bars: np.ndarray,
        memory_bytes: int | None = None,
        progress=None,
        influence: bool = False,
    ) -> pd.DataFrame:
        """The resemblance table of one tune; ``matrices`` holds ``influence`` too where
        ``influence`` is asked for."""
        return resemblance_table(
            matrices,
            bars,
            self.comparisons(influence),
            list(self.statistics),
            self.circular_shifts,
            self.bar_permutations,
            list(self.bar_families),
            self.seed,
            memory_bytes,
            progress,
        )


def _saturation(limits: dict) -> Saturation:
    low, high = float(limits["low"]), float(limits["high"])
    if not low < high:
        raise ValueError(f"resemblance.saturation: low ({low}) must be below high ({high})")
    return Saturation(low, high)


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
    tune's Gramians do not fit in memory together. ``given`` matrices (the influence
    matrix) are held as they are."""

    def __init__(
        self,
        activation,
        tokens: list[str],
        settings: Settings,
        keep: int,
        dtype=np.float64,
        given: dict[str, np.ndarray] | None = None,
    ):
        self.activation, self.tokens, self.settings, self.dtype = activation, tokens, settings, dtype
        self.keep = max(1, keep)
        self.given = dict(given or {})
        self.names = ["onehot"] + [
            gramian_name(layer, quantity, settings.gramian)
            for layer in settings.layers
            for quantity in settings.quantities
        ]
        self.names += list(self.given)
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.given:
            return self.given[name]
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
        parsed = parse_matrix_name(name)
        return gramian(self.activation(parsed.layer, parsed.quantity), self.dtype)

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)
