"""Figures of the interventions: the token influence matrix I with the tune's tokens,
bar lines and bar numbers, and each step's total influence; the top units' direct
logit attributions over the tune. Diverging colours about 0, as the probes' figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from folkrnn_lens.figures.sheet import (
    diverging_cmap,
    draw_bar_lines,
    draw_titles,
    new_figure,
    save_figure,
    titles_inches,
)
from folkrnn_lens.palette import layer_colour
from folkrnn_lens.tokens.format import bar_indices, is_bar


def _token_axes(ax, tokens: list[str], n: int, side: float) -> None:
    """Token labels where they fit, else every k-th step; bar numbers on top."""
    if n <= 80:
        size = min(7.0, 0.8 * side * 72 / max(n, 1))
        ax.set_xticks(range(n), tokens, rotation=90, fontsize=size)
        ax.set_yticks(range(n), tokens, fontsize=size)
    else:
        step = max(1, math.ceil(n / 16))
        ax.set_xticks(range(0, n, step))
        ax.set_yticks(range(0, n, step))
        ax.tick_params(labelsize=7)
    bars = np.asarray(bar_indices(tokens))
    starts = [k for k in range(n) if k == 0 or bars[k] != bars[k - 1]]
    every = max(1, math.ceil(len(starts) / 24))
    top = ax.secondary_xaxis("top")
    top.set_ticks(starts[::every], [str(bars[k]) for k in starts[::every]], fontsize=6.5)
    top.tick_params(length=0, pad=1, colors="0.3")
    ax.tick_params(length=1.5, pad=1)


def draw_influence(influence, title: str, path: str | Path, colours: dict, dpi: int) -> Path:
    """I[s, t] as a heatmap (columns: the ablated step s, rows: the later step t; red:
    step s helped predict the token after t), and below it each step's total influence
    sum_t I[s, t] and each layer's mean ||delta h|| over later steps."""
    tokens, n = influence.input_tokens, len(influence.input_tokens)
    side = float(np.clip(n * 0.05, 4.5, 9.0))
    width, trace = side + 2.4, 2.2
    subtitle = (
        f"{n} steps; each step's input ablated in turn ({title}). Heatmap: I[s, t] = log p_t(y_t) − "
        "log p_t^(s)(y_t), column s the ablated step, row t the predicting step (red: ablating s makes "
        "the token that came after t less likely; blank above the diagonal, where t < s). Lines at bar "
        "tokens, bar numbers on top. Below: each step's total influence Σ_t I[s, t] and, per layer, the "
        "mean change of h over the steps after it."
    )
    height = titles_inches(subtitle, width) + side + 0.9 + trace + 0.7
    figure = new_figure(width, height, dpi)
    draw_titles(figure, "token influence", subtitle, width)
    matrix = influence.influence.T  # rows t, columns s
    limit = float(np.abs(matrix).max()) or 1e-6
    ax = figure.add_axes((1.0 / width, (trace + 1.3) / height, side / width, side / height))
    image = ax.imshow(
        np.where(np.tril(np.ones((n, n), bool)), matrix, np.nan),
        cmap=diverging_cmap().with_extremes(bad="white"),
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    draw_bar_lines(ax, tokens, n, colours["bar_lines"])
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    _token_axes(ax, tokens, n, side)
    ax.set_xlabel("ablated step s", fontsize=8)
    ax.set_ylabel("predicting step t", fontsize=8)
    bar = figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("I[s, t] (nats)", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    below = figure.add_axes((1.0 / width, 0.55 / height, side / width, trace / height))
    steps = np.arange(n)
    below.bar(steps, influence.influence.sum(axis=1), color="0.35", width=1.0, label="Σ_t I[s, t] (nats)")
    twin = below.twinx()
    later = np.triu(np.ones((n, n), bool))
    for layer, delta in enumerate(influence.delta_h, start=1):
        mean = np.where(later, delta, 0).sum(axis=1) / later.sum(axis=1)
        twin.plot(steps, mean, color=layer_colour(layer), lw=1.0, label=f"layer {layer}: mean ‖Δh‖")
    for k, token in enumerate(tokens):
        if is_bar(token):
            below.axvline(k, color=colours["bar_lines"], lw=0.5, alpha=0.6)
    below.set_xlim(-0.5, n - 0.5)
    below.set_xlabel("ablated step s", fontsize=8)
    below.tick_params(labelsize=7)
    twin.tick_params(labelsize=7)
    below.legend(loc="upper left", fontsize=6.5, frameon=False)
    twin.legend(loc="upper right", fontsize=6.5, frameon=False)
    return save_figure(figure, path)


def draw_attribution(
    attribution, tokens: list[str], path: str | Path, colours: dict, dpi: int, units: int = 16
) -> Path:
    """The units that push the logit of the token that came next most (by mean
    |contribution| over the tune): their contribution at every step, units x steps,
    with bar lines; beside it, their mean contribution per type of predicted token."""
    table = attribution.summary
    n = len(tokens)
    per_step = attribution.units[attribution.units["of"] == "target"]
    shown = (
        per_step.groupby("unit")["contribution"].apply(lambda c: c.abs().sum()).nlargest(units).index.tolist()
    )
    matrix = np.zeros((len(shown), n))
    for row, unit in enumerate(shown):
        hits = per_step[per_step["unit"] == unit]
        matrix[row, hits["step"].to_numpy()] = hits["contribution"].to_numpy()
    width = float(np.clip(n * 0.05, 6.0, 12.0)) + 3.2
    height = 1.4 + 0.22 * len(shown) + 1.2
    figure = new_figure(width, height, dpi)
    subtitle = (
        "Direct logit attribution: h_t[j] W_out[j, y_t], unit j's push on the logit of the token that came "
        f"next, where unit j is among the top {attribution.units['rank'].max() + 1} at step t (else blank). "
        "Rows: the units with the largest total push. Right: each unit's mean contribution by type of the "
        "predicted token."
    )
    draw_titles(figure, "which layer-3 units push the next token", subtitle, width)
    top = titles_inches(subtitle, width)
    plot_width = width - 3.6
    ax = figure.add_axes((0.8 / width, 0.7 / height, plot_width / width, (height - top - 0.9) / height))
    limit = float(np.abs(matrix).max()) or 1e-6
    ax.imshow(
        np.where(matrix == 0, np.nan, matrix),
        cmap=diverging_cmap().with_extremes(bad="white"),
        vmin=-limit,
        vmax=limit,
        aspect="auto",
        interpolation="nearest",
    )
    for k, token in enumerate(tokens):
        if is_bar(token):
            ax.axvline(k, color=colours["bar_lines"], lw=0.5, alpha=0.6)
    ax.set_yticks(range(len(shown)), [f"unit {u}" for u in shown], fontsize=7)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    side = figure.add_axes(
        ((plot_width + 1.4) / width, 0.7 / height, 1.9 / width, (height - top - 0.9) / height)
    )
    means = table.pivot(index="unit", columns="token_type", values="mean_contribution").loc[shown]
    side.imshow(means.to_numpy(), cmap=diverging_cmap(), vmin=-limit, vmax=limit, aspect="auto")
    side.set_xticks(range(len(means.columns)), list(means.columns), rotation=45, fontsize=7)
    side.set_yticks([])
    side.set_title("mean by type", fontsize=7)
    return save_figure(figure, path)


def draw_patching(
    summary, tokens: list[str], changed: list[int], title: str, names: tuple[str, str], path, colours, dpi
):
    """The share of the clean prediction each patch restores: rows the patched layer
    (and every layer), columns the patched step, with bar lines and the changed steps;
    ``names``: the clean and the corrupted tune."""
    layers = sorted(set(summary["layer"]) - {0}) + [0]
    n = len(tokens)
    grid = np.full((len(layers), n), np.nan)
    for row, layer in enumerate(layers):
        part = summary[summary["layer"] == layer]
        grid[row, part["s"].to_numpy()] = part["restored"].to_numpy()
    width = float(np.clip(n * 0.06, 7.0, 14.0)) + 1.6
    subtitle = (
        f"{title}. The corrupted tune ({names[1]}) read again with the clean one's ({names[0]}) state "
        "patched in at one layer and step (and at every layer): the share of the clean log-probability of "
        "each next token it restores over "
        "the steps after the patch (1: all, 0: none; grey: nothing to restore). Lines at bar tokens; "
        "the steps where the two differ are marked."
    )
    height = titles_inches(subtitle, width) + 0.5 * len(layers) + 1.3
    figure = new_figure(width, height, dpi)
    draw_titles(figure, "activation patching", subtitle, width)
    top = titles_inches(subtitle, width)
    ax = figure.add_axes((1.0 / width, 0.7 / height, (width - 2.2) / width, (height - top - 0.9) / height))
    image = ax.imshow(grid, cmap=diverging_cmap(), vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    for k, token in enumerate(tokens):
        if is_bar(token):
            ax.axvline(k, color=colours["bar_lines"], lw=0.5, alpha=0.6)
    for k in changed:
        ax.axvline(k, color=colours["similar"], lw=1.2)
    ax.set_yticks(range(len(layers)), [f"layer {layer}" if layer else "every layer" for layer in layers])
    ax.set_xlabel("patched step", fontsize=8)
    ax.tick_params(labelsize=7)
    bar = figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    bar.ax.tick_params(labelsize=7)
    return save_figure(figure, path)


def draw_ablation(results: list, summaries: list, tokens: list[str], path, colours: dict, dpi: int, top=12):
    """Per swept layer: the units whose ablation costs most (by the change in the loss),
    their importance at every step with bar lines; and beside them the distribution of
    every unit's change in the loss, a histogram per layer."""
    n = len(tokens)
    width = float(np.clip(n * 0.05, 6.0, 12.0)) + 4.2
    first = results[0]
    subtitle = (
        f"Each unit ablated alone from step {first.start} on ({first.value}): importance = log p_t(y_t) − "
        "log p_t^(u)(y_t), red where the prediction of the token after step t needs the unit. Rows: the "
        "units whose ablation raises the loss most. Right: every unit's change in the loss (nats a step)."
    )
    panel = 0.25 * top + 0.9
    height = titles_inches(subtitle, width) + panel * len(results) + 0.4
    figure = new_figure(width, height, dpi)
    draw_titles(figure, "which units the predictions need", subtitle, width)
    limit = max(float(np.abs(r.importance).max()) for r in results) or 1e-6
    for k, (result, summary) in enumerate(zip(results, summaries)):
        bottom = 0.5 + (len(results) - 1 - k) * panel
        order = np.argsort(-summary["delta_loss"].to_numpy(), kind="stable")[:top]
        ax = figure.add_axes((1.1 / width, bottom / height, (width - 5.0) / width, (panel - 0.6) / height))
        image = ax.imshow(result.importance[order], cmap=diverging_cmap(), vmin=-limit, vmax=limit,
                          aspect="auto", interpolation="nearest")  # fmt: skip
        scale = figure.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
        scale.ax.set_title("nats", fontsize=6.5)
        scale.ax.tick_params(labelsize=6.5)
        for step, token in enumerate(tokens):
            if is_bar(token):
                ax.axvline(step, color=colours["bar_lines"], lw=0.5, alpha=0.6)
        names = [",".join(map(str, result.units[row])) for row in order]
        ax.set_yticks(range(len(order)), [f"L{result.layer}.{result.quantity}[{name}]" for name in names])
        ax.tick_params(labelsize=6.5)
        ax.set_xlabel("step", fontsize=7)
        hist = figure.add_axes(((width - 3.2) / width, bottom / height, 2.8 / width, (panel - 0.6) / height))
        hist.hist(summary["delta_loss"], bins=40, color=layer_colour(result.layer))
        hist.set_title(f"layer {result.layer}: Δ loss per unit", fontsize=7)
        hist.tick_params(labelsize=6.5)
    return save_figure(figure, path)
