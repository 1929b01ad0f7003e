"""One matplotlib figure that draws many matrices of the same tune.

Drawing is the slow part of the analysis, so one ``MatrixCanvas`` draws every
matrix of a transcription: its tick labels (the tokens), bar numbers and frame
are rendered once into a background, and each matrix only swaps the image data
(``imshow``'s ``set_data``) and redraws the few artists that change (image, bar
lines, titles, colour bar) on top of it. Animations reuse one canvas the same way.
matplotlib is imported lazily, and only its Agg canvas (no pyplot, no GUI backend).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from folkrnn_lens.figures.style import Style, draw_legend
from folkrnn_lens.tokens.format import is_bar


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
            draw_legend(cax, kind, self.style, self.small * 0.8)
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
