"""Heatmaps and animations of the part-9 matrices, with the colour bands of docs/specification.md.

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

Drawing is the slow part of the analysis, so one ``MatrixCanvas`` draws every
matrix of a transcription: its tick labels (the tokens), bar numbers and frame
are rendered once into a background, and each matrix only swaps the image data
(``imshow``'s ``set_data``) and redraws the few artists that change (image, bar
lines, titles, colour bar) on top of it. Animations reuse one canvas the same way
and are written with Pillow (GIF) and ffmpeg (MP4, where ``ffmpeg`` is found).
matplotlib is imported lazily, and only its Agg canvas (no pyplot, no GUI backend).
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .logs import eta
from .matrices import Plan, band_limits
from .tokens import is_bar

log = logging.getLogger(__name__)

DEFAULT_COLOURS = {
    "similar": "#c0392b",  # sanguine: same token, same direction, close distributions
    "dissimilar": "#b0e0e6",  # powder blue: orthogonal, disjoint supports
    "opposite": "#6a3d9a",  # signed cosines <= -high: opposite directions
    "bar_lines": "#1a7f72",
}
GREY_DARK, GREY_LIGHT = 0.12, 0.94  # the ends of the grey scale between the bands


@dataclass(frozen=True)
class Style:
    """How figures look; every field comes from config's ``analysis`` section."""

    colours: dict = field(default_factory=lambda: dict(DEFAULT_COLOURS))
    bands: dict = field(default_factory=lambda: band_limits(None))
    dpi: int = 100
    step_inches: float = 0.09  # the side of one step's cell in a heatmap, before the limits below
    min_inches: float = 6.0  # the side of the matrix, at least
    max_inches: float = 24.0  # and at most
    formats: tuple[str, ...] = ("png",)
    animation_inches: float = 7.0
    animation_dpi: int = 100
    frame_seconds: float = 1.0
    pause_seconds: float = 2.0
    mp4: bool = True

    @classmethod
    def from_config(cls, analysis: dict | None) -> Style:
        analysis = analysis or {}
        figures = analysis.get("figures", {})
        animation = analysis.get("animation", {})
        bands = band_limits(analysis.get("bands"))
        sizes = {
            key: figures[key] for key in ("dpi", "step_inches", "min_inches", "max_inches") if key in figures
        }
        return cls(
            colours={**DEFAULT_COLOURS, **analysis.get("colours", {})},
            bands=bands,
            formats=tuple(figures.get("formats", ("png",))),
            animation_inches=animation.get("inches", cls.animation_inches),
            animation_dpi=animation.get("dpi", cls.animation_dpi),
            frame_seconds=animation.get("frame_seconds", cls.frame_seconds),
            pause_seconds=animation.get("pause_seconds", cls.pause_seconds),
            mp4=animation.get("mp4", cls.mp4),
            **sizes,
        )

    def thresholds(self, kind: str) -> tuple[float, float]:
        band = self.bands["distance" if kind == "distance" else "cosine"]
        return float(band["low"]), float(band["high"])


# ---- colours --------------------------------------------------------------------


def _rgb(colour: str) -> np.ndarray:
    from matplotlib.colors import to_rgb

    return np.array(to_rgb(colour))


COLOUR_ROWS = 256  # rows coloured at once: a long tune's float temporaries stay small


def band_colours(matrix: np.ndarray, kind: str, style: Style) -> np.ndarray:
    """The (rows, cols, 3) uint8 RGB picture of a matrix in the bands of its kind."""
    rgb = np.empty((*matrix.shape, 3), np.uint8)
    for start in range(0, matrix.shape[0], COLOUR_ROWS):
        rgb[start : start + COLOUR_ROWS] = _band_colours(matrix[start : start + COLOUR_ROWS], kind, style)
    return rgb


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
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    for mask, colour in bands:
        rgb[mask] = _rgb(colour)
    return np.round(rgb * 255).astype(np.uint8)


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


def _draw_legend(cax, kind: str, style: Style, fontsize: float) -> None:
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


# ---- the canvas -----------------------------------------------------------------


