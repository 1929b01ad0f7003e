"""Corpus mode: the per-tune summaries and resemblance tables of many tunes.

The tunes of a corpus analysis (real tunes of a built corpus, a seeded sample of
them, or tunes generated from seeds) are split into ``jobs`` contiguous parts.
One job runs its part through the model in batches bounded by ``batch_steps``
steps of activations, computes each tune's matrices in memory, and appends rows
to Parquet files batch by batch, so memory stays flat in the number of tunes.
Nothing per step is written: a part leaves

- ``tunes.parquet``: one row per tune (its tokens, steps, bars, status, reason);
- ``resemblance.parquet``: one row per (tune, comparison), as a single tune's
  ``resemblance.Settings.table`` with the tune's identity in front;
- ``summary.parquet``: one row per (tune, matrix): band counts, as the part-9 summary;
- ``saturation.parquet``: one row per (tune, layer, gate): mean fractions of
  steps below and above the thresholds, and of units mostly saturated;
- ``features.parquet``: one row per (tune, step): the step's musical features
  (``features.steps``), the one per-step table, small beside the activations;
- ``decoding_states.parquet``: the states of a seeded sample of each tune's steps in
  the probed layers and quantities, what the linear probes read (``decoding.samples``);
- ``accumulators.npz``: sums that add up across parts: per-unit saturation
  counts and the bar-aligned matrices (``bar_matrices``).

A tune that fails (a token the model does not know) is a row with status
``failed`` and the reason; the other tunes go on.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from folkrnn_lens.corpus_analysis.measures import Accumulators, Readout, TuneResult, analyse_capture
from folkrnn_lens.corpus_analysis.tunes import TuneSpec, plan_batches, select_tunes
from folkrnn_lens.decoding.corpus import Plan as DecodingPlan
from folkrnn_lens.decoding.samples import StateWriter, sample_steps
from folkrnn_lens.features.steps import step_features
from folkrnn_lens.names import gramian_name
from folkrnn_lens.resemblance.comparisons import resemblance_table
from folkrnn_lens.resemblance.settings import Settings
from folkrnn_lens.selectivity.corpus import Plan as SelectivityPlan
from folkrnn_lens.selectivity.corpus import add_tune, new_sums, to_arrays
from folkrnn_lens.tokens.format import END, START

log = logging.getLogger(__name__)

PART_TABLES = ("tunes", "resemblance", "summary", "saturation", "features")
"""The tables each part writes (``<name>.parquet``), and the aggregate concatenates."""

STATES = "decoding_states"
"""The part's sampled states (``<STATES>.parquet``), which the probes read from every part."""

# ---- one part ---------------------------------------------------------------------


