"""What one transcription's analysis computes and draws, planned from config alone (so
every matrix, figure and animation file is known before any job runs)."""

from __future__ import annotations

from dataclasses import dataclass

from folkrnn_lens.config import resolve_section
from folkrnn_lens.names import GRAMIAN_KINDS, QUANTITIES, band, matrix_name


def check_bands(bands: dict) -> dict[str, dict[str, float]]:
    """Config's resolved ``analysis.bands``, each band's low below its high."""
    for name, limits in bands.items():
        if not limits["low"] < limits["high"]:
            raise ValueError(
                f"analysis.bands.{name}: low ({limits['low']}) must be below high ({limits['high']})"
            )
    return bands


@dataclass(frozen=True)
class MatrixSpec:
    """One matrix of the analysis: its stable name and what it is made of."""

    name: str
    kind: str
    layer: int | None = None
    quantity: str | None = None
    quantity_b: str | None = None

    @property
    def band(self) -> str:
        """Which thresholds of config's ``analysis.bands`` apply."""
        return band(self.kind)

    @property
    def description(self) -> str:
        if self.kind == "onehot":
            return "X^T X of the one-hot inputs: 1 where two steps read the same token"
        if self.kind == "distance":
            return "L1 distance between the softmax outputs of two steps (2 = disjoint supports)"
        if self.kind == "magnitude":
            return f"|cos| between {self.quantity} of two steps, layer {self.layer} (magnitude Gramian)"
        if self.kind == "signed":
            return f"cos between {self.quantity} of two steps, layer {self.layer} (signed Gramian)"
        return (
            f"cos between {self.quantity} at step s (columns) and {self.quantity_b} at step t "
            f"(rows of the figure), layer {self.layer}; rows of the array are s"
        )


def _spec(kind, layer=None, quantity=None, quantity_b=None) -> MatrixSpec:
    return MatrixSpec(matrix_name(kind, layer, quantity, quantity_b), kind, layer, quantity, quantity_b)


@dataclass(frozen=True)
class AnimationSpec:
    """An animation: one frame per layer (1 -> 2 -> 3), pausing on the last.

    ``frames`` lists, per frame, the matrices drawn side by side (one panel, or
    two for the one-hot comparison).
    """

    name: str
    title: str
    frames: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Plan:
    """Everything one transcription's analysis computes and draws, from config alone."""

    matrices: tuple[MatrixSpec, ...]
    animations: tuple[AnimationSpec, ...]
    bands: dict  # config's analysis.bands: the thresholds of the summary's band counts
    skipped: tuple[str, ...] = ()  # configured items that cannot be made, with why

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.matrices]

    def spec(self, name: str) -> MatrixSpec:
        for spec in self.matrices:
            if spec.name == name:
                return spec
        raise KeyError(f"no matrix {name!r} in this analysis; it has {self.names}")


def select_recorded(
    section: str, settings: dict, recorded_layers: list[int], recorded_quantities: list[str]
) -> tuple[list[int], list[str]]:
    """The ``layers`` and ``quantities`` a config section asks for (default: what was
    recorded); asking for one that was not recorded is an error naming it."""
    layers = list(settings.get("layers") or recorded_layers)
    quantities = list(settings.get("quantities") or recorded_quantities)
    for layer in layers:
        if layer not in recorded_layers:
            raise ValueError(
                f"{section}.layers asks for layer {layer}, but record.layers holds {list(recorded_layers)}"
            )
    for quantity in quantities:
        if quantity not in recorded_quantities:
            raise ValueError(
                f"{section}.quantities asks for {quantity!r}, but record.quantities holds "
                f"{list(recorded_quantities)}"
            )
    return layers, quantities


def plan_analysis(
    analysis: dict | None = None,
    recorded_layers: list[int] = (1, 2, 3),
    recorded_quantities: list[str] = QUANTITIES,
) -> Plan:
    """The matrices and animations that config's ``analysis`` section asks for (a
    partial section gets the schema's defaults).

    Layers and quantities default to what was recorded; asking for one that was
    not recorded is an error (naming it). A cross pair is made for every analysed
    layer when both of its quantities are analysed, and skipped (listed in
    ``Plan.skipped``) otherwise, so narrowing ``quantities`` narrows the pairs.
    Animations need at least two layers.
    """
    analysis = resolve_section("analysis", analysis)
    layers, quantities = select_recorded("analysis", analysis, recorded_layers, recorded_quantities)
    check_bands(analysis["bands"])  # a band with low >= high is an error here, before any work
    layers = sorted(layers)
    quantities = [q for q in QUANTITIES if q in quantities]  # canonical order
    gramians = analysis["gramians"]
    pairs = [tuple(pair) for pair in analysis["cross_pairs"]]

    specs, skipped = [], []
    if analysis["onehot"]:
        specs.append(_spec("onehot"))
    if analysis["softmax"]:
        specs.append(_spec("distance"))
    for layer in layers:
        for quantity in quantities:
            specs += [_spec(GRAMIAN_KINDS[g], layer, quantity) for g in ("abs", "signed") if g in gramians]
        for a, b in pairs:
            if a in quantities and b in quantities:
                specs.append(_spec("cross", layer, a, b))
            elif layer == layers[0]:
                skipped.append(f"cross pair {a} x {b}: needs both quantities among {quantities}")

    animations = []
    if len(layers) >= 2 and analysis["animation"]["enabled"]:
        animations = _plan_animations(analysis, layers, quantities, pairs, skipped)
    elif analysis["animation"]["enabled"]:
        skipped.append("animations: they cycle through layers and need at least two")
    return Plan(tuple(specs), tuple(animations), analysis["bands"], tuple(skipped))


def _plan_animations(analysis: dict, layers, quantities, pairs, skipped: list[str]) -> list[AnimationSpec]:
    """Each quantity's Gramians through the layers (|cos| ones, or the signed ones where
    only those are made), X^T X beside h's, and each cross pair's matrices."""
    animations = []
    gramian = next((g for g in ("abs", "signed") if g in analysis["gramians"]), None)
    if gramian is None:
        skipped.append("animations of Gramians: analysis.gramians makes none")
    else:
        kind = GRAMIAN_KINDS[gramian]
        label = {"abs": "|cos| Gramian", "signed": "signed Gramian"}[gramian]
        for quantity in quantities:
            frames = tuple((matrix_name(kind, layer, quantity),) for layer in layers)
            animations.append(AnimationSpec(f"{quantity}.{gramian}", f"{label} of {quantity}", frames))
        if "h" in quantities and analysis["onehot"]:
            frames = tuple(("onehot", matrix_name(kind, layer, "h")) for layer in layers)
            animations.append(AnimationSpec("onehot_vs_h", f"X^T X against the {label} of h", frames))
    for a, b in pairs:
        if a in quantities and b in quantities:
            frames = tuple((matrix_name("cross", layer, a, b),) for layer in layers)
            animations.append(AnimationSpec(f"{a}_x_{b}", f"cross-gate {a} x {b}", frames))
    return animations