def token_fontsize(n_steps: int, side_inches: float) -> tuple[float, int]:
    """Font size (points) of the token labels for n steps along an axis of that
    length, and the label stride: every token while a label fits in its step,
    every k-th where the steps are too narrow for a 3-point label."""
    pitch = side_inches * 72 / max(n_steps, 1)  # points per step
    size = min(9.0, 0.82 * pitch)
    if size >= 3.0:
        return size, 1
    return 3.0, math.ceil(3.0 / (0.82 * pitch))


def bar_spans(bars: np.ndarray) -> list[tuple[int, float]]:
    """(bar number, centre step) of each bar, for the bar-number axes."""
    bars = np.asarray(bars)
    return [(int(b), float(np.flatnonzero(bars == b).mean())) for b in np.unique(bars)]


class MatrixCanvas:
    """One figure that draws many n x n matrices of the same tune, side by side in
    ``panels`` axes, with the tokens (or bar numbers) along both axes.

    The static parts (tick labels, bar numbers, frames) are rendered once into a
    background; each colour bar once into a patch. ``show`` restores those and
    draws only what changes. Where a step gets k >= 1 whole pixels, the matrix
    picture is pasted into the canvas scaled by k (nearest neighbour, exact);
    otherwise matplotlib resamples it (antialiased).
    """

    def __init__(
        self,
        tokens: list[str],
        bars: np.ndarray,
        style: Style,
        panels: int = 1,
        side_inches: float | None = None,
        dpi: int | None = None,
        token_labels: bool = True,
    ):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure

        self.style = style
        self.token_labels = token_labels
        self.tokens = list(tokens)
        self.n = n = len(tokens)
        self.dpi = dpi = dpi or style.dpi
        side = side_inches or float(np.clip(n * style.step_inches, style.min_inches, style.max_inches))
        self.scale = int(side * dpi // n)  # whole pixels per step; 0 when steps are narrower than a pixel
        side_px = n * self.scale if self.scale >= 1 else round(side * dpi)
        side = side_px / dpi
        self.fontsize, stride = token_fontsize(n, side) if token_labels else (0.0, 1)
        small = self.small = max(7.0, min(10.0, side * 1.1))  # titles, colour bar, bar numbers
        longest = max((len(t) for t in tokens), default=1)
        labels = 0.62 * self.fontsize / 72 * longest + 0.08  # inches taken by the longest token label
        left = 0.3 + (labels if token_labels else 0.25)  # the axis label, then the tick labels
        bottom, top = left, 1.35
        gap, cbar, cbar_text = 0.55, 0.22, 1.5
        between = left + 0.2
        width = left + panels * side + (panels - 1) * between + 0.45 + gap + cbar + cbar_text
        height = bottom + side + top
        # whole pixels everywhere, so a pasted picture lands exactly on its axes
        W, H = math.ceil(width * dpi), math.ceil(height * dpi)
        self.figure = Figure(figsize=(W / dpi, H / dpi), dpi=dpi)
        FigureCanvasAgg(self.figure)  # no pyplot: no global state, no GUI backend
        self.figure.patch.set_facecolor("white")
        self.size_px = (W, H)
        self.axes, self.images, self.lines, self.boxes = [], [], [], []
        self.panel_titles, self.xlabels, self.ylabels = [], [], []
        bar_steps = [i for i, t in enumerate(tokens) if is_bar(t)]
        spans = bar_spans(bars)
        # bar numbers: every k-th where the bars are too narrow for their labels
        bar_pitch = side * 72 / max(len(spans), 1)  # points per bar, on average
        spans = spans[:: max(1, math.ceil(2.2 * 0.8 * small / bar_pitch))]
        for p in range(panels):
            x0 = round((left + p * (side + between)) * dpi)
            y0 = round(bottom * dpi)
            self.boxes.append((x0, H - y0 - side_px, side_px))  # left, top (rows from the top), side
            ax = self.figure.add_axes((x0 / W, y0 / H, side_px / W, side_px / H))
            image = ax.imshow(
                np.zeros((n, n, 3), np.uint8),
                interpolation="antialiased",
                extent=(-0.5, n - 0.5, n - 0.5, -0.5),
            )
            segments = [((b, -0.5), (b, n - 0.5)) for b in bar_steps]
            segments += [((-0.5, b), (n - 0.5, b)) for b in bar_steps]
            lines = LineCollection(segments, colors=style.colours["bar_lines"], linewidths=0.7, alpha=0.8)
            ax.add_collection(lines)
            ax.set_xlim(-0.5, n - 0.5)
            ax.set_ylim(n - 0.5, -0.5)
            if token_labels:
                steps = np.arange(0, n, stride)
                ax.set_xticks(steps, [tokens[i] for i in steps], rotation=90, fontsize=self.fontsize)
                ax.set_yticks(steps, [tokens[i] for i in steps], fontsize=self.fontsize)
                ax.tick_params(length=1.5, width=0.4, pad=1)
                for twin in (ax.secondary_xaxis("top"), ax.secondary_yaxis("right")):
                    twin.set_ticks([c for _, c in spans], [str(b) for b, _ in spans], fontsize=small * 0.75)
                    twin.tick_params(length=0, pad=1.5, colors="0.3")
                ax.text(
                    1.0,
                    1.0,
                    "bar ",
                    transform=ax.transAxes,
                    ha="right",
                    va="bottom",
                    fontsize=small * 0.75,
                    color="0.3",
                )
            else:
                ticks = ([c for _, c in spans], [str(b) for b, _ in spans])
                ax.set_xticks(*ticks, fontsize=small * 0.8)
                ax.set_yticks(*ticks, fontsize=small * 0.8)
                ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_linewidth(0.6)
            cx = (x0 + side_px / 2) / W
            text = self.figure.text
            self.panel_titles.append(
                text(cx, (y0 + side_px + 0.42 * dpi) / H, "", ha="center", va="bottom", fontsize=small)
            )
            self.xlabels.append(text(cx, 0.1 * dpi / H, "", ha="center", va="bottom", fontsize=small * 0.85))
            self.ylabels.append(
                text(
                    max(x0 / dpi - left + 0.05, 0.02) / (W / dpi),
                    (y0 + side_px / 2) / H,
                    "",
                    rotation=90,
                    ha="left",
                    va="center",
                    fontsize=small * 0.85,
                )
            )
            self.axes.append(ax)
            self.images.append(image)
            self.lines.append(lines)
        self.title = self.figure.text(
            0.5 / (W / dpi),
            1 - 0.15 / (H / dpi),
            "",
            ha="left",
            va="top",
            fontsize=small * 1.25,
            weight="bold",
        )
        self.subtitle = self.figure.text(
            0.5 / (W / dpi), 1 - 0.5 / (H / dpi), "", ha="left", va="top", fontsize=small * 0.9, color="0.2"
        )
        cbar_x = left + panels * side + (panels - 1) * between + 0.45 + gap
        self._cbar_box = (
            cbar_x * dpi / W,
            (bottom + 0.1 * side) * dpi / H,
            cbar * dpi / W,
            0.8 * side * dpi / H,
        )
        self.colourbars: dict = {}
        self._cbar_patches: dict = {}
        self._dynamic = [
            *self.images,
            *self.lines,
            *self.panel_titles,
            *self.xlabels,
            *self.ylabels,
            self.title,
            self.subtitle,
        ]
        self._background = None
        self._kind: str | None = None

    def _ensure_background(self):
        if self._background is None:
            for artist in [*self._dynamic, *self.colourbars.values()]:
                artist.set_visible(False)
            self.figure.canvas.draw()
            self._background = self.figure.canvas.copy_from_bbox(self.figure.bbox)
            self._cbar_patches = {}
            for artist in self._dynamic:
                artist.set_visible(True)
        return self._background

    def _colourbar_patch(self, kind: str):
        """The rendered colour bar of a kind, drawn once over the background."""
        if kind not in self.colourbars:
            cax = self.figure.add_axes(self._cbar_box)
            _draw_legend(cax, kind, self.style, self.small * 0.8)
            cax.set_visible(False)
            self.colourbars[kind] = cax
        if kind not in self._cbar_patches:
            canvas, cax = self.figure.canvas, self.colourbars[kind]
            canvas.restore_region(self._ensure_background())
            cax.set_visible(True)
            self.figure.draw_artist(cax)
            box = cax.get_tightbbox(canvas.get_renderer()).expanded(1.02, 1.02)
            self._cbar_patches[kind] = canvas.copy_from_bbox(box.intersection(box, self.figure.bbox))
            cax.set_visible(False)
        return self._cbar_patches[kind]

    def show(
        self,
        pictures: list[np.ndarray],
        kind: str,
        title: str,
        subtitle: str = "",
        panel_titles: list[str] | None = None,
        xlabels: list[str] | None = None,
        ylabels: list[str] | None = None,
    ) -> None:
        """Draw one state: a picture (from ``band_colours``) per panel, the titles, and
        the colour bar of ``kind``. Only these are redrawn over the background."""
        canvas = self.figure.canvas
        background = self._ensure_background()
        patch = self._colourbar_patch(kind)
        canvas.restore_region(background)
        canvas.restore_region(patch)
        buffer = np.asarray(canvas.buffer_rgba()) if self.scale >= 1 else None
        blank = [""] * len(self.axes)
        for i, ax in enumerate(self.axes):
            self.images[i].set_data(pictures[i])
            if buffer is not None:
                left, top, side = self.boxes[i]
                k = self.scale
                n = self.n
                target = buffer[top : top + side, left : left + side, :3].reshape(n, k, n, k, 3)
                target[...] = pictures[i][:, None, :, None, :]  # nearest-neighbour, no temporary
            else:
                ax.draw_artist(self.images[i])
            ax.draw_artist(self.lines[i])
            for spine in ax.spines.values():
                ax.draw_artist(spine)
            for artists, texts in (
                (self.panel_titles, panel_titles),
                (self.xlabels, xlabels),
                (self.ylabels, ylabels),
            ):
                artists[i].set_text((texts or blank)[i])
                self.figure.draw_artist(artists[i])
        self.title.set_text(title)
        # wrapped to the figure's width (about half an em a character)
        width = int((self.size_px[0] / self.dpi - 0.8) * 72 / (0.55 * self.subtitle.get_fontsize()))
        self.subtitle.set_text("\n".join(textwrap.wrap(subtitle, max(width, 20))))
        self.figure.draw_artist(self.title)
        self.figure.draw_artist(self.subtitle)
        self._kind = kind

    def pixels(self) -> np.ndarray:
        """What ``show`` drew, as an (height, width, 4) uint8 RGBA array (a copy)."""
        return np.array(self.figure.canvas.buffer_rgba())

    def save(self, path: str | Path, formats: tuple[str, ...] = ("png",)) -> list[tuple[Path, object]]:
        """The current state as ``path`` with each format's suffix. PNG comes straight
        from the canvas pixels (returned as (path, pixels) for a writer to encode, so
        encoding can overlap the next drawing); PDF and SVG are printed by matplotlib,
        without dates so that the bytes are stable."""
        jobs = []
        for fmt in formats:
            out = Path(path).with_suffix(f".{fmt}")
            out.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "png":
                jobs.append((out, self.pixels()))
                continue
            cax = self.colourbars[self._kind]
            cax.set_visible(True)
            metadata = {"CreationDate": None} if fmt == "pdf" else {"Date": None} if fmt == "svg" else {}
            self.figure.savefig(out, format=fmt, metadata=metadata)
            cax.set_visible(False)
            self._background = None  # printing may have redrawn the Agg canvas
            jobs.append((out, None))
        return jobs


def write_png(path: str | Path, pixels: np.ndarray, dpi: int, style: Style | None = None) -> Path:
    """An RGBA canvas as PNG. With a style, as a palette PNG in the GIF palette (exact
    band colours, 200+ greys): a third of the bytes to compress, so about 3x faster."""
    from PIL import Image

    image = to_palette(pixels, style) if style is not None else Image.fromarray(pixels).convert("RGB")
    image.save(path, dpi=(dpi, dpi), compress_level=3)
    return Path(path)


def _palette_image(style: Style):
    from PIL import Image

    palette = Image.new("P", (1, 1))
    palette.putpalette(gif_palette(style))
    return palette


def to_palette(pixels: np.ndarray, style: Style):
    """An RGB(A) picture as a 'P' image in the fixed palette. Pillow's palette lookup
    is approximate (white may become 252), so grey pixels, most of a figure, are
    mapped exactly through a table; the rest (bands, bar lines) by Pillow."""
    from PIL import Image

    rgb = np.ascontiguousarray(pixels[..., :3])
    indices = np.asarray(
        Image.fromarray(rgb).quantize(palette=_palette_image(style), dither=Image.Dither.NONE)
    )
    entries = np.array(gif_palette(style)).reshape(-1, 3)
    greys = np.flatnonzero((entries[:, 0] == entries[:, 1]) & (entries[:, 1] == entries[:, 2]))
    table = greys[np.abs(entries[greys, 0][None, :] - np.arange(256)[:, None]).argmin(axis=1)]
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    image = Image.fromarray(np.where(grey, table[rgb[..., 0]], indices).astype(np.uint8), "P")
    image.putpalette(gif_palette(style))
    return image


# ---- animations -----------------------------------------------------------------


def frame_durations(n_frames: int, frame_seconds: float, pause_seconds: float) -> list[float]:
    """Seconds each frame is shown: frame_seconds, and the last one pause_seconds longer."""
    return [frame_seconds] * (n_frames - 1) + [frame_seconds + pause_seconds]


def gif_palette(style: Style) -> list[int]:
    """A fixed 256-colour palette for every GIF frame and PNG: a fine grey scale (the ramp,
    text, white) plus the band colours and the bar lines blended over greys, so
    frames neither flicker nor band into coarse grey steps."""
    colours = [_rgb(style.colours[key]) for key in ("similar", "dissimilar", "opposite")]
    line = _rgb(style.colours["bar_lines"])
    blends = [0.2 * g + 0.8 * line for g in np.linspace(0, 1, 12)]
    blends += [0.2 * c + 0.8 * line for c in colours]
    extra = [*colours, *blends]
    greys = np.linspace(0, 1, 256 - len(extra))
    entries = [np.array([g, g, g]) for g in greys] + extra
    return [int(round(v * 255)) for colour in entries for v in colour]


def write_gif(frames: list[np.ndarray], path: str | Path, durations: list[float], style: Style) -> Path:

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [to_palette(frame, style) for frame in frames]
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=[round(d * 1000) for d in durations],
        loop=0,
        optimize=False,
    )
    return path


