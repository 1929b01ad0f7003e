"""A training run's per-epoch table (``epochs.parquet``, or the CSV shipped beside a
model) and the loss curve drawn from it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from folkrnn_lens.palette import HIGHLIGHT, PAIR_COLOURS

EPOCHS_SCHEMA = pa.schema(
    [
        ("epoch", pa.int32()),
        ("train_loss", pa.float64()),
        ("valid_loss", pa.float64()),
        ("learning_rate", pa.float64()),
        ("seconds", pa.float64()),
        ("tokens", pa.int64()),
    ]
)
"""The per-epoch log: losses in nats per target token (training with dropout on, as
trained; validation with dropout off), the epoch's learning rate, its wall time and the
number of training target tokens it read."""


def read_epoch_table(path: str | Path) -> list[dict]:
    """A run's per-epoch table (``epochs.parquet``, or the CSV shipped beside a model)
    as rows of EPOCHS_SCHEMA."""
    from pyarrow import csv

    path = Path(path)
    if path.suffix == ".csv":
        options = csv.ConvertOptions(column_types=EPOCHS_SCHEMA, include_columns=EPOCHS_SCHEMA.names)
        table = csv.read_csv(path, convert_options=options)
    else:
        table = pq.read_table(path, columns=EPOCHS_SCHEMA.names).cast(EPOCHS_SCHEMA)
    return table.to_pylist()


def write_epoch_table(rows: list[dict], path: str | Path) -> pa.Table:
    """Rows of EPOCHS_SCHEMA written as ``epochs.parquet``; returns the table."""
    table = pa.Table.from_pylist(rows, schema=EPOCHS_SCHEMA)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table


def plot_loss_curve(
    table: pa.Table,
    path: str | Path,
    baseline: float,
    best_epoch: int,
    title: str = "",
    continued_after: int | None = None,
) -> None:
    """Training and validation loss per epoch, the best epoch marked, the unigram
    baseline, and where a run continued from a checkpoint, as a PNG."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    data = table.to_pydict()
    epochs = data["epoch"]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    train, valid = PAIR_COLOURS
    axes.plot(epochs, data["train_loss"], marker=".", color=train, label="training (dropout on)")
    axes.plot(epochs, data["valid_loss"], marker=".", color=valid, label="validation")
    axes.axhline(baseline, color="grey", linestyle="--", label=f"unigram baseline ({baseline:.3f})")
    best_loss = data["valid_loss"][epochs.index(best_epoch)]
    axes.plot([best_epoch], [best_loss], marker="*", markersize=14, color=HIGHLIGHT, linestyle="none",
              label=f"best: epoch {best_epoch} ({best_loss:.3f})")  # fmt: skip
    if continued_after is not None:
        axes.axvline(continued_after + 0.5, color="grey", linestyle=":",
                     label=f"continued from the epoch-{continued_after} checkpoint")  # fmt: skip
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("cross-entropy (nats/token)")
    axes.set_title(f"folk-rnn v2 training{': ' + title if title else ''}")
    axes.grid(alpha=0.3)
    axes.legend()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, metadata={"Software": None})
