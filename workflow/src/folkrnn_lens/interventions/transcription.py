"""The interventions of one transcription, as its rules run them: token influence
(rule measure_influence) and direct logit attribution (rule attribute_logits). Both
read the steps table's input tokens again with the model (teacher forcing; for a
generated tune this gives what generating it recorded, bit for bit), so they need
neither the recorded quantities nor the analysis.

Tables carry the provenance under the metadata key ``folkrnn_lens.interventions``:
the transcription, the model file and its SHA-256, and the settings used.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from folkrnn_lens.interventions.influence import Ablation, Influence, token_influence
from folkrnn_lens.matrices.compute import save_npz
from folkrnn_lens.parquet import write_parquet
from folkrnn_lens.tokens.format import bar_indices, read_token_file

log = logging.getLogger(__name__)

METADATA_KEY = b"folkrnn_lens.interventions"


def read_steps(steps_path: str | Path) -> tuple[list[str], list[str]]:
    """A steps table's input and output tokens: what each step read and what came next."""
    steps = pd.read_parquet(steps_path, columns=["input_token", "output_token"])
    return steps["input_token"].tolist(), steps["output_token"].tolist()


def _metadata(name: str, model_path, settings: dict) -> dict[bytes, bytes]:
    from folkrnn_lens.model.checkpoint import file_sha256

    facts = {"transcription": name, "model_file": str(model_path), "model_sha256": file_sha256(model_path)}
    return {METADATA_KEY: json.dumps({**facts, **settings}).encode()}


def ablation_of(settings: dict, tokens: list[str], corpus_path: str | Path | None) -> Ablation:
    """config's ``interventions.influence`` as an Ablation; ``mean`` over the corpus's
    tunes where it names one, else over the tune's own tokens."""
    kind = settings["ablation"]
    if kind == "mean":
        source = [t for tune in read_token_file(corpus_path) for t in tune.tokens] if corpus_path else tokens
        return Ablation("mean", tokens=tuple(source))
    return Ablation(kind, token=settings.get("token"))


def influence_table(influence: Influence) -> pd.DataFrame:
    """One row per (s, t) with t >= s: the influence and each layer's ||delta h||, ||delta c||."""
    n, first = len(influence.input_tokens), influence.start
    s, t = np.triu_indices(n)
    bars = np.asarray(bar_indices(influence.input_tokens))
    columns = {
        "s": (first + s).astype(np.int32),
        "t": (first + t).astype(np.int32),
        "ablated_token": np.asarray(influence.input_tokens)[s],
        "next_token": np.asarray(influence.output_tokens)[t],
        "bar_s": bars[s].astype(np.int32),
        "bar_t": bars[t].astype(np.int32),
        "influence": influence.influence[s, t],
    }
    for layer, (dh, dc) in enumerate(zip(influence.delta_h, influence.delta_c), start=1):
        columns[f"delta_h_{layer}"] = dh[s, t]
        columns[f"delta_c_{layer}"] = dc[s, t]
    return pd.DataFrame(columns)


def measure_influence(
    name: str,
    model_path: str | Path,
    steps_path: str | Path,
    out_npz: str | Path,
    out_table: str | Path,
    out_figure: str | Path,
    settings: dict,
    colours: dict,
    dpi: int,
    corpus_path: str | Path | None = None,
    window: tuple[int, int] | None = None,
    device: str = "cpu",
    threads: int = 1,
) -> Influence:
    """The rule measure_influence: ``influence.npz`` (``influence`` n x n, ``delta_h`` and
    ``delta_c`` L x n x n, ``log_prob``), ``influence.parquet`` and the figure."""
    from folkrnn_lens.interventions.figures import draw_influence
    from folkrnn_lens.model.checkpoint import load_model_on

    inputs, targets = read_steps(steps_path)
    ablation = ablation_of(settings, inputs[1:], corpus_path)
    model = load_model_on(model_path, device, threads)
    try:
        influence = token_influence(model, inputs, targets, ablation, window)
    except ValueError as error:
        raise ValueError(f"transcription {name!r} ({steps_path}): {error}") from error
    Path(out_npz).parent.mkdir(parents=True, exist_ok=True)
    arrays = ("influence", "delta_h", "delta_c", "log_prob")
    save_npz(out_npz, {key: getattr(influence, key) for key in arrays})
    recorded = {"ablation": ablation.kind, "token": ablation.token, "corpus": settings.get("corpus")}
    write_parquet(influence_table(influence), out_table, _metadata(name, model_path, {"influence": recorded}))
    draw_influence(influence, ablation.describe(), out_figure, colours, dpi)
    log.info("%s: influence of %d steps: %s", name, len(influence.input_tokens), out_table)
    return influence


def attribute_logits(
    name: str,
    model_path: str | Path,
    steps_path: str | Path,
    out_units: str | Path,
    out_summary: str | Path,
    out_figure: str | Path,
    top_units: int,
    colours: dict,
    dpi: int,
    device: str = "cpu",
    threads: int = 1,
):
    """The rule attribute_logits: ``attribution.parquet`` (per step, the top units for
    the token that came next and for the likeliest), ``attribution_summary.parquet`` (per
    unit and type of the token that came next) and the figure."""
    from folkrnn_lens.interventions.attribution import logit_attribution
    from folkrnn_lens.interventions.figures import draw_attribution
    from folkrnn_lens.interventions.influence import top_states
    from folkrnn_lens.model.checkpoint import load_model_on

    inputs, targets = read_steps(steps_path)
    model = load_model_on(model_path, device, threads)
    try:
        attribution = logit_attribution(model, top_states(model, inputs), targets, top_units)
    except ValueError as error:
        raise ValueError(f"transcription {name!r} ({steps_path}): {error}") from error
    metadata = _metadata(name, model_path, {"attribution": {"top_units": top_units}})
    write_parquet(attribution.units, out_units, metadata)
    write_parquet(attribution.summary, out_summary, metadata)
    draw_attribution(attribution, inputs, out_figure, colours, dpi)
    log.info("%s: direct logit attribution of %d steps: %s", name, len(inputs), out_units)
    return attribution


