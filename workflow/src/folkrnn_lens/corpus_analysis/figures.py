"""Figures of a corpus analysis: what the tables of many tunes say, at a glance.

- ``distributions``: per quantity and shift, each layer's resemblance to X^T X
  across tunes (box plots), with the circular-shift null's mean and the share
  of tunes where the resemblance is significant;
- ``winners``: which layer resembles X^T X most, as a share of the tunes;
- ``bar_averages``: X^T X and each layer's hidden-state Gramian averaged over
  the tunes bar by bar (bar i against bar j);
- ``saturation``: every unit's share of the corpus's steps left- and
  right-saturated, per layer (Karpathy, Johnson & Fei-Fei 2015);
- ``attribution``: the top-layer units that most often push the logit of the token
  that came next, by its type (pitch, duration, bar line, other);
- ``selectivity``: per layer and quantity, every unit's selectivity for each musical
  feature (eta squared, or the bar phase's R^2), the units not selected at the FDR faint;
- ``tuning``: the most bar-phase-selective units' tuning curves (mean activation by
  bar phase, with a 95% band), per layer and quantity;
- ``bar_period``: Sturm's analysis made exact: each unit's share of its variance at the
  bar period, tunes resampled on their bars, ranked, against the whole layer's and a
  flat spectrum's;
- ``decoding``: linear probes' held-out accuracy per feature, layer and quantity,
  against their control tasks (selectivity) and the majority class;
- ``bar_clock``: how much of the bar phase the k most phase-selective units of a
  layer decode on held-out tunes, against k (one unit, or many?);
- ``comparison``: two corpus analyses side by side (e.g. generated and real).

Layers, gates and statistics look as in a transcription's figures (``palette``).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from folkrnn_lens.names import (
    GATES,  # noqa: E402
    gramian_name,  # noqa: E402
)
from folkrnn_lens.palette import GATE_COLOURS, PAIR_COLOURS, STATISTIC_LABELS, layer_colour  # noqa: E402
from folkrnn_lens.resemblance.transcription import layers_and_quantities  # noqa: E402
from folkrnn_lens.selectivity.period import PER_BAR  # noqa: E402


def _parsed(names: pd.Series) -> pd.DataFrame:
    return layers_and_quantities(names).astype({"layer": int})


def _save(fig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def distributions(aggregate: pd.DataFrame, resemblance: pd.DataFrame, settings, path, title: str) -> None:
    """Rows: statistics x shifts; columns: quantities; in each panel one box per layer."""
    onehot = resemblance[resemblance["family"] == "onehot"]
    onehot = pd.concat([onehot, _parsed(onehot["a"])], axis=1)
    summary = aggregate[aggregate["family"] == "onehot"]
    rows = [(s, k) for s in settings.statistics for k in settings.shifts]
    quantities, layers = list(settings.quantities), list(settings.layers)
    fig, axes = plt.subplots(
        len(rows), len(quantities), figsize=(2.1 * len(quantities) + 1, 2.4 * len(rows) + 0.8), squeeze=False
    )
    for r, (statistic, shift) in enumerate(rows):
        for c, quantity in enumerate(quantities):
            ax = axes[r, c]
            data = onehot[(onehot["shift"] == shift) & (onehot["quantity"] == quantity)]
            values = [data.loc[data["layer"] == layer, statistic].dropna().to_numpy() for layer in layers]
            boxes = ax.boxplot(values, widths=0.6, showfliers=False, patch_artist=True)
            for k, patch in enumerate(boxes["boxes"]):
                patch.set_facecolor(layer_colour(k))
                patch.set_alpha(0.6)
            nulls = [data.loc[data["layer"] == layer, f"{statistic}_null_mean"].mean() for layer in layers]
            ax.plot(range(1, len(layers) + 1), nulls, "k_", markersize=14, label="null mean")
            for k, layer in enumerate(layers):
                row = summary[
                    (summary["a"] == gramian_name(layer, quantity, settings.gramian))
                    & (summary["shift"] == shift)
                    & (summary["statistic"] == statistic)
                ]
                if not row.empty and np.isfinite(row["share_p_circular"].iloc[0]):
                    share = row["share_p_circular"].iloc[0]
                    ax.annotate(
                        f"{share:.0%}", (k + 1, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="bottom", fontsize=7,
                    )  # fmt: skip
            ax.set_xticks(range(1, len(layers) + 1), [f"L{layer}" for layer in layers])
            ax.axhline(0, color="0.8", linewidth=0.6)
            if r == 0:
                ax.set_title(quantity, pad=12)
            if c == 0:
                ax.set_ylabel(f"{STATISTIC_LABELS[statistic]}\nshift {shift}")
    fig.suptitle(
        f"{title}\nresemblance to X^T X across tunes (boxes: quartiles; -: circular-shift null mean; "
        f"%: tunes with circular-shift p < {settings.alpha}, about {settings.alpha:.0%} by chance)",
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)


def winners(table: pd.DataFrame, settings, path, title: str) -> None:
    """Per statistic and shift, grouped bars: for each quantity, the share of tunes
    where each layer resembles X^T X most."""
    rows = [(s, k) for s in settings.statistics for k in settings.shifts]
    quantities, layers = list(settings.quantities), list(settings.layers)
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(1.2 * len(quantities) + 2, 2.2 * len(rows) + 0.8), squeeze=False
    )
    width = 0.8 / len(layers)
    for r, (statistic, shift) in enumerate(rows):
        ax = axes[r, 0]
        data = table[(table["statistic"] == statistic) & (table["shift"] == shift)]
        for k, layer in enumerate(layers):
            shares = [
                data.loc[(data["quantity"] == q) & (data["layer"] == layer), "share"].sum()
                for q in quantities
            ]
            x = np.arange(len(quantities)) + (k - (len(layers) - 1) / 2) * width
            ax.bar(x, shares, width, color=layer_colour(k), label=f"layer {layer}")
        ax.set_xticks(range(len(quantities)), quantities)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"{STATISTIC_LABELS[statistic]}\nshift {shift}")
        if r == 0:
            ax.legend(ncol=len(layers), fontsize=8, loc="lower right", bbox_to_anchor=(1, 1))  # above
    fig.suptitle(f"{title}\nshare of tunes where each layer's Gramian resembles X^T X most", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def bar_averages(averages: dict[str, np.ndarray], path, title: str) -> None:
    """One panel per matrix: the mean over tunes of its bar-by-bar mean."""
    names = [name for name in averages if name != "n_tunes"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names) + 0.6, 4.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        matrix = averages[name]
        image = ax.imshow(matrix, cmap="Greys", origin="upper", interpolation="nearest")
        label = "X^T X" if name == "onehot" else re.sub(r"^L(\d+)\.(\w+)\.(\w+)$", r"layer \1, \2 (\3)", name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("bar")
        ax.set_ylabel("bar")
        ticks = np.arange(0, matrix.shape[0], 4)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    n = averages["n_tunes"]
    fig.suptitle(
        f"{title}\nmean over tunes of each matrix's mean over the steps of bar i and bar j "
        f"({int(n[0, 0])} tunes have bar 0, {int(n[-1, -1])} bar {n.shape[0] - 1})",
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)


def saturation(units: pd.DataFrame, n_steps: int, path, title: str) -> None:
    """One scatter per layer: each unit's fraction of steps below (x) and above (y)."""
    layers = sorted(units["layer"].unique())
    fig, axes = plt.subplots(1, len(layers), figsize=(3.4 * len(layers) + 0.4, 3.6), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        for gate in GATES:
            data = units[(units["layer"] == layer) & (units["gate"] == gate)]
            ax.scatter(
                data["frac_below"], data["frac_above"], s=5, alpha=0.5, color=GATE_COLOURS[gate], label=gate
            )
        ax.plot([0, 1], [1, 0], color="0.7", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_title(f"layer {layer}", fontsize=10)
        ax.set_xlabel("fraction left-saturated (< low)")
        if layer == layers[0]:
            ax.set_ylabel("fraction right-saturated (> high)")
            ax.legend(title="gate", fontsize=8, markerscale=2)
    fig.suptitle(f"{title}\ngate saturation of every unit over {n_steps} steps", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def attribution(table: pd.DataFrame, path, title: str, shown: int = 24) -> None:
    """The ``shown`` units most often among the top pushers of the next token (over all
    types): per type of that token, how often (left, share of its steps) and how hard
    (right, mean h_t[j] W_out[j, y_t])."""
    from folkrnn_lens.palette import DIVERGING

    totals = table.groupby("unit")["n_top"].sum().sort_values(ascending=False, kind="stable")
    units = totals.index[:shown].tolist()
    types = list(dict.fromkeys(table["token_type"]))
    share = table.pivot(index="unit", columns="token_type", values="share_top").loc[units, types]
    mean = table.pivot(index="unit", columns="token_type", values="mean_contribution").loc[units, types]
    steps = table.groupby("token_type", sort=False)["n_steps"].first().loc[types]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 0.24 * len(units) + 2.0), sharey=True)
    image = left.imshow(share.to_numpy(), cmap="Greys", vmin=0, aspect="auto")
    fig.colorbar(image, ax=left, fraction=0.05, pad=0.02).set_label("share of the type's steps", fontsize=8)
    limit = float(np.nanmax(np.abs(mean.to_numpy()))) if len(units) else 1.0
    image = right.imshow(mean.to_numpy(), cmap=DIVERGING, vmin=-limit, vmax=limit, aspect="auto")
    fig.colorbar(image, ax=right, fraction=0.05, pad=0.02).set_label("mean push on the logit", fontsize=8)
    labels = [f"{kind}\n({steps[kind]:,} steps)" for kind in types]
    top = int(table["top_units"].iloc[0])
    for ax, what in ((left, f"among the top {top} pushers"), (right, "mean push")):
        ax.set_xticks(range(len(types)), labels, fontsize=7)
        ax.set_title(what, fontsize=9)
    left.set_yticks(range(len(units)), [f"unit {unit}" for unit in units], fontsize=7)
    fig.suptitle(
        f"{title}\nwhich top-layer units push the logit of the token that came next, by its type "
        "(direct logit attribution h_t[j] W_out[j, y_t])",
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, path)


def selectivity(table: pd.DataFrame, path, title: str) -> None:
    """Rows: quantities; columns: layers; in each panel the features (rows) by the
    units (columns, ordered by their largest statistic), the units selected at the FDR
    in full colour, the others faint; each feature's count of selected units."""
    if table.empty:
        _nothing(path, title, "no unit selectivity measured (selectivity: {enabled: false})")
        return
    layers, quantities = sorted(table["layer"].unique()), list(dict.fromkeys(table["quantity"]))
    features = list(dict.fromkeys(table["feature"]))
    size = (4.6 * len(layers) + 1.2, (0.3 * len(features) + 1.0) * len(quantities) + 1.0)
    fig, axes = plt.subplots(len(quantities), len(layers), figsize=size, squeeze=False, layout="constrained")
    limit = float(table["value"].max()) or 1.0
    for r, quantity in enumerate(quantities):
        for c, layer in enumerate(layers):
            ax = axes[r, c]
            part = table[(table["layer"] == layer) & (table["quantity"] == quantity)]
            values = part.pivot(index="feature", columns="unit", values="value").loc[features]
            chosen = part.pivot(index="feature", columns="unit", values="selective").loc[features]
            order = np.argsort(-values.max(axis=0).to_numpy(), kind="stable")
            shown, picked = values.to_numpy()[:, order], chosen.to_numpy()[:, order].astype(bool)
            image = ax.imshow(
                shown, cmap="viridis", vmin=0, vmax=limit, aspect="auto", interpolation="nearest"
            )
            faint = np.where(picked, np.nan, 0.0)  # a white veil over the units not selected
            ax.imshow(
                faint, cmap="Greys", vmin=0, vmax=1.4, alpha=0.75, aspect="auto", interpolation="nearest"
            )
            counts = picked.sum(axis=1)
            ax.set_yticks(range(len(features)), [f"{f} ({n})" for f, n in zip(features, counts)], fontsize=7)
            ax.set_xlabel("units, by their largest statistic", fontsize=7)
            ax.set_title(f"layer {layer}, {quantity}", fontsize=9)
            ax.tick_params(labelsize=6.5)
    fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01).set_label("eta² / R² of the bar phase", fontsize=8)
    fig.suptitle(
        f"{title}\nunit selectivity: the share of each unit's variance each feature explains; faint: not "
        "selected at the FDR against shuffles within tunes; (n): units selected",
        fontsize=9,
    )
    _save(fig, path)