class _Streams:
    """One Parquet writer per table, opened at the first rows; rows go out per batch."""

    def __init__(self, paths: dict[str, Path], metadata: dict):
        self.paths, self.metadata, self.writers = paths, metadata, {}

    def write(self, name: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if name not in self.writers:
            schema = table.schema.with_metadata({"folkrnn_lens": json.dumps(self.metadata)})
            self.writers[name] = pq.ParquetWriter(self.paths[name], schema)
        self.writers[name].write_table(table.cast(self.writers[name].schema))

    def close(self, empty_schemas: dict[str, pa.Schema]) -> None:
        for name, path in self.paths.items():
            if name in self.writers:
                self.writers[name].close()
            else:  # no rows at all: an empty table that still loads
                pq.write_table(empty_schemas[name].empty_table(), path)


def _identity(tune: TuneSpec, row_count: int) -> dict:
    return {
        "tune_id": np.full(row_count, tune.tune_id, np.int32),
        "origin": tune.origin,
        "title": tune.title,
    }


def _tune_row(tune: TuneSpec, status: str, reason: str, capture=None, bars=None) -> dict:
    """A tune's row of the tunes table; ``capture`` and its ``bars`` where it was read."""
    tokens = list(capture.input_tokens[1:]) if capture is not None else list(tune.tokens)
    finished = capture is not None and capture.output_tokens[-1] == END
    return {
        "tune_id": tune.tune_id,
        "origin": tune.origin,
        "title": tune.title,
        "source": tune.source,
        "seed": tune.seed,
        "n_steps": len(capture.input_tokens) if capture is not None else None,
        "n_bars": int(bars[-1]) + 1 if capture is not None else None,
        "finished": finished if tune.origin == "generated" else None,
        "status": status,
        "reason": reason,
        "tokens": " ".join(tokens),
    }


TUNES_SCHEMA = pa.schema(
    [
        ("tune_id", pa.int32()),
        ("origin", pa.string()),
        ("title", pa.string()),
        ("source", pa.string()),
        ("seed", pa.int64()),
        ("n_steps", pa.int32()),
        ("n_bars", pa.int32()),
        ("finished", pa.bool_()),  # generated tunes: ended with </s> before max_length
        ("status", pa.string()),
        ("reason", pa.string()),
        ("tokens", pa.string()),
    ]
)


def _captures(model, batches: list[list[TuneSpec]], generation: dict | None):
    """(tune, capture or error message) for every tune, a batch at a time."""
    for batch in batches:
        if generation is not None:
            captures = model.generate(
                [t.seed for t in batch],
                generation["temperature"],
                generation["prime"],
                generation["max_length"],
            )
            yield from zip(batch, captures)
            continue
        try:
            yield from zip(batch, model.read([list(t.tokens) for t in batch]))
        except ValueError:  # an unknown token: find which tunes, keep the others
            for tune in batch:
                try:
                    yield tune, model.read([list(tune.tokens)])[0]
                except ValueError as error:
                    yield tune, f"{tune.title} ({tune.source}): {error}"


def draw_tune(capture, result: TuneResult, settings: Settings, style, path: Path, title: str) -> None:
    """One tune's figure in corpus mode: X^T X beside each layer's hidden-state Gramian
    (or the first compared quantity's), with its tokens and bar lines."""
    from folkrnn_lens.figures.canvas import MatrixCanvas
    from folkrnn_lens.figures.media import write_png
    from folkrnn_lens.figures.style import band_colours

    quantity = "h" if "h" in settings.quantities else settings.quantities[0]
    names = ["onehot", *(gramian_name(layer, quantity, settings.gramian) for layer in settings.layers)]
    canvas = MatrixCanvas(capture.input_tokens, result.bars, style, panels=len(names))
    kind = "magnitude" if settings.gramian == "abs" else "signed"
    pictures = [band_colours(result.matrices[n], "onehot" if n == "onehot" else kind, style) for n in names]
    labels = ["X^T X", *(f"layer {layer}, {quantity}" for layer in settings.layers)]
    canvas.show(pictures, kind, title, f"{len(capture.input_tokens)} steps", panel_titles=labels)
    for saved, pixels in canvas.save(path, ("png",)):
        if pixels is not None:  # PNG pixels come back for the caller to encode
            write_png(saved, pixels, canvas.dpi, style)


def analyse_part(
    model,
    batches: list[list[TuneSpec]],
    generation: dict | None,
    settings: Settings,
    bands: dict,
    thresholds: dict,
    max_bars: int,
    out_dir: str | Path,
    metadata: dict,
    figure_style=None,
    top_units: int = 10,
    selectivity: SelectivityPlan | None = None,
    decoding: DecodingPlan | None = None,
) -> dict:
    """Run one part's batches of tunes through ``model`` and stream its tables into
    ``out_dir``; with a ``figure_style``, also a figure per tune in ``out_dir/figures``;
    ``top_units``: how many units a step's direct logit attribution counts;
    ``selectivity``: the units' selectivity sums to add up (none: no sums);
    ``decoding``: which states to sample for the probes (none: an empty table)."""
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)  # empty without tune figures
    streams = _Streams({name: out_dir / f"{name}.parquet" for name in PART_TABLES}, metadata)
    bar_names = [
        "onehot",
        *[
            gramian_name(layer, "h", settings.gramian)
            for layer in settings.layers
            if "h" in settings.quantities
        ],
    ]
    readout = Readout.of(model, top_units)
    units, layers = model.config.n_units, model.config.n_layers
    accumulators = Accumulators(settings, bar_names, max_bars, units, layers, readout)
    selective = {} if selectivity is None else new_sums(selectivity, units)
    columns = [] if decoding is None else decoding.columns()
    states = StateWriter(out_dir / f"{STATES}.parquet", columns, units, metadata)
    counts = {"ok": 0, "failed": 0}
    spent = {"features": 0.0, "selectivity": 0.0, "probe samples": 0.0}  # what each encoding stage costs
    started = time.perf_counter()
    pending = []
    for tune, capture in _captures(model, batches, generation):
        if isinstance(capture, str):
            log.warning("tune %d skipped: %s", tune.tune_id, capture)
            pending.append({"tunes": pd.DataFrame([_tune_row(tune, "failed", capture)])})
            counts["failed"] += 1
            continue
        result = analyse_capture(capture, settings, bands, thresholds, accumulators, max_bars)
        if figure_style is not None:
            title = f"{metadata.get('analysis', '')} tune {tune.tune_id}: {tune.title}"
            draw_tune(
                capture, result, settings, figure_style, out_dir / "figures" / f"{tune.tune_id}.png", title
            )
        resemblance = result.resemblance
        resemblance.insert(0, "title", tune.title)
        resemblance.insert(0, "origin", tune.origin)
        resemblance.insert(0, "tune_id", np.int32(tune.tune_id))
        with _timed(spent, "features"):
            features = _features(tune, capture)
        if selective and features is not None:
            with _timed(spent, "selectivity"):
                add_tune(selective, selectivity, tune.tune_id, capture, features)
        if decoding is not None and features is not None:
            with _timed(spent, "probe samples"):
                steps = sample_steps(tune.tune_id, len(features), decoding.steps_per_tune, decoding.seed)
                states.add(tune.tune_id, capture, steps)
        pending.append(
            {
                "features": features,
                "tunes": pd.DataFrame([_tune_row(tune, "ok", "", capture, result.bars)]),
                "resemblance": resemblance,
                "summary": pd.DataFrame(result.summary).assign(**_identity(tune, len(result.summary))),
                "saturation": pd.DataFrame(result.saturation).assign(
                    **_identity(tune, len(result.saturation))
                ),
            }
        )
        counts["ok"] += 1
        if len(pending) >= 64:
            _flush(streams, pending)
            log.info("%d tunes analysed in %.1f s", counts["ok"], time.perf_counter() - started)
    _flush(streams, pending)
    streams.close(_empty_schemas(settings))
    states.close()
    accumulators.save(out_dir / "accumulators.npz", to_arrays(selective))
    seconds = time.perf_counter() - started
    log.info("%d tunes analysed, %d failed, in %.1f s", counts["ok"], counts["failed"], seconds)
    log.info("of which %s", ", ".join(f"{name} {spent[name]:.1f} s" for name in spent))
    return counts