def patch_transcriptions(
    label: str,
    model_path: str | Path,
    clean_steps: str | Path,
    corrupted_steps: str | Path,
    out_table: str | Path,
    out_summary: str | Path,
    out_figure: str | Path,
    states: list[str],
    colours: dict,
    dpi: int,
    names: tuple[str, str],
    device: str = "cpu",
    threads: int = 1,
):
    """The rules patch_probe and patch_pair: the corrupted tune (a probe, or a pair's
    ``corrupted``) read with the clean one's states patched in at every layer and step;
    ``patching.parquet`` (one row per patch and later step), ``patching_summary.parquet``
    (one row per patch) and the figure. ``label`` names the job in messages and the
    figure (``probe x``, ``pair y``), ``names`` the clean and corrupted tunes."""
    from folkrnn_lens.interventions.figures import draw_patching
    from folkrnn_lens.interventions.patching import activation_patching, patching_tables
    from folkrnn_lens.model.checkpoint import load_model_on

    clean, targets = read_steps(clean_steps)
    corrupted, _ = read_steps(corrupted_steps)
    if len(clean) != len(corrupted):  # before the model loads
        raise ValueError(
            f"{label}: the clean {names[0]!r} ({clean_steps}) has {len(clean)} steps and the corrupted "
            f"{names[1]!r} ({corrupted_steps}) {len(corrupted)}; patching needs two of the same length"
        )
    model = load_model_on(model_path, device, threads)
    try:
        result = activation_patching(model, clean, corrupted, targets, tuple(states))
    except ValueError as error:
        raise ValueError(f"{label} ({corrupted_steps}): {error}") from error
    long, summary = patching_tables(result, targets)
    settings = {"states": list(states), "clean": names[0], "corrupted": names[1], "job": label}
    metadata = _metadata(names[1], model_path, {"patching": settings})
    write_parquet(long, out_table, metadata)
    write_parquet(summary, out_summary, metadata)
    changed = [t for t, (a, b) in enumerate(zip(clean, corrupted)) if a != b]
    draw_patching(summary, corrupted, changed, label, names, out_figure, colours, dpi)
    log.info("%s: patching of %d steps: %s", label, len(clean), out_table)
    return result


def corpus_means(path: str | Path, layer: int, quantity: str) -> np.ndarray:
    """Each unit's mean of one layer's quantity over a corpus analysis's steps, from its
    ``unit_means.parquet``, in unit order."""
    means = pd.read_parquet(path)
    chosen = means[(means["layer"] == layer) & (means["quantity"] == quantity)].sort_values("unit")
    if chosen.empty:
        raise ValueError(f"{path}: no unit means of layer {layer}'s {quantity}")
    return chosen["mean"].to_numpy()


def ablate_transcription(
    name: str,
    model_path: str | Path,
    steps_path: str | Path,
    out_table: str | Path,
    out_summary: str | Path,
    out_figure: str | Path,
    settings: dict,
    colours: dict,
    dpi: int,
    means_path: str | Path | None = None,
    device: str = "cpu",
    threads: int = 1,
):
    """The rule ablate_units: config's ``interventions.ablation`` on one transcription:
    for each of its ``layers``, every unit of ``quantity`` alone (``units`` null) or
    ``units`` together; ``ablation.parquet`` (per ablation and step),
    ``ablation_summary.parquet`` (per ablation) and the figure. With ``means_path`` (a
    corpus analysis's ``unit_means.parquet``), ``value: mean`` holds units at their
    means over that corpus rather than over the tune."""
    from folkrnn_lens.interventions.ablation import ablate_units, ablation_tables, sweep_rows
    from folkrnn_lens.interventions.figures import draw_ablation
    from folkrnn_lens.model.checkpoint import load_model_on

    inputs, targets = read_steps(steps_path)
    model = load_model_on(model_path, device, threads)
    units = settings["units"]
    rows = sweep_rows(model.config.n_units) if units is None else [list(units)]
    results, longs, summaries = [], [], []
    for layer in settings["layers"] or [model.config.n_layers]:
        try:
            quantity, start, value = settings["quantity"], settings["start"], settings["value"]
            mean = corpus_means(means_path, layer, quantity) if means_path else None
            result = ablate_units(model, inputs, targets, layer, quantity, rows, start, value, mean=mean)
        except ValueError as error:
            raise ValueError(f"transcription {name!r}: interventions -> ablation: {error}") from error
        long, summary = ablation_tables(result, targets)
        results.append(result)
        longs.append(long)
        summaries.append(summary)
    recorded = {**settings, "means": None if means_path is None else str(means_path)}
    metadata = _metadata(name, model_path, {"ablation": recorded})
    write_parquet(pd.concat(longs, ignore_index=True), out_table, metadata)
    write_parquet(pd.concat(summaries, ignore_index=True), out_summary, metadata)
    draw_ablation(results, summaries, inputs, out_figure, colours, dpi)
    log.info("%s: ablation of %d rows in %d layers: %s", name, len(rows), len(results), out_table)
    return results
