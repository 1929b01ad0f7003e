"""The one writer of the project's Parquet tables: a DataFrame or Arrow table, with
its metadata (settings, provenance) in the file's schema, parent folders made."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(
    data: pd.DataFrame | pa.Table,
    path: str | Path,
    metadata: dict[bytes, bytes] | None = None,
    schema: pa.Schema | None = None,
) -> None:
    """Write ``data`` to ``path``; ``metadata`` joins (and overrides) the schema's own."""
    table = data
    if not isinstance(data, pa.Table):
        table = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
