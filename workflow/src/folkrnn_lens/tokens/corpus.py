"""Where transcriptions come from: ABC collections, token files, music21's corpus.

A corpus is built from ABC sources (files, folders, or ``music21:<folder>`` for a
collection in music21's corpus, found without importing music21) into one token
file in the data_v2 format plus a table of every tune with its status and, for a
skipped tune, the reason. One bad tune never stops the others.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from folkrnn_lens.tokens.abc import AbcTune, read_abc_file, select_tune
from folkrnn_lens.tokens.format import Transcription, read_token_file, select_transcription, write_token_file

log = logging.getLogger(__name__)

MUSIC21_PREFIX = "music21:"
SOURCES_KEY = b"folkrnn_lens.sources"  # tunes.parquet's metadata: each ABC file's SHA-256

TUNES_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("source", pa.string()),
        ("x", pa.int32()),
        ("title", pa.string()),
        ("meter", pa.string()),
        ("mode", pa.string()),
        ("n_tokens", pa.int32()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("position", pa.int32()),
    ]
)
"""The tunes table: ``position`` is the tune's 1-based place in the token file
(null for a skipped tune); ``n_tokens`` counts meter, mode and body."""


def music21_corpus_dir() -> Path:
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("music21 is not installed; it is needed for 'music21:' sources")
    return Path(list(spec.submodule_search_locations)[0]) / "corpus"


def resolve_source(source: str) -> Path:
    """A path, or ``music21:<folder-or-file>`` inside music21's corpus."""
    if source.startswith(MUSIC21_PREFIX):
        path = music21_corpus_dir() / source[len(MUSIC21_PREFIX) :]
    else:
        path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"ABC source {source!r} does not exist ({path})")
    return path


def abc_files(sources: list[str]) -> list[tuple[str, Path]]:
    """(label, path) of every ABC file of the sources, in a stable order."""
    files = []
    for source in sources:
        root = resolve_source(source)
        found = sorted(root.rglob("*.abc")) if root.is_dir() else [root]
        for path in found:
            relative = path.relative_to(root).as_posix() if root.is_dir() else path.name
            files.append((f"{source.rstrip('/')}/{relative}" if root.is_dir() else source, path))
    return files


def _tune_row(tune: AbcTune, tune_id: int, position: int | None) -> dict:
    ok = tune.status == "ok"
    return {
        "id": tune_id,
        "source": tune.source,
        "x": tune.x,
        "title": tune.title,
        "meter": tune.meter,
        "mode": tune.mode,
        "n_tokens": 2 + len(tune.body) if ok else None,
        "status": tune.status,
        "reason": tune.reason,
        "position": position,
    }


def build_corpus(sources: list[str], tokens_path: str | Path, table_path: str | Path) -> pa.Table:
    """Tokenise every tune of the sources; write the token file and the tunes table."""
    rows, transcriptions = [], []
    files = abc_files(sources)
    for label, path in files:
        try:
            tunes = read_abc_file(path)
        except (OSError, UnicodeDecodeError) as error:  # an unreadable file skips only itself
            log.warning("%s: cannot read: %s", label, error)
            tunes = [AbcTune(label, None, "", None, None, (), "skipped", f"unreadable file: {error}", 1)]
        for tune in tunes:
            tune = replace(tune, source=label)
            position = None
            if tune.status == "ok":
                transcriptions.append(Transcription(tune.meter, tune.mode, tune.body, tune.title))
                position = len(transcriptions)
            rows.append(_tune_row(tune, len(rows), position))
    write_token_file(tokens_path, transcriptions)
    table = pa.Table.from_pylist(rows, schema=TUNES_SCHEMA)
    sources = {label: _sha256(path) for label, path in files}
    table = table.replace_schema_metadata({SOURCES_KEY: json.dumps(sources).encode()})
    Path(table_path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, table_path)
    skipped = sum(row["status"] != "ok" for row in rows)
    log.info("%d tunes, %d tokenised, %d skipped", len(rows), len(rows) - skipped, skipped)
    return table


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_corpus_sources(table_path: str | Path) -> dict[str, str]:
    """The SHA-256 of every ABC file a corpus was built from, by its label."""
    return json.loads((pq.read_schema(table_path).metadata or {})[SOURCES_KEY])


def load_transcription(spec: dict, name: str = "") -> Transcription:
    """The transcription a config entry names: ``abc`` with ``x`` or ``title``, or
    ``tokens`` with the 1-based ``index`` of the tune in a token file."""
    if "abc" in spec:
        path = _transcription_file(spec, "abc", name, "an ABC file")
        tune = select_tune(read_abc_file(path), spec["abc"], x=spec.get("x"), title=spec.get("title"))
        return Transcription(tune.meter, tune.mode, tune.body, tune.title)
    if "tokens" in spec:
        path = _transcription_file(spec, "tokens", name, "a token file")
        return select_transcription(read_token_file(path), spec.get("index", 1), str(path))
    raise ValueError(f"transcription {name!r}: expected 'abc' or 'tokens', got keys {sorted(spec)}")


def _transcription_file(spec: dict, key: str, name: str, expected: str) -> Path:
    path = resolve_source(spec[key])
    if path.is_dir():  # else reading it raises a bare IsADirectoryError
        raise IsADirectoryError(
            f"transcription {name!r}: {key}: {spec[key]!r} is a folder; expected {expected}"
        )
    return path