def tuning(curves: pd.DataFrame, selective: pd.DataFrame, path, title: str, shown: int = 6) -> None:
    """Rows: quantities; columns: layers; in each panel the tuning curves of the
    ``shown`` units with the largest bar-phase R^2 (or, where the bar phase's
    selectivity is not measured, the widest curves), each with its 95% band."""
    if curves.empty:
        _nothing(path, title, "no tuning curves (selectivity: {enabled: false})")
        return
    layers, quantities = sorted(curves["layer"].unique()), list(dict.fromkeys(curves["quantity"]))
    size = (3.6 * len(layers) + 0.6, 2.7 * len(quantities) + 0.9)
    fig, axes = plt.subplots(len(quantities), len(layers), figsize=size, squeeze=False, layout="constrained")
    phase = selective[selective["feature"] == "bar_phase"]
    for r, quantity in enumerate(quantities):
        for c, layer in enumerate(layers):
            ax = axes[r, c]
            part = curves[(curves["layer"] == layer) & (curves["quantity"] == quantity)]
            ranked = phase[(phase["layer"] == layer) & (phase["quantity"] == quantity)]
            if len(ranked):
                units = ranked.nlargest(shown, "value")["unit"].tolist()
                label = {u: f"unit {u}, R² {v:.2f}" for u, v in zip(ranked["unit"], ranked["value"])}
            else:
                spread = part.groupby("unit")["mean"].agg(lambda m: m.max() - m.min())
                units = spread.nlargest(shown).index.tolist()
                label = {u: f"unit {u}" for u in units}
            for k, unit in enumerate(units):
                curve = part[part["unit"] == unit]
                colour = plt.get_cmap("tab10")(k % 10)
                ax.plot(curve["phase"], curve["mean"], color=colour, lw=1.2, label=label[unit])
                ax.fill_between(curve["phase"], curve["low"], curve["high"], color=colour, alpha=0.2, lw=0)
            ax.set_xlim(0, 1)
            ax.set_title(f"layer {layer}, {quantity}", fontsize=9)
            ax.set_xlabel("bar phase", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, frameon=False)
    what = "bar-phase tuning: mean activation by where in the bar the step's event starts (95% band)"
    fig.suptitle(f"{title}\n{what}", fontsize=9)
    _save(fig, path)


