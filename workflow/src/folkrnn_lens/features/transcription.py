"""The features stage of one transcription (rule compute_features): ``features.parquet``
beside its ``steps.parquet``, one row per step, with the steps table's provenance."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from folkrnn_lens.features.steps import step_features
from folkrnn_lens.parquet import write_parquet

log = logging.getLogger(__name__)

METADATA_KEY = b"folkrnn_lens.features"


def compute_features(name: str, steps_path: str | Path, out_path: str | Path) -> pd.DataFrame:
    """The features of every step the steps table reads (its input tokens), written with
    the transcription's name and the steps table's provenance."""
    tokens = pd.read_parquet(steps_path, columns=["input_token"])["input_token"].tolist()
    try:
        table = step_features(tokens)
    except ValueError as error:
        raise ValueError(f"transcription {name!r} ({steps_path}): {error}") from error
    facts = {"transcription": name, "steps": str(steps_path)}
    provenance = (pq.read_schema(steps_path).metadata or {}).get(b"folkrnn_lens")
    if provenance is not None:
        facts["provenance"] = json.loads(provenance)
    write_parquet(table, out_path, {METADATA_KEY: json.dumps(facts).encode()})
    log.info("%s: features of %d steps: %s", name, len(table), out_path)
    return table
