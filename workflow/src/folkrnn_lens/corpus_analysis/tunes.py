"""Which tunes a corpus analysis reads or generates, and the batches the model runs
them in (planned over all the tunes, so a tune's arithmetic is the same however many
jobs run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from folkrnn_lens.names import QUANTITIES
from folkrnn_lens.tokens.format import read_token_file

STEP_BYTES = 3 * len(QUANTITIES) * 512 * 4
"""Bytes of activations one step of folk-rnn v2 holds in capture (about 43 kB)."""


@dataclass(frozen=True)
class TuneSpec:
    """One tune of a corpus analysis: read (its tokens) or generated (its seed)."""

    tune_id: int  # place in the analysis, from 0
    origin: str  # "real" or "generated"
    title: str = ""
    source: str = ""
    tokens: tuple[str, ...] = ()  # real tunes: meter, mode, body
    seed: int | None = None  # generated tunes


def select_tunes(spec: dict, corpus_table: str | Path | None = None, corpus_tokens=None) -> list[TuneSpec]:
    """The tunes config's ``tunes`` entry names, in a fixed order.

    ``{corpus, sample, seed}``: the tokenised tunes of a built corpus (all, or a
    seeded sample kept in corpus order); ``{generate: {count, seed, ...}}``:
    ``count`` tunes from seeds seed, seed + 1, ...
    """
    if "generate" in spec:
        generation = spec["generate"]
        first = generation["seed"]
        return [
            TuneSpec(k, "generated", title=f"seed {first + k}", seed=first + k)
            for k in range(generation["count"])
        ]
    table = pd.read_parquet(corpus_table, columns=["id", "source", "title", "status", "position"])
    table = table[table["status"] == "ok"].sort_values("position")
    transcriptions = read_token_file(corpus_tokens)
    if len(transcriptions) != len(table):
        raise ValueError(
            f"{corpus_table} lists {len(table)} tokenised tunes, "
            f"but {corpus_tokens} holds {len(transcriptions)}"
        )
    chosen = np.arange(len(table))
    if spec.get("sample") is not None and spec["sample"] < len(table):
        rng = np.random.default_rng(spec.get("seed", 0))
        chosen = np.sort(rng.choice(len(table), size=spec["sample"], replace=False))
    rows = table.iloc[chosen]
    return [
        TuneSpec(
            k, "real", title=row.title, source=f"{row.source} (corpus id {row.id})", tokens=tuple(t.tokens)
        )
        for k, (row, t) in enumerate(zip(rows.itertuples(), (transcriptions[i] for i in chosen)))
    ]


def read_batches(tunes: list[TuneSpec], batch_steps: int) -> list[list[TuneSpec]]:
    """Batches of similar length (little padding) of at most ``batch_steps`` padded steps."""
    batches, batch = [], []
    for tune in sorted(tunes, key=lambda t: (len(t.tokens), t.tune_id)):
        steps = len(tune.tokens) + 1
        if batch and steps * (len(batch) + 1) > batch_steps:
            batches.append(batch)
            batch = []
        batch.append(tune)
    return batches + ([batch] if batch else [])


def plan_batches(
    tunes: list[TuneSpec], batch_steps: int, max_length: int | None = None
) -> list[list[TuneSpec]]:
    """The batches the model runs, planned over all the tunes of an analysis, so a
    tune's arithmetic is the same however many jobs run. Part k of J takes batches
    k, k + J, ...: batches go from short tunes to long, so every part gets both.
    Tunes generated up to ``max_length`` steps go as many to a batch as fit the
    ``batch_steps`` budget at that length."""
    if max_length is not None:
        per_batch = max(1, batch_steps // max_length)
        return [tunes[start : start + per_batch] for start in range(0, len(tunes), per_batch)]
    return read_batches(tunes, batch_steps)