def bar_period(units: pd.DataFrame, population: pd.DataFrame, path, title: str) -> None:
    """Columns: quantities; per layer, every unit's mean share of its variance at the
    bar period (units ranked by it, with each unit's 95% band), the population's share as
    a dashed line, and the share a flat spectrum gives (grey)."""
    if units.empty:
        _nothing(path, title, "no bar-period analysis (selectivity: {enabled: false})")
        return
    layers, quantities, fig, axes = _quantity_panels(units, 4.2, 3.6)
    for ax, quantity in zip(axes, quantities):
        for k, layer in enumerate(layers):
            rows = units[(units["layer"] == layer) & (units["quantity"] == quantity)]
            rows = rows.dropna(subset=["mean_share"]).sort_values("mean_share", ascending=False)
            rank = np.arange(1, len(rows) + 1)
            whole = population[(population["layer"] == layer) & (population["quantity"] == quantity)].iloc[0]
            colour = layer_colour(k)
            ax.plot(rank, rows["mean_share"], color=colour, lw=1.2,
                    label=f"layer {layer}: best unit {int(whole['best_unit'])}, "
                          f"{int(whole['n_units_above_flat'])} above flat")  # fmt: skip
            ax.fill_between(rank, rows["share_low"], rows["share_high"], color=colour, alpha=0.2, lw=0)
            ax.axhline(whole["mean_share"], color=colour, lw=1, ls="--")
        ax.axhline(units["flat_share"].mean(), color="0.5", lw=1, ls=":", label="flat spectrum")
        ax.set_xscale("log")
        ax.set_title(f"{quantity} (dashed: the whole layer)", fontsize=9)
        ax.set_xlabel("units, ranked by their share", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6.5, frameon=False)
    axes[0].set_ylabel("share of variance at the bar period", fontsize=8)
    fig.suptitle(
        f"{title}\nthe bar period: each unit's share of variance one cycle a bar, mean over tunes (95% band)"
        f"\neach tune resampled on its bar position ({PER_BAR} samples a bar)",
        fontsize=9,
    )
    _save(fig, path)


