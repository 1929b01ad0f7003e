"""The resemblance stage of one transcription (the rule ``resemblance``): its
resemblance table (``resemblance.Settings.table``), the gate saturation of every
unit (``saturation.saturation_table``), both as Parquet, and their figures.

``resemblance.parquet`` is the table of ``resemblance.resemblance_table`` with the
transcription's name and the parts of the two matrix names: ``a_layer`` and
``a_quantity`` of ``a`` (``L2.h.abs`` -> 2, h), ``b_layer`` and ``b_quantity`` of
``b`` (null where the matrix is ``onehot`` or ``influence``). Its Parquet metadata holds the settings
(key ``folkrnn_lens.resemblance``) and the provenance of the activations (key
``folkrnn_lens``, as ``tables.read_provenance`` reads it).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from folkrnn_lens.activations.tables import METADATA_KEY, load_activations, load_steps, read_provenance
from folkrnn_lens.logs import Progress
from folkrnn_lens.matrices.compute import load_influence
from folkrnn_lens.names import GATES, INFLUENCE, gramian_layer_quantity
from folkrnn_lens.parquet import write_parquet
from folkrnn_lens.resemblance.comparisons import matrices_per_chunk
from folkrnn_lens.resemblance.saturation import saturation_table
from folkrnn_lens.resemblance.settings import LazyGramians, Settings

log = logging.getLogger(__name__)

SETTINGS_KEY = b"folkrnn_lens.resemblance"


def layers_and_quantities(names: pd.Series) -> pd.DataFrame:
    """``layer`` (nullable int) and ``quantity`` of each Gramian name (``L2.h.abs``),
    missing for ``onehot``; each distinct name parsed once."""
    parsed = {name: gramian_layer_quantity(name) for name in names.unique()}
    return pd.DataFrame(
        {
            "layer": pd.array([parsed[name][0] for name in names], dtype="Int64"),
            "quantity": pd.array([parsed[name][1] for name in names], dtype=object),
        },
        index=names.index,
    )


def with_layers_and_quantities(table: pd.DataFrame, transcription: str) -> pd.DataFrame:
    """The table with ``transcription`` first and the layer and quantity of ``a`` and ``b``."""
    a = [gramian_layer_quantity(name) for name in table["a"]]
    b = [gramian_layer_quantity(name) for name in table["b"]]
    columns = pd.DataFrame(
        {
            "a_layer": pd.array([layer for layer, _ in a], dtype="Int8"),
            "a_quantity": pd.array([quantity for _, quantity in a], dtype=object),
            "b_layer": pd.array([layer for layer, _ in b], dtype="Int8"),
            "b_quantity": pd.array([quantity for _, quantity in b], dtype=object),
        },
        index=table.index,
    )
    front = table[["family", "a", "b"]]
    rest = table.drop(columns=["family", "a", "b"])
    out = pd.concat([front, columns, rest], axis=1)
    out.insert(0, "transcription", transcription)
    return out


def saturation_gates(settings: Settings, recorded_quantities: list[str]) -> list[tuple[int, str]]:
    """(layer, gate) of each recorded sigmoid gate of the compared layers."""
    return [(layer, gate) for layer in settings.layers for gate in GATES if gate in recorded_quantities]


def read_settings(path: str | Path) -> dict:
    """The settings a resemblance.parquet or saturation.parquet was made with."""
    return json.loads((pq.read_schema(path).metadata or {})[SETTINGS_KEY])


def measure_resemblance(
    name: str,
    steps_path: str | Path,
    activations_path: str | Path,
    table_path: str | Path,
    saturation_path: str | Path,
    figure_path: str | Path | None,
    saturation_figure_path: str | Path | None,
    settings: Settings,
    recorded_quantities: list[str],
    dpi: int,
    window: tuple[int, int] | None = None,
    influence_path: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables of one transcription, and their figures (where paths are given); of
    the steps start..stop-1 only, where a ``window`` is given. With ``influence_path``
    (the tune's ``influence.npz``, of the same window), the table compares I too."""
    from folkrnn_lens.resemblance.figures import draw_resemblance, draw_saturation

    started = time.perf_counter()
    low, high = settings.saturation.low, settings.saturation.high
    tokens, bars, _ = load_steps(steps_path, False, window)
    compared = {(layer, q) for layer in settings.layers for q in settings.quantities}
    gates = saturation_gates(settings, recorded_quantities)
    loaded = load_activations(activations_path, compared | set(gates), window)

    keep = matrices_per_chunk(len(tokens))
    given = {INFLUENCE: load_influence(influence_path, len(tokens))} if influence_path else {}
    matrices = LazyGramians(lambda layer, q: loaded[layer, q], tokens, settings, keep, given=given)

    with_influence = bool(given)
    total = len(settings.comparisons(with_influence)) * len(settings.statistics)
    progress = Progress(log, f"{name}: comparisons (statistic x comparison) of {len(tokens)} steps", total)
    table = settings.table(matrices, bars, progress=progress.advance, influence=with_influence)
    table = with_layers_and_quantities(table, name)
    saturation = saturation_table({pair: loaded[pair] for pair in gates}, low, high)
    saturation.insert(0, "transcription", name)
    computed = time.perf_counter() - started

    recorded = {"transcription": name, **asdict(settings), "influence": with_influence}
    if window is not None:
        recorded["window"] = list(window)
    metadata = {SETTINGS_KEY: json.dumps(recorded).encode()}
    try:
        metadata[METADATA_KEY] = json.dumps(read_provenance(activations_path)).encode()
    except ValueError:
        log.warning("%s: no provenance to copy", activations_path)
    write_parquet(table, table_path, metadata)
    write_parquet(saturation, saturation_path, metadata)
    if figure_path is not None:
        draw_resemblance(table, settings, name, len(tokens), figure_path, dpi=dpi)
    if saturation_figure_path is not None:
        draw_saturation(saturation, list(settings.layers), name, low, high, saturation_figure_path, dpi=dpi)
    log.info(
        "%s: %d comparisons and %d units' saturation in %.2f s, figures in %.2f s",
        name,
        len(table),
        len(saturation),
        computed,
        time.perf_counter() - started - computed,
    )
    return table, saturation