@contextmanager
def _timed(spent: dict, name: str):
    """Add the block's seconds to ``spent[name]``."""
    start = time.perf_counter()
    yield
    spent[name] += time.perf_counter() - start


def _features(tune: TuneSpec, capture) -> pd.DataFrame | None:
    """The tune's step features with its identity in front; None, with a warning
    naming the tune, where its tokens cannot be read as music."""
    try:
        features = step_features(list(capture.input_tokens))
    except ValueError as error:
        log.warning("tune %d (%s): no features: %s", tune.tune_id, tune.title, error)
        return None
    for column, value in reversed(list(_identity(tune, len(features)).items())):
        features.insert(0, column, value)
    return features


def _flush(streams: _Streams, pending: list[dict]) -> None:
    for name in PART_TABLES:
        frames = [p[name] for p in pending if p.get(name) is not None]
        if frames:
            frame = pd.concat(frames, ignore_index=True)
            if name == "tunes":
                frame = pa.Table.from_pylist(frame.to_dict("records"), schema=TUNES_SCHEMA).to_pandas()
            streams.write(name, frame)
    pending.clear()


def _empty_schemas(settings: Settings) -> dict[str, pa.Schema]:
    """The tables' schemas, for a part where no tune could be analysed."""
    identity = [("tune_id", pa.int32()), ("origin", pa.string()), ("title", pa.string())]
    no_rows = resemblance_table({}, np.zeros(0, np.int32), [], list(settings.statistics))
    counts = [("n_pairs", pa.int64()), ("n_low", pa.int64()), ("n_high", pa.int64())]
    gates = [("layer", pa.int64()), ("gate", pa.string())]
    fractions = [("mean_frac_below", pa.float64()), ("mean_frac_above", pa.float64())]
    units = [("units_mostly_below", pa.int64()), ("units_mostly_above", pa.int64())]
    features = step_features([START, "M:4/4", "K:Cmaj", "C", "|"]).head(0)
    return {
        "features": pa.schema(identity + list(pa.Schema.from_pandas(features, preserve_index=False))),
        "tunes": TUNES_SCHEMA,
        "resemblance": pa.schema(identity + list(pa.Schema.from_pandas(no_rows, preserve_index=False))),
        "summary": pa.schema([("matrix", pa.string()), ("kind", pa.string())] + counts + identity),
        "saturation": pa.schema(gates + fractions + units + identity),
    }