def _quantity_panels(table: pd.DataFrame, width: float, height: float):
    """The table's layers and quantities, and a row of panels sharing a y axis, one a quantity."""
    layers, quantities = sorted(table["layer"].unique()), list(dict.fromkeys(table["quantity"]))
    size = (width * len(quantities) + 0.6, height)
    fig, axes = plt.subplots(
        1, len(quantities), figsize=size, squeeze=False, sharey=True, layout="constrained"
    )
    return layers, quantities, fig, axes[0]


def _nothing(path, title: str, what: str) -> None:
    """A figure that says why it has nothing to show."""
    fig = plt.figure(figsize=(6, 1.5))
    fig.text(0.5, 0.5, f"{title}\n{what}", ha="center", va="center", fontsize=9)
    _save(fig, path)


def decoding(table: pd.DataFrame, path, title: str) -> None:
    """Columns: quantities. Top: each probe's selectivity (accuracy minus control
    accuracy) per feature, one bar per layer; bottom: its held-out accuracy (filled),
    its control task's (hollow) and the majority class's (black dash)."""
    if table.empty:
        _nothing(
            path, title, "no linear probes (decoding: {enabled: false}, or under two tunes: see its log)"
        )
        return
    layers, quantities = sorted(table["layer"].unique()), list(dict.fromkeys(table["quantity"]))
    features = list(dict.fromkeys(table["feature"]))
    width = 0.8 / len(layers)
    size = (max(4.0, 0.55 * len(features) * len(layers) ** 0.5 + 1.2) * len(quantities), 6.0)
    fig, axes = plt.subplots(
        2, len(quantities), figsize=size, squeeze=False, sharey="row", layout="constrained"
    )
    for c, quantity in enumerate(quantities):
        top, bottom = axes[0, c], axes[1, c]
        for k, layer in enumerate(layers):
            rows = table[(table["layer"] == layer) & (table["quantity"] == quantity)].set_index("feature")
            rows = rows.reindex(features)
            x = np.arange(len(features)) - 0.4 + width * (k + 0.5)
            colour = layer_colour(k)
            top.bar(x, rows["selectivity"], width * 0.9, color=colour, label=f"layer {layer}")
            bottom.plot(x, rows["accuracy"], "o", color=colour, ms=5)
            bottom.plot(x, rows["control_accuracy"], "o", mfc="none", mec=colour, ms=5)
            bottom.plot(x, rows["majority_accuracy"], "_", color="k", ms=8)
        top.axhline(0, color="0.5", lw=0.6)
        top.set_title(quantity, fontsize=9)
        for ax in (top, bottom):
            ax.set_xticks(range(len(features)), features, rotation=30, ha="right", fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
        bottom.set_ylim(0, 1.02)
    axes[0, 0].set_ylabel("selectivity\n(accuracy − control)", fontsize=8)
    axes[1, 0].set_ylabel("held-out accuracy", fontsize=8)
    axes[0, -1].legend(fontsize=7, frameon=False)
    axes[1, -1].plot([], [], "o", color="0.3", label="probe")
    axes[1, -1].plot([], [], "o", mfc="none", mec="0.3", label="control task")
    axes[1, -1].plot([], [], "_", color="k", ms=8, label="majority class")
    axes[1, -1].legend(fontsize=7, frameon=False)
    tunes = table.iloc[0]
    fig.suptitle(
        f"{title}\nlinear probes of every layer's states, trained on {tunes['n_train_tunes']} tunes and "
        f"tested on {tunes['n_test_tunes']} others; control: a random label per input token type",
        fontsize=9,
    )
    _save(fig, path)


def bar_clock(clock: pd.DataFrame, path, title: str) -> None:
    """Columns: quantities; per layer, the held-out R^2 of the bar phase (cos, sin)
    decoded from its k most phase-selective units against k: a curve that starts high
    means single units carry the clock, one that climbs to the layer's a population."""
    if clock.empty:
        _nothing(path, title, "no bar clock (decoding: {enabled: false}, or under two tunes: see its log)")
        return
    layers, quantities, fig, axes = _quantity_panels(clock, 3.8, 3.4)
    for ax, quantity in zip(axes, quantities):
        for k, layer in enumerate(layers):
            rows = clock[(clock["layer"] == layer) & (clock["quantity"] == quantity)]
            best = rows.iloc[0]["top_units"].split()[0] if len(rows) else "?"
            ax.plot(rows["k"], rows["r2_test"], "o-", color=layer_colour(k), ms=3.5, lw=1.2,
                    label=f"layer {layer} (best unit {best})")  # fmt: skip
        ax.set_xscale("log", base=2)
        ks = sorted(clock["k"].unique())
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_title(quantity, fontsize=9)
        ax.set_xlabel("units decoded from (the most phase-selective first)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False)
    axes[0].set_ylabel("held-out R² of the bar phase", fontsize=8)
    fig.suptitle(f"{title}\nthe bar clock: single units or a population?", fontsize=9)
    _save(fig, path)


def comparison(first: pd.DataFrame, second: pd.DataFrame, labels, settings, path) -> None:
    """Against X^T X, per quantity (columns) and statistic x shift (rows): each
    layer's distribution in the first analysis next to the second's."""
    rows = [(s, k) for s in settings.statistics for k in settings.shifts]
    quantities, layers = list(settings.quantities), list(settings.layers)
    frames = []
    for frame in (first, second):
        onehot = frame[frame["family"] == "onehot"]
        frames.append(pd.concat([onehot, _parsed(onehot["a"])], axis=1))
    fig, axes = plt.subplots(
        len(rows), len(quantities), figsize=(2.3 * len(quantities) + 1, 2.4 * len(rows) + 0.8), squeeze=False
    )
    colours = PAIR_COLOURS
    for r, (statistic, shift) in enumerate(rows):
        for c, quantity in enumerate(quantities):
            ax = axes[r, c]
            for k, (frame, colour) in enumerate(zip(frames, colours)):
                data = frame[(frame["shift"] == shift) & (frame["quantity"] == quantity)]
                values = [data.loc[data["layer"] == layer, statistic].dropna().to_numpy() for layer in layers]
                positions = np.arange(len(layers)) * 3 + k
                boxes = ax.boxplot(
                    values, positions=positions, widths=0.8, showfliers=False, patch_artist=True
                )
                for patch in boxes["boxes"]:
                    patch.set_facecolor(colour)
                    patch.set_alpha(0.6)
            ax.set_xticks(np.arange(len(layers)) * 3 + 0.5, [f"L{layer}" for layer in layers])
            if r == 0:
                ax.set_title(quantity)
            if c == 0:
                ax.set_ylabel(f"{STATISTIC_LABELS[statistic]}\nshift {shift}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour, alpha=0.6) for colour in colours]
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(f"{labels[0]} against {labels[1]}: resemblance to X^T X across tunes", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
