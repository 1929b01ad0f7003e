"""Training data: the validation split as folk-rnn drew it, tunes as token indices,
batches of tunes of similar length, and the unigram baseline the losses are set against.

Every tune is read as ``<s>``, its tokens, ``</s>``; batches of tunes of similar length
are padded at the end, the padding masked out of the loss.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from folkrnn_lens.tokens.format import END, START, read_token_file, write_token_file

log = logging.getLogger(__name__)

SPLIT_SCHEMA = pa.schema(
    [
        ("position", pa.int32()),
        ("split", pa.string()),
        ("split_position", pa.int32()),
    ]
)
"""The split table: ``position`` is the tune's 1-based place in the corpus token file
(the ``position`` of tunes.parquet), ``split`` is ``train`` or ``valid`` and
``split_position`` its 1-based place in that split's token file."""


# ---- the split ----------------------------------------------------------------------


def split_corpus(
    tokens_path: str | Path,
    train_path: str | Path,
    valid_path: str | Path,
    split_path: str | Path | None,
    fraction: float,
    seed: int,
) -> pa.Table:
    """Split a token file into training and validation token files, as folk-rnn did:
    the tunes ordered longest first (stable), ``round(fraction * n)`` of them drawn
    without replacement by ``numpy.random.RandomState(seed)``. Both files keep the
    corpus order. Returns (and, unless it is None, writes to ``split_path``) the split
    table. The defaults are the schema's (``validation_fraction``, ``split_seed``)."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    tunes = read_token_file(tokens_path)
    n = len(tunes)
    if n < 2:
        raise ValueError(f"{tokens_path}: {n} tune(s); a split needs at least 2")
    n_valid = min(n - 1, max(1, int(np.rint(fraction * n))))
    by_length = sorted(range(n), key=lambda k: -len(tunes[k].tokens))
    drawn = np.random.RandomState(seed).choice(n, n_valid, replace=False)
    valid = {by_length[k] for k in drawn}
    rows, parts = [], {"train": [], "valid": []}
    for k, tune in enumerate(tunes):
        split = "valid" if k in valid else "train"
        parts[split].append(tune)
        rows.append({"position": k + 1, "split": split, "split_position": len(parts[split])})
    write_token_file(train_path, parts["train"])
    write_token_file(valid_path, parts["valid"])
    table = pa.Table.from_pylist(rows, schema=SPLIT_SCHEMA)
    if split_path is not None:
        Path(split_path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, split_path)
    log.info("%d tunes: %d for training, %d for validation (seed %d)", n, n - n_valid, n_valid, seed)
    return table


# ---- tunes and batches ------------------------------------------------------------


def encode_tunes(token_path: str | Path, token2idx: dict[str, int]) -> list[np.ndarray]:
    """Each tune of a token file as indices of <s>, its tokens, </s>."""
    encoded = []
    for number, tune in enumerate(read_token_file(token_path), start=1):
        try:
            encoded.append(np.array([token2idx[t] for t in [START, *tune.tokens, END]], dtype=np.int64))
        except KeyError as error:
            raise ValueError(f"{token_path}: tune {number}: token {error} is not in the vocabulary") from None
    return encoded


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None) -> list:
    """Batches (arrays of tune indices) of tunes of similar length. With ``rng``, tunes
    of equal length are shuffled and so is the order of the batches (folk-rnn's
    homogeneous-length batches); without, the batches go shortest first."""
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[k] for k in rng.permutation(len(batches))]
    return batches


def make_batch(sequences: list[np.ndarray], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs and targets (B, T) and the mask (B, T) of real targets: row b reads
    ``seq[:-1]`` and predicts ``seq[1:]``, padded with ``pad`` after its end."""
    T = max(len(seq) for seq in sequences) - 1
    inputs = np.full((len(sequences), T), pad, dtype=np.int64)
    targets = np.full((len(sequences), T), pad, dtype=np.int64)
    mask = np.zeros((len(sequences), T), dtype=np.float32)
    for row, seq in enumerate(sequences):
        n = len(seq) - 1
        inputs[row, :n], targets[row, :n], mask[row, :n] = seq[:-1], seq[1:], 1.0
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(mask)


# ---- the unigram baseline ------------------------------------------------------------


def target_tokens(token_path: str | Path) -> list[str]:
    """The tokens a model is trained to predict: each tune's tokens, then </s>."""
    return [token for tune in read_token_file(token_path) for token in (*tune.tokens, END)]


def unigram_baseline(train_path: str | Path, valid_path: str | Path, vocab: list[str]) -> float:
    """Cross-entropy (nats/token) of the validation targets under the training targets'
    unigram distribution with add-one smoothing over the vocabulary:
    p(w) = (count(w) + 1) / (N + V)."""
    index = {token: k for k, token in enumerate(vocab)}
    counts = np.ones(len(vocab))
    for token in target_tokens(train_path):
        counts[index[token]] += 1
    logp = np.log(counts / counts.sum())
    valid = [index[token] for token in target_tokens(valid_path)]
    return float(-logp[valid].mean())