# ---- what the rules call ------------------------------------------------------------


def corpus_part(
    model_path: str | Path,
    spec: dict,
    part: int,
    settings: Settings,
    style,
    out_dir: str | Path,
    corpus_table: str | Path | None = None,
    corpus_tokens: str | Path | None = None,
    device: str = "cpu",
    threads: int = 1,
    name: str = "",
    top_units: int = 10,
) -> dict:
    """One job of a corpus analysis: its part of the tunes, through the model (and,
    where the analysis asks for ``tune_figures``, a figure per tune). ``style``
    (figures.Style, from config's ``analysis``) gives the bands of the summaries and
    the look of the tune figures."""

    from folkrnn_lens.model.checkpoint import file_sha256, load_model_on

    model = load_model_on(model_path, device, threads)
    generation = spec["tunes"].get("generate")
    tunes = select_tunes(spec["tunes"], corpus_table, corpus_tokens)
    max_length = generation["max_length"] if generation is not None else None
    batches = plan_batches(tunes, spec["batch_steps"], max_length)[part :: spec["jobs"]]
    metadata = {
        "analysis": name,
        "part": part,
        "jobs": spec["jobs"],
        "tunes": spec["tunes"],
        "model_file": str(model_path),
        "model_sha256": file_sha256(model_path),
        "corpus_file": None if corpus_tokens is None else str(corpus_tokens),
        "corpus_sha256": None if corpus_tokens is None else file_sha256(corpus_tokens),
        "settings": asdict(settings),
        "saturation": asdict(settings.saturation),
        "torch_threads": threads,
        "attribution_top_units": top_units,
    }
    count = sum(map(len, batches))
    log.info("%s part %d of %d: %d of %d tunes", name, part + 1, spec["jobs"], count, len(tunes))
    thresholds = asdict(settings.saturation)
    figure_style = style if spec["tune_figures"] else None
    return analyse_part(
        model,
        batches,
        generation,
        settings,
        style.bands,
        thresholds,
        spec["max_bars"],
        out_dir,
        metadata,
        figure_style,
        top_units,
        SelectivityPlan.from_config(spec["selectivity"], model.config.n_layers),
        DecodingPlan.from_config(spec["decoding"], model.config.n_layers),
    )
