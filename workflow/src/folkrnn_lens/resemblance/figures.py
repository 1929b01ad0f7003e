"""Figures of the comparisons beyond part 9: the resemblance of each Gramian with
X^T X and across layers, the gate saturation of every unit, and what an invariance
probe changes.

Unlike the band heatmaps of ``figures`` these show statistics, so they use a
diverging colormap (blue negative, red positive) with the number printed where
it fits; layers, gates and statistics look as in every figure (``palette``).
matplotlib's Agg canvas only (no pyplot, no GUI backend), imported lazily.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from folkrnn_lens.figures.sheet import (
    diverging_cmap,
    draw_bar_lines,
    draw_titles,
    new_figure,
    save_figure,
    titles_inches,
)
from folkrnn_lens.names import GATES
from folkrnn_lens.palette import GATE_COLOURS, OTHER_GATE, STATISTIC_LABELS, layer_colour

# ---- resemblance ------------------------------------------------------------------------


def significance_column(statistic: str, settings) -> str | None:
    """The Holm-adjusted p-value that marks a cell: circular shifts where they were
    computed, else bar permutations, else none."""
    if settings.circular_shifts:
        return f"{statistic}_p_circular_holm"
    if settings.bar_permutations > 0:
        return f"{statistic}_p_bars_holm"
    return None


def attainability_note(table: pd.DataFrame, settings) -> str:
    """Said where no cell can be starred whatever the data: with N null orders the
    smallest p-value is 1 / (N + 1), and Holm multiplies the smallest by the number of
    tests."""
    for statistic in settings.statistics:
        column = significance_column(statistic, settings)
        if column is None:
            continue
        raw = table[column.removesuffix("_holm")]
        tests = int(np.isfinite(raw).sum())
        n_null = int(table[column.removesuffix("_holm").replace("_p_", "_n_")].max()) if tests else 0
        if tests and tests / (n_null + 1) >= settings.alpha:
            return (
                f" Note: with {n_null} null orders the smallest p is 1/{n_null + 1}, and Holm over "
                f"{tests} tests multiplies it to {tests / (n_null + 1):.2g} ≥ {settings.alpha:g}: no cell "
                "can be starred here, whatever the data (the raw p-values are in resemblance.parquet)."
            )
    return ""


def resemblance_sections(table: pd.DataFrame, settings) -> list[dict]:
    """The panels' rows: one section per shift against X^T X (rows: layers), one
    across layers (rows: pairs of layers), and one against the influence matrix I
    (rows: layers); columns: quantities."""
    sections = []
    onehot = table[table["family"] == "onehot"]
    for shift in settings.shifts:
        rows = onehot[onehot["shift"] == shift]
        if len(rows):
            keys = [(layer,) for layer in settings.layers]
            sections.append(
                {
                    "title": f"vs X^T X, shift {shift}",
                    "rows": rows,
                    "keys": keys,
                    "labels": [f"layer {layer}" for layer in settings.layers],
                    "key": lambda row: (int(row.a_layer),),
                }
            )
    across = table[table["family"] == "layers"]
    if len(across):
        keys = sorted({(int(r.a_layer), int(r.b_layer)) for r in across.itertuples()})
        sections.append(
            {
                "title": "across layers",
                "rows": across,
                "keys": keys,
                "labels": [f"L{a} vs L{b}" for a, b in keys],
                "key": lambda row: (int(row.a_layer), int(row.b_layer)),
            }
        )
    influence = table[table["family"] == "influence"]
    gramians = influence[influence["a_layer"].notna()]
    if len(gramians):
        onehot = influence[influence["a_layer"].isna()]
        sections.append(
            {
                "title": "vs token influence I",
                "title_of": lambda statistic: _influence_title(onehot, statistic),
                "rows": gramians,
                "keys": [(layer,) for layer in settings.layers],
                "labels": [f"layer {layer}" for layer in settings.layers],
                "key": lambda row: (int(row.a_layer),),
            }
        )
    return sections


def _influence_title(onehot: pd.DataFrame, statistic: str) -> str:
    """The panel title of the Gramians against I, with X^T X against I at each shift."""
    values = [
        f"{getattr(row, statistic):.2f} (shift {row.shift})"
        for row in onehot.itertuples()
        if np.isfinite(getattr(row, statistic))
    ]
    if statistic == "cka":
        return "vs token influence I: not a kernel, so no CKA"
    return "vs token influence I" + (f"; X^T X vs I: {', '.join(values)}" if values else "")


def _grid(section: dict, quantities: list[str], statistic: str, p_column: str | None):
    values = np.full((len(section["keys"]), len(quantities)), np.nan)
    significant = np.zeros(values.shape, bool)
    index = {key: k for k, key in enumerate(section["keys"])}
    for row in section["rows"].itertuples():
        r, c = index[section["key"](row)], quantities.index(row.a_quantity)
        values[r, c] = getattr(row, statistic)
        p = getattr(row, p_column) if p_column else np.nan
        significant[r, c] = bool(np.isfinite(p) and p < section["alpha"])
    return values, significant


def draw_resemblance(
    table: pd.DataFrame, settings, name: str, n_steps: int, path: str | Path, dpi: int
) -> Path:
    """Layers x quantities heatmaps of each statistic: against X^T X at each shift,
    and across layers; the value in each cell, starred and framed where the
    Holm-adjusted p-value is below ``settings.alpha``."""
    from matplotlib.patches import Rectangle

    quantities = list(settings.quantities)
    statistics = list(settings.statistics)
    sections = resemblance_sections(table, settings)
    panel_width = max(2.4, 0.62 * len(quantities) + 1.0)
    width = max(8.0, len(statistics) * panel_width + 1.6)
    gramian = "|cos|" if settings.gramian == "abs" else "signed cos"
    tested = "circular-shift" if settings.circular_shifts else "bar-permutation"
    subtitle = (
        f"{n_steps} steps. Each panel: rows are layers (or pairs of layers), columns are quantities; "
        f"the cell is the statistic of the two matrices. * and a black frame: Holm-adjusted "
        f"{tested} p < {settings.alpha:g} over the tune's {len(table)} comparisons. Shift 1 sets "
        "step t's activations against the token read at step t + 1 (the one predicted at t)."
        + attainability_note(table, settings)
    )
    heights = [0.36 * len(s["keys"]) for s in sections] or [1.0]
    # inches: titles and the panels' two-line titles, x labels, between sections
    top, bottom, gap = titles_inches(subtitle, width) + 0.55, 0.45, 0.95
    height = top + bottom + sum(heights) + gap * (len(heights) - 1)
    figure = new_figure(width, height, dpi)
    draw_titles(
        figure,
        f"{name} · resemblance of the {gramian} Gramians with X^T X and across layers"
        + (" and with the token influence I" if (table["family"] == "influence").any() else ""),
        subtitle,
        width,
    )
    if not sections:
        figure.text(0.5, 0.4, "no comparison against X^T X or across layers configured", ha="center")
        return save_figure(figure, path)
    grid = figure.add_gridspec(
        len(sections),
        len(statistics),
        height_ratios=heights,
        left=0.9 / width,
        right=1 - 1.3 / width,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=gap / np.mean(heights),
        wspace=0.35,
    )
    cmap, image = diverging_cmap(), None
    fontsize = 7.5 if len(quantities) > 5 else 8.5
    for r, section in enumerate(sections):
        section["alpha"] = settings.alpha
        for c, statistic in enumerate(statistics):
            ax = figure.add_subplot(grid[r, c])
            values, significant = _grid(
                section, quantities, statistic, significance_column(statistic, settings)
            )
            image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
            for (i, j), value in np.ndenumerate(values):
                star = "*" if significant[i, j] else ""
                text = "–" if not np.isfinite(value) else f"{value:.2f}{star}"
                colour = "white" if np.isfinite(value) and abs(value) > 0.6 else "black"
                weight = "bold" if star else "normal"
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=colour, weight=weight)
                if star:
                    ax.add_patch(
                        Rectangle(
                            (j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor="black", linewidth=1.4
                        )
                    )
            ax.set_xticks(range(len(quantities)), quantities, fontsize=8)
            ax.set_yticks(range(len(section["labels"])), section["labels"], fontsize=8)
            ax.tick_params(length=0)
            title = section["title_of"](statistic) if "title_of" in section else section["title"]
            ax.set_title(f"{STATISTIC_LABELS.get(statistic, statistic)}\n{title}", fontsize=8.5)
    cax = figure.add_axes((1 - 0.95 / width, bottom / height + 0.1, 0.18 / width, 0.6))
    colourbar = figure.colorbar(image, cax=cax)
    colourbar.set_label("statistic (−1 … 1; grey: undefined)", fontsize=8)
    colourbar.ax.tick_params(labelsize=7)
    return save_figure(figure, path)


# ---- saturation -------------------------------------------------------------------------


def draw_saturation(
    table: pd.DataFrame,
    layers: list[int],
    name: str,
    low: float,
    high: float,
    path: str | Path,
    dpi: int,
) -> Path:
    """One scatter per layer: each unit of each gate at (fraction of steps < low,
    fraction > high), with the limit x + y = 1 (Karpathy, Johnson & Fei-Fei 2015)."""
    panels = max(1, len(layers))
    side = 3.4
    width = panels * (side + 0.9) + 0.6
    n_steps = int(table["n_steps"].iloc[0]) if len(table) else 0
    subtitle = (
        f"One dot per unit of each gate over the {n_steps} steps: left-saturated (nearly closed, "
        f"< {low:g}) against right-saturated (nearly open, > {high:g}). Dots on the dashed line are "
        "saturated at every step; near (0, 1): always open (an integrator, for f); near (0, 0): never "
        "saturated. After Karpathy, Johnson & Fei-Fei 2015, fig. 5."
    )
    height = titles_inches(subtitle, width) + 0.35 + side + 0.62
    figure = new_figure(width, height, dpi)
    draw_titles(figure, f"{name} · gate saturation of every unit", subtitle, width)
    if table.empty:
        figure.text(0.5, 0.4, "no gate (i, f, o) was recorded for these layers", ha="center", fontsize=10)
        return save_figure(figure, path)
    for k, layer in enumerate(layers):
        left = (0.75 + k * (side + 0.9)) / width
        ax = figure.add_axes((left, 0.62 / height, side / width, side / height))
        rows = table[table["layer"] == layer]
        for gate in sorted(set(rows["gate"]), key=lambda g: (GATES + (g,)).index(g)):
            group = rows[rows["gate"] == gate]
            ax.scatter(
                group["frac_below"],
                group["frac_above"],
                s=9,
                alpha=0.55,
                linewidths=0,
                color=GATE_COLOURS.get(gate, OTHER_GATE),
                label=f"{gate} ({len(group)} units)",
            )
        ax.plot([0, 1], [1, 0], linestyle="--", color="0.45", linewidth=0.8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_title(f"layer {layer}", fontsize=10)
        ax.set_xlabel(f"fraction of steps < {low:g} (left-saturated)", fontsize=8)
        if k == 0:
            ax.set_ylabel(f"fraction of steps > {high:g} (right-saturated)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper right", frameon=False, title="gate", title_fontsize=7)
    return save_figure(figure, path)


# ---- probes -----------------------------------------------------------------------------


def draw_probe(result, probe, path: str | Path, colours: dict, dpi: int) -> Path:
    """One panel per layer (a row per quantity): G' - G, diverging and symmetric about
    0; below, each layer's distance ||q'_t - q_t|| at every step. ``colours``: config's
    ``analysis.colours`` (bar lines, and the changed tokens in the *similar* colour),
    so the probe's bar lines look like the heatmaps'."""
    table = result.table
    layers = sorted(table["layer"].unique().tolist())
    quantities = list(probe.quantities)
    tokens, n = result.tokens, len(result.tokens)
    side = float(np.clip(n * 0.05, 3.2, 5.5))
    columns, rows = len(layers), len(quantities)
    width = columns * (side + 1.5) + 0.8
    line_height = 2.6
    changes = ", ".join(f"step {s}: {r[0]!r} → {r[1]!r}" for s, r in _changes(result).items()) or "none"
    subtitle = (
        f"{n} steps; changed input: {changes}. Panels: the probe's Gramian minus the original's "
        f"(G' − G, red: more similar in the probe), axes by step of the probed tune, lines at bar tokens. "
        "Below: how far each layer's activation moves at each step."
    )
    height = titles_inches(subtitle, width) + 0.45 + rows * (side + 1.0) + line_height + 0.35
    figure = new_figure(width, height, dpi)
    draw_titles(figure, f"probe {probe.name} · {probe.description}", subtitle, width)
    labels = n <= 60
    fontsize = min(7.0, 0.8 * side * 72 / max(n, 1))
    cmap = diverging_cmap()
    for r, quantity in enumerate(quantities):
        for c, layer in enumerate(layers):
            difference = result.differences[layer, quantity]
            limit = float(np.abs(difference).max()) or 1e-6
            left = (0.8 + c * (side + 1.5)) / width
            bottom = (line_height + 0.9 + (rows - 1 - r) * (side + 1.0) + 0.55) / height
            ax = figure.add_axes((left, bottom, side / width, side / height))
            image = ax.imshow(difference, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
            draw_bar_lines(ax, tokens, n, colours["bar_lines"])
            ax.set_xlim(-0.5, n - 0.5)
            ax.set_ylim(n - 0.5, -0.5)
            if labels:
                ax.set_xticks(range(n), tokens, rotation=90, fontsize=fontsize)
                ax.set_yticks(range(n), tokens, fontsize=fontsize)
                for changed in result.changed:
                    for tick in (ax.get_xticklabels()[changed], ax.get_yticklabels()[changed]):
                        tick.set_color(colours["similar"])
                        tick.set_weight("bold")
            else:
                step = max(1, math.ceil(n / 12))
                ax.set_xticks(range(0, n, step))
                ax.set_yticks(range(0, n, step))
                ax.tick_params(labelsize=7)
            ax.tick_params(length=1.5, pad=1)
            row = table[(table["layer"] == layer) & (table["quantity"] == quantity)].iloc[0]
            ax.set_title(
                f"layer {layer}, {quantity}: G' − G\nrel. Frobenius {row.relative_frobenius:.3g}, "
                f"CKA {row.cka:.3f}",
                fontsize=9,
            )
            colourbar = figure.colorbar(image, ax=ax, fraction=0.045, pad=0.03)
            colourbar.ax.tick_params(labelsize=7)
    ax = figure.add_axes((0.8 / width, 0.6 / height, 1 - 1.4 / width, line_height / height))
    styles = ("-", "--", ":", "-.")
    for k, quantity in enumerate(quantities):
        for c, layer in enumerate(layers):
            steps = result.steps[(result.steps["layer"] == layer) & (result.steps["quantity"] == quantity)]
            ax.plot(
                steps["step"],
                steps["distance"],
                linestyle=styles[k % len(styles)],
                color=layer_colour(c),
                linewidth=1.1,
                label=f"layer {layer}, {quantity}",
            )
    for changed in result.changed:
        ax.axvline(changed, color="0.4", linestyle=":", linewidth=0.9)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("step (dotted: the changed step)", fontsize=8)
    ax.set_ylabel("‖q′_t − q_t‖ (L2)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False, ncol=min(len(layers) * len(quantities), 6), loc="best")
    return save_figure(figure, path)


def _changes(result) -> dict[int, tuple[str, str]]:
    steps = result.steps.drop_duplicates("step").set_index("step")
    return {s: (steps.at[s, "input_token"], steps.at[s, "probed_token"]) for s in result.changed}
