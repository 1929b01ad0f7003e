"""How the part-9 matrices are coloured: the bands of docs/specification.md, and the
colour bar that explains them.

Colours are computed here, not by a matplotlib colormap, so that a cell is in a
band exactly when ``matrices.band_counts`` counts it there:

- distance (softmax L1): d <= low: the *similar* colour (sanguine: nearly the
  same distribution); d >= high: the *dissimilar* colour (powder blue: nearly
  disjoint supports); grey between, darker = closer.
- magnitude |cos| and one-hot: |v| >= high similar (same direction, or the
  same token), |v| <= low dissimilar (orthogonal), grey between, darker =
  smaller angle.
- signed cos and cross-gate: v >= high similar, |v| <= low dissimilar,
  v <= -high the *opposite* colour; grey between, darker = smaller angle
  (cos 1 darkest, cos -1 lightest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from folkrnn_lens.config import resolve_section
from folkrnn_lens.names import band

GREY_DARK, GREY_LIGHT = 0.12, 0.94  # the ends of the grey scale between the bands


@dataclass(frozen=True)
class Style:
    """How figures look. Built by ``from_config`` from config's ``analysis`` section, so
    that every value, and its default, has one home: the config schema."""

    colours: dict  # similar, dissimilar, opposite, bar_lines
    bands: dict  # distance and cosine: low and high thresholds
    dpi: int
    step_inches: float  # the side of one step's cell in a heatmap, before the limits below
    min_inches: float  # the side of the matrix, at least
    max_inches: float  # and at most
    formats: tuple[str, ...]
    animation_inches: float
    animation_dpi: int
    frame_seconds: float
    pause_seconds: float
    mp4: bool

    @classmethod
    def from_config(cls, analysis: dict | None) -> Style:
        """The style of config's ``analysis`` section, whole, in part or empty: what
        it leaves out is the schema's default. The bands' low < high is checked where
        the analysis is planned (``matrices``), before any figure."""
        analysis = resolve_section("analysis", analysis)
        figures, animation = analysis["figures"], analysis["animation"]
        return cls(
            colours=dict(analysis["colours"]),
            bands=analysis["bands"],
            dpi=figures["dpi"],
            step_inches=figures["step_inches"],
            min_inches=figures["min_inches"],
            max_inches=figures["max_inches"],
            formats=tuple(figures["formats"]),
            animation_inches=animation["inches"],
            animation_dpi=animation["dpi"],
            frame_seconds=animation["frame_seconds"],
            pause_seconds=animation["pause_seconds"],
            mp4=animation["mp4"],
        )

    def thresholds(self, kind: str) -> tuple[float, float]:
        """(low, high) of the band a kind of matrix uses."""
        limits = self.bands[band(kind)]
        return float(limits["low"]), float(limits["high"])


# ---- colours --------------------------------------------------------------------


def rgb(colour: str) -> np.ndarray:
    """A matplotlib colour as RGB floats in [0, 1]."""
    from matplotlib.colors import to_rgb

    return np.array(to_rgb(colour))


COLOUR_ROWS = 256  # rows coloured at once: a long tune's float temporaries stay small


def band_colours(matrix: np.ndarray, kind: str, style: Style) -> np.ndarray:
    """The (rows, cols, 3) uint8 RGB picture of a matrix in the bands of its kind."""
    picture = np.empty((*matrix.shape, 3), np.uint8)
    for start in range(0, matrix.shape[0], COLOUR_ROWS):
        picture[start : start + COLOUR_ROWS] = _band_colours(matrix[start : start + COLOUR_ROWS], kind, style)
    return picture


def _band_colours(matrix: np.ndarray, kind: str, style: Style) -> np.ndarray:
    v = np.asarray(matrix, dtype=np.float64)
    low, high = style.thresholds(kind)
    c = style.colours
    if kind == "distance":
        darkness = 1 - (v - low) / (high - low)  # 1 at the close end
        bands = [(v <= low, c["similar"]), (v >= high, c["dissimilar"])]
    elif kind in ("onehot", "magnitude"):
        a = np.abs(v)
        darkness = (a - low) / (high - low)
        bands = [(a <= low, c["dissimilar"]), (a >= high, c["similar"])]
    else:  # signed, cross: darker for smaller angles, all the way round to cos = -1
        darkness = (v + high) / (2 * high)
        bands = [(np.abs(v) <= low, c["dissimilar"]), (v >= high, c["similar"]), (v <= -high, c["opposite"])]
    grey = GREY_LIGHT - np.clip(darkness, 0, 1) * (GREY_LIGHT - GREY_DARK)
    picture = np.repeat(grey[..., None], 3, axis=-1)
    for mask, colour in bands:
        picture[mask] = rgb(colour)
    return np.round(picture * 255).astype(np.uint8)


def _legend_segments(kind: str, style: Style) -> list[tuple]:
    """The colour bar, bottom to top: ('band', colour, label) boxes and
    ('ramp', v0, v1) grey scales, so the bands are as visible as the greys."""
    low, high = style.thresholds(kind)
    c = style.colours
    if kind == "onehot":
        return [("band", c["dissimilar"], "0: different tokens"), ("band", c["similar"], "1: the same token")]
    if kind == "distance":
        return [
            ("band", c["similar"], f"≤ {low:g}: close\n(nearly the same\ndistribution)"),
            ("ramp", low, high),
            ("band", c["dissimilar"], f"≥ {high:g}: disjoint\n(no common\nsupport; max 2)"),
        ]
    if kind == "magnitude":
        return [
            ("band", c["dissimilar"], f"≤ {low:g}: orthogonal"),
            ("ramp", low, high),
            ("band", c["similar"], f"≥ {high:g}: parallel\n(either polarity)"),
        ]
    return [
        ("band", c["opposite"], f"≤ {-high:g}: opposite"),
        ("ramp", -high, -low),
        ("band", c["dissimilar"], f"|cos| ≤ {low:g}:\northogonal"),
        ("ramp", low, high),
        ("band", c["similar"], f"≥ {high:g}: same\ndirection"),
    ]


COLOURBAR_LABELS = {
    "onehot": "x_s · x_t",
    "distance": "‖p_s − p_t‖₁   (darker = closer)",
    "magnitude": "|cos| of the angle   (darker = smaller angle)",
    "signed": "cos of the angle   (darker = smaller angle)",
    "cross": "cos of the angle   (darker = smaller angle)",
}


def draw_legend(cax, kind: str, style: Style, fontsize: float) -> None:
    """The colour bar of a kind into the axes ``cax``: band boxes and grey ramps."""
    segments = _legend_segments(kind, style)
    ramp_total = sum(s[2] - s[1] for s in segments if s[0] == "ramp") or 1.0
    ramp_height = 6.0 if kind != "onehot" else 0.0
    y, ticks, labels = 0.0, [], []
    for segment in segments:
        if segment[0] == "band":
            cax.add_patch(_rectangle(y, 1.0, segment[1]))
            ticks.append(y + 0.5)
            labels.append(segment[2])
            y += 1.0
        else:
            v0, v1 = segment[1], segment[2]
            height = ramp_height * (v1 - v0) / ramp_total
            values = np.linspace(v0, v1, 256)[:, None]
            picture = band_colours(values, kind, style)
            cax.imshow(
                picture, extent=(0, 1, y, y + height), origin="lower", aspect="auto", interpolation="bilinear"
            )
            marks = [v for v in _nice_ticks(v0, v1)]
            for v in [v0, *marks, v1]:
                ticks.append(y + height * (v - v0) / (v1 - v0))
                labels.append(f"{v:g}")
            y += height
    cax.set_xlim(0, 1)
    cax.set_ylim(0, y)
    cax.set_xticks([])
    cax.yaxis.tick_right()
    cax.set_yticks(ticks, labels, fontsize=fontsize)
    cax.set_ylabel(COLOURBAR_LABELS[kind], fontsize=fontsize)
    cax.yaxis.set_label_position("left")


def _nice_ticks(v0: float, v1: float) -> list[float]:
    step = 0.5 if v1 - v0 > 1.2 else 0.25
    first = math.ceil((v0 + 1e-9) / step) * step
    marks = np.arange(first, v1 - 0.05 * (v1 - v0), step)
    return [round(float(m), 6) for m in marks if m - v0 > 0.05 * (v1 - v0)]


def _rectangle(y: float, height: float, colour: str):
    from matplotlib.patches import Rectangle

    return Rectangle((0, y), 1, height, facecolor=colour, edgecolor="0.3", linewidth=0.5)
