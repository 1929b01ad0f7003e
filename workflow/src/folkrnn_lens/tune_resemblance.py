"""The resemblance stage of one transcription (the rule ``resemblance``): its
resemblance table (``resemblance.Settings.table``), the gate saturation of every
unit (``saturation.saturation_table``), both as Parquet, and their figures.

``resemblance.parquet`` is the table of ``resemblance.resemblance_table`` with the
transcription's name and the parts of the two matrix names: ``a_layer`` and
``a_quantity`` of ``a`` (``L2.h.abs`` -> 2, h), ``b_layer`` and ``b_quantity`` of
``b`` (both null where ``b`` is ``onehot``). Its Parquet metadata holds the settings
(key ``folkrnn_lens.resemblance``) and the provenance of the activations (key
``folkrnn_lens``, as ``tables.read_provenance`` reads it).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .logs import Progress
from .matrices import read_activations, read_steps
from .resemblance import LazyGramians, Settings, matrices_per_chunk
from .saturation import GATES, saturation_table
from .tables import METADATA_KEY, read_provenance

log = logging.getLogger(__name__)

SETTINGS_KEY = b"folkrnn_lens.resemblance"
DEFAULT_SATURATION = {"low": 0.1, "high": 0.9}
_GRAMIAN = re.compile(r"^L(\d+)\.([a-z_]+)\.(abs|signed)$")


def parse_gramian_name(name: str) -> tuple[int | None, str | None]:
    """(layer, quantity) of a Gramian's name (``L2.h.abs`` -> (2, 'h')); (None, None)
    for ``onehot``."""
    if name == "onehot":
        return None, None
    match = _GRAMIAN.match(name)
    if match is None:
        raise ValueError(f"not a Gramian's name: {name!r} (expected e.g. 'L2.h.abs' or 'onehot')")
    return int(match.group(1)), match.group(2)


def with_parts(table: pd.DataFrame, transcription: str) -> pd.DataFrame:
    """The table with ``transcription`` first and the layer and quantity of ``a`` and ``b``."""
    a = [parse_gramian_name(name) for name in table["a"]]
    b = [parse_gramian_name(name) for name in table["b"]]
    parts = pd.DataFrame(
        {
            "a_layer": np.array([layer for layer, _ in a], np.int8),
            "a_quantity": pd.array([quantity for _, quantity in a], dtype=object),
            "b_layer": pd.array([layer for layer, _ in b], dtype="Int8"),
            "b_quantity": pd.array([quantity for _, quantity in b], dtype=object),
        },
        index=table.index,
    )
    front = table[["family", "a", "b"]]
    rest = table.drop(columns=["family", "a", "b"])
    out = pd.concat([front, parts, rest], axis=1)
    out.insert(0, "transcription", transcription)
    return out


def saturation_thresholds(section: dict) -> tuple[float, float]:
    limits = {**DEFAULT_SATURATION, **(section.get("saturation") or {})}
    low, high = float(limits["low"]), float(limits["high"])
    if not low < high:
        raise ValueError(f"resemblance.saturation: low ({low}) must be below high ({high})")
    return low, high


def saturation_gates(settings: Settings, recorded_quantities: list[str]) -> list[tuple[int, str]]:
    """(layer, gate) of each recorded sigmoid gate of the compared layers."""
    return [(layer, gate) for layer in settings.layers for gate in GATES if gate in recorded_quantities]


def write_with_metadata(frame: pd.DataFrame, path: str | Path, metadata: dict[bytes, bytes]) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_settings(path: str | Path) -> dict:
    """The settings a resemblance.parquet or saturation.parquet was made with."""
    return json.loads((pq.read_schema(path).metadata or {})[SETTINGS_KEY])


def analyse_resemblance(
    name: str,
    steps_path: str | Path,
    activations_path: str | Path,
    table_path: str | Path,
    saturation_path: str | Path,
    figure_path: str | Path | None,
    saturation_figure_path: str | Path | None,
    section: dict,
    recorded_layers: list[int],
    recorded_quantities: list[str],
    dpi: int = 100,
    window: tuple[int, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables of one transcription, and their figures (where paths are given); of
    the steps start..stop-1 only, where a ``window`` is given."""
    from .comparison_figures import draw_resemblance, draw_saturation

    started = time.perf_counter()
    settings = Settings.from_config(section, list(recorded_layers), list(recorded_quantities))
    low, high = saturation_thresholds(section)
    tokens, bars, _ = read_steps(steps_path, False, window)
    compared = {(layer, q) for layer in settings.layers for q in settings.quantities}
    gates = saturation_gates(settings, recorded_quantities)
    loaded = read_activations(activations_path, compared | set(gates), window)

    keep = matrices_per_chunk(len(tokens))
    matrices = LazyGramians(lambda layer, q: loaded[layer, q], tokens, settings, keep)

    total = len(settings.comparisons()) * len(settings.statistics)
    progress = Progress(log, f"{name}: comparisons (statistic x comparison) of {len(tokens)} steps", total)
    table = with_parts(settings.table(matrices, bars, progress=progress.advance), name)
    saturation = saturation_table({pair: loaded[pair] for pair in gates}, low, high)
    saturation.insert(0, "transcription", name)
    computed = time.perf_counter() - started

    recorded = {"transcription": name, **asdict(settings), "saturation": {"low": low, "high": high}}
    if window is not None:
        recorded["window"] = list(window)
    metadata = {SETTINGS_KEY: json.dumps(recorded).encode()}
    try:
        metadata[METADATA_KEY] = json.dumps(read_provenance(activations_path)).encode()
    except ValueError:
        log.warning("%s: no provenance to copy", activations_path)
    write_with_metadata(table, table_path, metadata)
    write_with_metadata(saturation, saturation_path, metadata)
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
