"""A plain matplotlib figure for the figures that are not band heatmaps (resemblance,
saturation, probes, interventions): made without pyplot, titled, saved with stable
bytes, with a diverging colormap and a tune's bar lines as the heatmaps draw them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from folkrnn_lens.palette import DIVERGING
from folkrnn_lens.tokens.format import is_bar


def new_figure(width: float, height: float, dpi: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)  # no pyplot: no global state, no GUI backend
    figure.patch.set_facecolor("white")
    return figure


def save_figure(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format=path.suffix.lstrip(".") or "png", metadata={"Software": None})
    return path


def wrap_subtitle(subtitle: str, width: float, fontsize: float = 8.5) -> str:
    """The subtitle wrapped to a figure of ``width`` inches (about half an em a character)."""
    return "\n".join(textwrap.wrap(subtitle, max(40, int((width - 0.3) * 72 / (0.52 * fontsize)))))


def draw_titles(figure, title: str, subtitle: str, width: float) -> None:
    height = figure.get_figheight()
    figure.text(0.15 / width, 1 - 0.12 / height, title, ha="left", va="top", fontsize=12, weight="bold")
    figure.text(
        0.15 / width,
        1 - 0.45 / height,
        wrap_subtitle(subtitle, width),
        ha="left",
        va="top",
        fontsize=8.5,
        color="0.2",
    )


def titles_inches(subtitle: str, width: float) -> float:
    """The height the title and the wrapped subtitle take from the top."""
    return 0.5 + 0.16 * (wrap_subtitle(subtitle, width).count("\n") + 1)


def diverging_cmap():
    from matplotlib import colormaps

    return colormaps[DIVERGING].with_extremes(bad="0.85")  # undefined (a constant matrix): grey


def draw_bar_lines(ax, tokens: list[str], n: int, colour: str) -> None:
    from matplotlib.collections import LineCollection

    bars = [k for k, token in enumerate(tokens) if is_bar(token)]
    segments = [((b, -0.5), (b, n - 0.5)) for b in bars] + [((-0.5, b), (n - 0.5, b)) for b in bars]
    ax.add_collection(LineCollection(segments, colors=colour, linewidths=0.5, alpha=0.6))