def write_mp4(frames: list[np.ndarray], path: str | Path, durations: list[float]) -> Path:
    """H.264 by ffmpeg, sizes padded to even. The video runs at one frame per shortest
    duration (1 fps by default), each frame repeated to fill its own, so only a few
    frames are encoded."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not on PATH: cannot write MP4")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]  # frames are RGBA
    unit = min(durations)
    repeats = [max(1, round(d / unit)) for d in durations]
    rate = f"{1 / unit:.6g}"
    pad = "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white"
    command = [
        ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
        "-r", rate, "-i", "-", "-vf", pad, "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage",
        "-pix_fmt", "yuv420p", "-threads", "1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-map_metadata", "-1", str(path),
    ]  # fmt: skip
    data = b"".join(np.ascontiguousarray(f[..., :3]).tobytes() * k for f, k in zip(frames, repeats))
    subprocess.run(command, input=data, check=True, capture_output=True)
    return path


def mp4_available(style: Style) -> bool:
    return bool(style.mp4) and shutil.which("ffmpeg") is not None


# ---- one transcription ----------------------------------------------------------

KIND_TITLES = {
    "onehot": "X^T X of the one-hot inputs (1 = the same token)",
    "distance": "L1 distances between softmax outputs",
    "magnitude": "magnitude Gramian, |cos| of the angle between steps",
    "signed": "signed Gramian, cos of the angle between steps",
    "cross": "cross-gate matrix",
}


def _panel_text(spec, tokens: bool = True) -> tuple[str, str, str]:
    """(title, x label, y label) of a matrix; axes read by token, or by bar where
    the tokens are too many to print (animations)."""
    axis = "step: input token" if tokens else "bar (steps grouped by bar number)"
    if spec.kind in ("onehot", "distance"):
        what = "one-hot inputs x" if spec.kind == "onehot" else "softmax outputs p"
        return f"{spec.name}: {KIND_TITLES[spec.kind]}", f"{axis}, of {what}", f"{axis}, of {what}"
    if spec.kind == "cross":
        a, b = spec.quantity, spec.quantity_b
        return (
            f"layer {spec.layer}, {a} × {b}: cross-gate matrix, cos of the angle between {a}_s and {b}_t",
            f"s = {axis}, of {a}",
            f"t = {axis}, of {b}",
        )
    return (
        f"layer {spec.layer}, {spec.quantity}: {KIND_TITLES[spec.kind]}",
        f"{axis}, of {spec.quantity} in layer {spec.layer}",
        f"{axis}, of {spec.quantity} in layer {spec.layer}",
    )


def display_matrix(matrix: np.ndarray, kind: str) -> np.ndarray:
    """What the image shows: a cross matrix U_a^T U_b transposed, so b runs along the
    vertical axis (docs/specification.md); the symmetric ones as they are."""
    return matrix.T if kind == "cross" else matrix


class _Inline:
    """An executor that runs each job at once (one thread, no overlap)."""

    def submit(self, function, *args):
        from concurrent.futures import Future

        future = Future()
        future.set_result(function(*args))
        return future

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _steps_text(n: int, window: tuple[int, int] | None) -> str:
    if window is None:
        return f"{n} steps"
    return f"{n} steps (the window of steps {window[0]} to {window[1] - 1})"


class _Pending:
    """Encodings submitted and not yet collected; at most ``limit`` wait at once, so
    a drawing thread faster than its encoder does not pile up pictures in memory."""

    def __init__(self, written: list[Path], limit: int = 3):
        self.written, self.limit, self.futures = written, limit, []

    def add(self, future) -> None:
        self.futures.append(future)
        while len(self.futures) > self.limit:
            self._collect(self.futures.pop(0))

    def finish(self) -> None:
        while self.futures:
            self._collect(self.futures.pop(0))

    def _collect(self, future) -> None:
        result = future.result()
        self.written.extend(result if isinstance(result, list) else [result])


def animation_page(gif: Path, page: Path, title: str, description: str, mp4: Path | None = None) -> Path:
    """A small HTML page showing a GIF inline (Snakemake's report shows HTML and still
    images in place, but offers a GIF only as a download)."""
    import base64
    from html import escape

    data = base64.b64encode(gif.read_bytes()).decode()
    video = f"<p>Also as MP4: <code>{escape(mp4.name)}</code>.</p>" if mp4 else ""
    page.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body style='font-family:sans-serif;margin:0.5em'><p>{escape(description)}</p>"
        f"<img src='data:image/gif;base64,{data}' alt='{escape(title)}' style='max-width:100%'>{video}"
        "</body></html>\n",
        encoding="utf-8",
    )
    return page


def draw_transcription(
    name: str,
    npz_path: str | Path,
    summary_path: str | Path,
    plan: Plan,
    figure_dir: str | Path,
    animation_dir: str | Path,
    style: Style,
    threads: int = 1,
    mp4: bool | None = None,
    pages: bool = True,
    window: tuple[int, int] | None = None,
) -> list[Path]:
    """Every heatmap and animation of one transcription; returns the files written.
    With a ``window`` (the matrices hold steps start..stop-1), the subtitles say so.

    With ``threads`` >= 2, encoding (PNG, GIF, MP4) runs on a second thread while
    the next picture is drawn. ``mp4`` (default: where ffmpeg is found and
    ``style.mp4``) adds MP4s; ``pages`` an HTML page per animation for the report.
    """
    import pandas as pd

    from .matrices import describe_row

    mp4 = mp4_available(style) if mp4 is None else mp4
    if mp4 and shutil.which("ffmpeg") is None:
        raise RuntimeError("MP4 animations were asked for, but ffmpeg is not on PATH")
    data = np.load(npz_path)  # lazily: each matrix is read when it is drawn
    tokens, bars = data["tokens"].tolist(), data["bars"]
    summary = {row.matrix: row for row in pd.read_parquet(summary_path).itertuples()}

    def picture(matrix_name: str) -> np.ndarray:
        """Coloured anew each time, not kept: a long tune's pictures do not fit in memory together."""
        kind = plan.spec(matrix_name).kind
        return band_colours(display_matrix(data[matrix_name], kind), kind, style)

    written: list[Path] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) if threads >= 2 else _Inline() as encoder:
        pending = _Pending(written)
        canvas = MatrixCanvas(tokens, bars, style)
        for done, spec in enumerate(plan.matrices, 1):
            title, xlabel, ylabel = _panel_text(spec)
            counts = describe_row(summary[spec.name]) if spec.name in summary else ""
            canvas.show(
                [picture(spec.name)],
                spec.kind,
                f"{name} · {title}",
                f"{_steps_text(len(tokens), window)}; {counts}. "
                "Lines: bar tokens; numbers on top and right: bars.",
                xlabels=[xlabel],
                ylabels=[ylabel],
            )
            for path, pixels in canvas.save(Path(figure_dir) / f"{spec.name}.png", style.formats):
                if pixels is None:
                    written.append(path)
                else:
                    pending.add(encoder.submit(write_png, path, pixels, canvas.dpi, style))
            log.info(
                "%s: heatmap %s (%d of %d)%s",
                name,
                spec.name,
                done,
                len(plan.matrices),
                eta(started, done, len(plan.matrices)),
            )
        del canvas
        heatmaps = time.perf_counter() - started

        canvases: dict[int, MatrixCanvas] = {}
        animations_started = time.perf_counter()
        for done, animation in enumerate(plan.animations, 1):
            panels = len(animation.frames[0])
            if panels not in canvases:
                canvases[panels] = MatrixCanvas(
                    tokens,
                    bars,
                    style,
                    panels=panels,
                    side_inches=style.animation_inches / panels**0.5,
                    dpi=style.animation_dpi,
                    token_labels=len(tokens) <= 48,
                )
            canvas = canvases[panels]
            layers = [plan.spec(frame[-1]).layer for frame in animation.frames]
            frames = []
            for frame, layer in zip(animation.frames, layers):
                specs = [plan.spec(matrix) for matrix in frame]
                texts = [_panel_text(spec, canvas.token_labels) for spec in specs]
                canvas.show(
                    [picture(matrix) for matrix in frame],
                    specs[-1].kind,
                    f"{name} · {animation.title} · layer {layer}",
                    f"layers {' → '.join(map(str, layers))}, pausing on layer {layers[-1]}. "
                    "Lines: bar tokens.",
                    panel_titles=[spec.name if len(specs) > 1 else "" for spec in specs],
                    xlabels=[t[1] for t in texts],
                    ylabels=[t[2] for t in texts],
                )
                frames.append(canvas.pixels())
            durations = frame_durations(len(frames), style.frame_seconds, style.pause_seconds)
            base = Path(animation_dir) / animation.name
            pending.add(
                encoder.submit(_write_animation, frames, base, durations, style, mp4, pages, animation)
            )
            log.info(
                "%s: animation %s (%d of %d)%s",
                name,
                animation.name,
                done,
                len(plan.animations),
                eta(animations_started, done, len(plan.animations)),
            )
        pending.finish()
    log.info(
        "%s: %d heatmaps in %.2f s, %d animations in %.2f s (%d files in %s and %s)",
        name,
        len(plan.matrices),
        heatmaps,
        len(plan.animations),
        time.perf_counter() - started - heatmaps,
        len(written),
        figure_dir,
        animation_dir,
    )
    return written


def _write_animation(
    frames, base: Path, durations, style: Style, mp4: bool, pages: bool, animation
) -> list[Path]:
    written = [write_gif(frames, base.parent / f"{base.name}.gif", durations, style)]
    if mp4:
        written.append(write_mp4(frames, base.parent / f"{base.name}.mp4", durations))
    if pages:
        layers = " → ".join(frame[-1].split(".")[0] for frame in animation.frames)
        description = (
            f"{animation.title}: {layers}, {style.frame_seconds:g} s a frame, pausing "
            f"{style.pause_seconds:g} s more on the last."
        )
        written.append(
            animation_page(
                written[0],
                base.parent / f"{base.name}.html",
                animation.title,
                description,
                written[1] if mp4 else None,
            )
        )
    return written
