"""Training folk-rnn v2 on a token corpus: folk-rnn's recipe, seeded and resumable.

The recipe (docs/specification.md, folk-rnn's ``configurations/config5.py`` and ``train_rnn.py``):

- every tune is read as ``<s>``, its tokens, ``</s>``; batches of 64 tunes of similar
  length, padded at the end, the padding masked out of the loss;
- the objective is folk-rnn's: per tune, the summed cross-entropy (nats) of its
  targets, averaged over the tunes of the batch. Tables and figures report the mean
  cross-entropy per target token (nats/token), which does not depend on tune length;
- RMSprop exactly as Lasagne's ``rmsprop`` (rho 0.9, epsilon 1e-6 inside the square
  root), learning rate 0.003, times 0.97 every epoch after epoch 20;
- dropout 0.5 after each LSTM layer (inside ``FolkRNN.forward`` and ``clipped_forward``);
- gradient clipping as Lasagne's ``LSTMLayer(grad_clipping=5)``: at every time step the
  gradient with respect to the gate pre-activations is clamped to [-5, 5]. torch's fused
  LSTM kernel cannot do that, so ``clipped_forward`` runs the layers step by step on the
  model's own parameters; ``grad_clipping=None`` trains through the fused kernel instead.

Everything is seeded: the initial weights by ``seed``, each epoch's batch order and
dropout masks by (``seed``, epoch). That makes a run resumable bit for bit from its state
file (model, optimizer, log, best weights, written atomically after every epoch) without
saving random-number-generator states: a run stopped after epoch k and resumed gives the
same weights as one that never stopped.

Where the state file is gone but the run's checkpoint and epoch table remain (a shipped
model), ``continue_from`` goes on from the checkpoint's last epoch: the weights are the
checkpoint's, checked against its data by re-evaluating its validation loss, and the one
thing a checkpoint lacks, RMSprop's running averages, is rebuilt (``rebuild_rmsprop``).
That is close to the uninterrupted run, not the same bits, and the checkpoint says so.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn as nn

from .model import (
    FolkRNN,
    FolkRNNConfig,
    checkpoint_header,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
    use_device,
)
from .recording import vocabulary_of
from .tokens import END, START, read_token_file, write_token_file

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

STATE_FORMAT = "folkrnn-lens-training/1"

DATA_FACTS = (
    "n_train_tunes",
    "n_valid_tunes",
    "n_train_tokens",
    "n_valid_tokens",
    "train_sha256",
    "valid_sha256",
)
"""The facts of a checkpoint that must match the data a run continues it on (the hashes
where the checkpoint has them: checkpoints before continuation did not record them)."""

VALID_LOSS_TOLERANCE = 1e-4
"""How far (nats/token) a checkpoint's re-evaluated validation loss may lie from the one
recorded: float sums differ a little between machines (seen: 4e-8), another split a lot."""


# ---- the split --------------------------------------------------------------------------


def split_corpus(
    tokens_path: str | Path,
    train_path: str | Path,
    valid_path: str | Path,
    split_path: str | Path | None = None,
    fraction: float = 0.05,
    seed: int = 42,
) -> pa.Table:
    """Split a token file into training and validation token files, as folk-rnn did:
    the tunes ordered longest first (stable), ``round(fraction * n)`` of them drawn
    without replacement by ``numpy.random.RandomState(seed)``. Both files keep the
    corpus order. Returns (and writes to ``split_path``) the split table."""
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


# ---- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingConfig:
    """folk-rnn v2's recipe by default (config5.py)."""

    n_layers: int = 3
    n_units: int = 512
    dropout: float = 0.5
    max_epochs: int = 100
    patience: int | None = 10  # epochs without a better validation loss; None: never stop early
    batch_size: int = 64
    learning_rate: float = 0.003
    lr_decay: float = 0.97
    lr_decay_after: int = 20  # epochs 1..20 at learning_rate, epoch e > 20 at lr * decay**(e - 20)
    rmsprop_rho: float = 0.9
    rmsprop_epsilon: float = 1e-6
    grad_clipping: float | None = 5.0  # per-step clamp of gate-pre-activation gradients; None: fused
    seed: int = 0
    device: str = "cpu"
    threads: int = 2

    RESUMABLE_CHANGES = ("max_epochs", "patience", "device", "threads")
    """Settings a resumed run may change; any other change needs a fresh start."""

    @classmethod
    def from_settings(cls, settings: dict) -> TrainingConfig:
        """From a run of config.yaml's ``training`` mapping (keys of the split and the
        corpus are not training settings and are ignored)."""
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in settings.items() if key in names}
        clipping = settings.get("grad_clipping")
        if isinstance(clipping, dict):
            values["grad_clipping"] = None if clipping.get("mode") == "none" else clipping.get("value", 5.0)
        return cls(**values)

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of (1-based) epoch ``epoch``."""
        return self.learning_rate * self.lr_decay ** max(0, epoch - self.lr_decay_after)


# ---- data -------------------------------------------------------------------------------


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


def masked_nats(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The cross-entropy (nats) of each target, zero where the mask is 0: (B, T)."""
    nll = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return nll.view_as(mask) * mask


def folkrnn_objective(nats: torch.Tensor) -> torch.Tensor:
    """folk-rnn's training loss: each tune's summed nats, averaged over the batch."""
    return nats.sum() / nats.shape[0]


# ---- the step-by-step forward with Lasagne's per-step gradient clipping ------------------------


class _ClipGradient(torch.autograd.Function):
    """The identity going forward; going back, the gradient clamped to [-bound, bound]
    (theano.gradient.grad_clip, as Lasagne's LSTMLayer applies it to the gates)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.bound = bound
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.clamp(-ctx.bound, ctx.bound), None


def clipped_forward(model: FolkRNN, idx: torch.Tensor, clip: float | None) -> torch.Tensor:
    """Logits (B, T, V) for token indices (B, T), computed step by step on the model's
    parameters so that, going back, the gradient with respect to each step's gate
    pre-activations z = a W_x + h W_h + b is clamped to [-clip, clip] (None: no clamp).
    Dropout after each layer in training mode, as ``FolkRNN.forward``."""
    cfg = model.config
    H = cfg.n_units
    B, T = idx.shape
    x = None  # the input of the next layer, time-major (T, B, H)
    for layer in range(cfg.n_layers):
        if layer == 0:  # one-hot input: a W_x is a row lookup
            xw = nn.functional.embedding(idx.T, model.W_x[0]) + model.b[0]  # (T, B, 4H)
        else:
            xw = torch.addmm(model.b[layer], x.reshape(T * B, H), model.W_x[layer]).view(T, B, 4 * H)
        W_h = model.W_h[layer]
        h = model.h0[layer].expand(B, H)
        c = model.c0[layer].expand(B, H)
        hs = []
        for xw_t in xw.unbind(0):  # unbind, not xw[t]: one backward for all steps, not T
            z = torch.addmm(xw_t, h, W_h)  # (B, 4H): gates i, f, g, o
            if clip is not None:
                z = _ClipGradient.apply(z, clip)
            i, f, g_pre, o = z.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g_pre)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
        x = nn.functional.dropout(torch.stack(hs), cfg.dropout, model.training)
    return (x @ model.W_out + model.b_out).transpose(0, 1)  # (B, T, V)


def forward_logits(model: FolkRNN, idx: torch.Tensor, clip: float | None) -> torch.Tensor:
    """The training forward: step by step with per-step clipping, or torch's fused LSTM
    (``FolkRNN.forward``) when ``clip`` is None."""
    return model(idx) if clip is None else clipped_forward(model, idx, clip)


# ---- the optimizer ------------------------------------------------------------------------------


class LasagneRMSprop(torch.optim.Optimizer):
    """RMSprop as Lasagne's ``lasagne.updates.rmsprop``, which trained folk-rnn:
    ``a = rho a + (1 - rho) g**2``, ``p -= lr g / sqrt(a + epsilon)`` (epsilon inside
    the square root, unlike ``torch.optim.RMSprop``)."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, epsilon: float = 1e-6):
        super().__init__(params, {"lr": lr, "rho": rho, "epsilon": epsilon})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, rho, epsilon = group["lr"], group["rho"], group["epsilon"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if "accu" not in state:
                    state["accu"] = torch.zeros_like(param)
                accu = state["accu"]
                accu.mul_(rho).addcmul_(param.grad, param.grad, value=1 - rho)
                param.addcdiv_(param.grad, accu.add(epsilon).sqrt_(), value=-lr)


# ---- the unigram baseline --------------------------------------------------------------------


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


# ---- training -------------------------------------------------------------------------------------


def _epoch_seeds(seed: int, epoch: int) -> tuple[np.random.Generator, int]:
    """The batch-order generator and the dropout seed of an epoch."""
    order, dropout = np.random.SeedSequence([seed, epoch]).spawn(2)
    return np.random.default_rng(order), int(dropout.generate_state(1, np.uint64)[0] >> 1)


@contextmanager
def _reproducible(device: torch.device):
    """Deterministic kernels, and the caller's random-number state left alone."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device.type == "cuda" else []):
            yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _load_state(path: Path, fingerprint: dict, model: FolkRNN, optimizer: torch.optim.Optimizer) -> dict:
    """A state file of this run, loaded into the model and optimizer."""
    state = torch.load(path, map_location=model.W_out.device, weights_only=True)
    if state.get("format") != STATE_FORMAT or state.get("fingerprint") != fingerprint:
        raise ValueError(
            f"{path} comes from other data or settings than this run; delete it to train from scratch"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state


def _atomic_torch_save(obj, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def _atomic_checkpoint(model: FolkRNN, path: Path, extra: dict) -> None:
    temporary = path.with_name(path.stem + ".tmp" + path.suffix)
    save_checkpoint(model, temporary, extra=extra)
    os.replace(temporary, path)


def train_epoch(
    model: FolkRNN,
    optimizer: torch.optim.Optimizer,
    tunes: list[np.ndarray],
    config: TrainingConfig,
    rng: np.random.Generator,
    pad: int,
    progress: bool = False,
    description: str = "",
) -> tuple[float, int]:
    """One pass over the training tunes; returns (nats/token as trained, tokens)."""
    from tqdm import tqdm

    model.train()
    device = model.W_out.device
    batches = length_batches([len(seq) for seq in tunes], config.batch_size, rng)
    total, tokens = 0.0, 0
    bar = tqdm(batches, desc=description, unit="batch", file=sys.stderr, disable=not progress, leave=False)
    for batch in bar:
        inputs, targets, mask = (t.to(device) for t in make_batch([tunes[k] for k in batch], pad))
        nats = masked_nats(forward_logits(model, inputs, config.grad_clipping), targets, mask)
        optimizer.zero_grad(set_to_none=True)
        folkrnn_objective(nats).backward()
        optimizer.step()
        n = int(mask.sum().item())
        total, tokens = total + nats.sum().item(), tokens + n
        bar.set_postfix(loss=f"{total / tokens:.4f}")
    return total / tokens, tokens


@torch.no_grad()
def evaluate(model: FolkRNN, tunes: list[np.ndarray], batch_size: int, pad: int) -> float:
    """Mean cross-entropy (nats per target token) with dropout off."""
    model.eval()
    device = model.W_out.device
    total, tokens = 0.0, 0
    for batch in length_batches([len(seq) for seq in tunes], batch_size):
        inputs, targets, mask = (t.to(device) for t in make_batch([tunes[k] for k in batch], pad))
        total += masked_nats(model(inputs), targets, mask).sum().item()
        tokens += int(mask.sum().item())
    return total / tokens


# ---- continuing from a checkpoint ----------------------------------------------------------------


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


def rebuild_rmsprop(
    model: FolkRNN,
    optimizer: LasagneRMSprop,
    tunes: list[np.ndarray],
    config: TrainingConfig,
    epoch: int,
    pad: int,
    progress: bool = False,
) -> float:
    """RMSprop's running averages of squared gradients, which a checkpoint does not
    keep, rebuilt at the model's weights: epoch ``epoch``'s batches (its order and
    dropout masks) are replayed at learning rate 0, so the weights do not move, and each
    average is divided by 1 - rho**batches, as it started from zero. Over one epoch
    rho**batches is the share of all earlier epochs in the true average (0.9**45 < 1%),
    so the rebuilt one differs from it mainly in taking every gradient at the last
    weights. Returns the replay's training loss (nats/token, dropout on)."""
    optimizer.state.clear()
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    order_rng, dropout_seed = _epoch_seeds(config.seed, epoch)
    torch.manual_seed(dropout_seed)
    loss, _ = train_epoch(model, optimizer, tunes, config, order_rng, pad, progress, "rebuilding RMSprop")
    n_batches = math.ceil(len(tunes) / config.batch_size)
    for group in optimizer.param_groups:
        for param in group["params"]:
            optimizer.state[param]["accu"].div_(1 - group["rho"] ** n_batches)
    return loss


def continued_state(
    checkpoint_path: str | Path,
    epochs_path: str | Path | None,
    model: FolkRNN,
    optimizer: LasagneRMSprop,
    train_tunes: list[np.ndarray],
    valid_tunes: list[np.ndarray],
    config: TrainingConfig,
    facts: dict,
    pad: int,
    progress: bool = False,
) -> dict:
    """The state of a run after the last epoch of a checkpoint it wrote, with the
    model and optimizer set to it: the checkpoint's weights, its epoch table as the
    log, and RMSprop's averages rebuilt (``rebuild_rmsprop``). Refused, naming the
    difference, where the checkpoint comes from other settings, vocabulary or data, or
    holds the weights of an epoch before its last (continuing would rewind the run)."""
    header = checkpoint_header(checkpoint_path)
    extra = header["extra"]
    where = f"continue_from {checkpoint_path}"
    if not extra.get("trained"):
        raise ValueError(f"{where}: not a trained checkpoint (its metadata has no training facts)")
    if header["vocab"] != model.vocab:
        sizes = f"{len(header['vocab'])} tokens there, {len(model.vocab)} here"
        raise ValueError(f"{where}: its vocabulary differs from this run's ({sizes})")
    ours = asdict(config)
    theirs = {k: v for k, v in extra.get("training", {}).items() if k not in TrainingConfig.RESUMABLE_CHANGES}
    changed = [
        f"{key}: {value!r} there, {ours.get(key)!r} here"
        for key, value in theirs.items()
        if ours.get(key) != value
    ]
    if changed:
        raise ValueError(f"{where}: trained with other settings ({', '.join(changed)})")
    for key in DATA_FACTS:
        if key in extra and extra[key] != facts[key]:
            raise ValueError(
                f"{where}: trained on other data ({key}: {extra[key]!r} there, {facts[key]!r} here)"
            )
    last, best_epoch = extra["epochs"], extra["best_epoch"]
    if best_epoch != last:
        raise ValueError(
            f"{where}: it holds epoch {best_epoch}'s weights (the best) but its run went on to epoch {last}; "
            "continuing would rewind the run (only the run's state.pt can resume it)"
        )
    if epochs_path is None:
        raise ValueError(f"{where}: continuing needs the run's epoch table (continue_from: epochs)")
    rows = read_epoch_table(epochs_path)
    epochs = [row["epoch"] for row in rows]
    if epochs != list(range(1, last + 1)) or rows[-1]["valid_loss"] != extra["valid_loss"]:
        raise ValueError(
            f"{epochs_path}: not the epoch table of {checkpoint_path} "
            f"(epochs 1 to {last}, ending at validation loss {extra['valid_loss']})"
        )
    model.load_state_dict(load_checkpoint(checkpoint_path).state_dict())  # copied onto model's device
    valid_loss = evaluate(model, valid_tunes, config.batch_size, pad)
    if not abs(valid_loss - extra["valid_loss"]) <= VALID_LOSS_TOLERANCE:
        raise ValueError(
            f"{where}: its validation loss on this run's validation tunes is {valid_loss:.6f}, "
            f"not the {extra['valid_loss']:.6f} it recorded: it was trained on another split"
        )
    started = time.perf_counter()
    replay_loss = rebuild_rmsprop(model, optimizer, train_tunes, config, last, pad, progress)
    log.info(
        "continuing from %s after epoch %d: validation %.6f nats/token (recorded %.6f); RMSprop's averages "
        "rebuilt from epoch %d's batches in %.1f s (training loss there %.4f, recorded %.4f)",
        checkpoint_path, last, valid_loss, extra["valid_loss"], last, time.perf_counter() - started,
        replay_loss, rows[-1]["train_loss"],
    )  # fmt: skip
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {
        "epoch": last,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "log": rows,
        "best": {"epoch": last, "valid_loss": extra["valid_loss"], "model": weights},
        "bad_epochs": 0,
        "continued_after": last,
    }


def train_model(
    train_path: str | Path,
    valid_path: str | Path,
    model_path: str | Path,
    epochs_path: str | Path,
    curve_path: str | Path,
    state_path: str | Path,
    config: TrainingConfig = TrainingConfig(),
    vocabulary_files: list[str | Path] = (),
    info: dict | None = None,
    progress: bool = True,
    continue_from: str | Path | None = None,
    continue_log: str | Path | None = None,
) -> pa.Table:
    """Train folk-rnn v2 on the training tunes, validating after every epoch, until
    ``max_epochs`` or ``patience`` epochs without a better validation loss.

    The vocabulary is every token of the training and validation files and of
    ``vocabulary_files``. Writes the best model (by validation loss) as a checkpoint
    whose metadata holds the training facts, the per-epoch table and the loss curve.
    ``state_path`` is written after every epoch; if it exists when training starts, the
    run resumes from it (it must come from the same data and settings; only
    ``TrainingConfig.RESUMABLE_CHANGES`` may differ). Without a state file,
    ``continue_from`` (a checkpoint this run's recipe wrote on this data, whose best
    epoch is its last) and ``continue_log`` (its epoch table) start the run after that
    epoch instead of from scratch (``continued_state``). Returns the per-epoch table.
    """
    device = use_device(config.device, config.threads)
    if config.device == "cuda":  # deterministic cuBLAS (before the first CUDA call)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    state_path, model_path = Path(state_path), Path(model_path)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary_of([train_path, valid_path, *vocabulary_files])
    token2idx = {token: k for k, token in enumerate(vocab)}
    train_tunes, valid_tunes = encode_tunes(train_path, token2idx), encode_tunes(valid_path, token2idx)
    pad = token2idx[END]
    baseline = unigram_baseline(train_path, valid_path, vocab)
    facts = {
        **(info or {}),
        "n_train_tunes": len(train_tunes),
        "n_valid_tunes": len(valid_tunes),
        "n_train_tokens": sum(len(seq) - 1 for seq in train_tunes),
        "n_valid_tokens": sum(len(seq) - 1 for seq in valid_tunes),
        "train_sha256": file_sha256(train_path),
        "valid_sha256": file_sha256(valid_path),
        "unigram_baseline": baseline,
    }
    log.info(
        "%d training tunes (%d target tokens), %d validation tunes (%d); vocabulary of %d; "
        "unigram baseline %.4f nats/token",
        facts["n_train_tunes"], facts["n_train_tokens"], facts["n_valid_tunes"],
        facts["n_valid_tokens"], len(vocab), baseline,
    )  # fmt: skip

    model = FolkRNN(FolkRNNConfig(len(vocab), config.n_layers, config.n_units, config.dropout), vocab)
    model.reset_parameters(torch.Generator().manual_seed(config.seed))
    model.to(device)
    optimizer = LasagneRMSprop(
        model.trainable_parameters(), config.learning_rate, config.rmsprop_rho, config.rmsprop_epsilon
    )
    fixed = {k: v for k, v in asdict(config).items() if k not in TrainingConfig.RESUMABLE_CHANGES}
    fingerprint = {
        "settings": fixed,
        "vocab": vocab,
        "train_sha256": facts["train_sha256"],
        "valid_sha256": facts["valid_sha256"],
    }
    if continue_from is not None:  # a state file of another start must not be taken for this one
        fingerprint["continued_from"] = {
            "file": Path(continue_from).name,
            "sha256": file_sha256(continue_from),
        }

    with _reproducible(device):
        if continue_from is not None and not state_path.exists():
            state = continued_state(
                continue_from,
                continue_log,
                model,
                optimizer,
                train_tunes,
                valid_tunes,
                config,
                facts,
                pad,
                progress,
            )
            _atomic_torch_save({"format": STATE_FORMAT, "fingerprint": fingerprint, **state}, state_path)
        state = {"epoch": 0, "log": [], "best": None, "bad_epochs": 0, "continued_after": None}
        if state_path.exists():
            state = _load_state(state_path, fingerprint, model, optimizer)
            log.info("resuming from %s after epoch %d", state_path, state["epoch"])
        epoch, rows, best, bad_epochs = state["epoch"], state["log"], state["best"], state["bad_epochs"]
        continued_after = state.get("continued_after")
        if continued_after is not None:
            facts["continued_from"] = {**fingerprint["continued_from"], "epoch": continued_after}
        while epoch < config.max_epochs and not (config.patience and bad_epochs >= config.patience):
            epoch += 1
            started = time.perf_counter()
            rate = config.learning_rate_at(epoch)
            for group in optimizer.param_groups:
                group["lr"] = rate
            order_rng, dropout_seed = _epoch_seeds(config.seed, epoch)
            torch.manual_seed(dropout_seed)
            description = f"epoch {epoch}/{config.max_epochs}"
            train_loss, tokens = train_epoch(
                model, optimizer, train_tunes, config, order_rng, pad, progress, description
            )
            valid_loss = evaluate(model, valid_tunes, config.batch_size, pad)
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "valid_loss": valid_loss,
                "learning_rate": rate,
                "seconds": time.perf_counter() - started,
                "tokens": tokens,
            }
            rows.append(row)
            if not math.isfinite(valid_loss):
                raise FloatingPointError(f"epoch {epoch}: validation loss is {valid_loss}")
            if best is None or valid_loss < best["valid_loss"]:
                weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best, bad_epochs = {"epoch": epoch, "valid_loss": valid_loss, "model": weights}, 0
                _atomic_checkpoint(model, model_path, _extra(facts, config, rows, best))
            else:
                bad_epochs += 1
            _atomic_torch_save(
                {
                    "format": STATE_FORMAT,
                    "fingerprint": fingerprint,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "log": rows,
                    "best": best,
                    "bad_epochs": bad_epochs,
                    "continued_after": continued_after,
                },
                state_path,
            )
            log.info(
                "epoch %d: train %.4f, valid %.4f nats/token, lr %.6f, %.1f s (best %.4f at epoch %d)",
                epoch, train_loss, valid_loss, rate, row["seconds"], best["valid_loss"], best["epoch"],
            )  # fmt: skip

    if best is None:
        raise ValueError("no epoch was trained (max_epochs must be at least 1)")
    stopped = "max_epochs" if epoch >= config.max_epochs else f"no improvement for {bad_epochs} epochs"
    log.info("stopped after epoch %d (%s); best validation loss %.4f at epoch %d",
             epoch, stopped, best["valid_loss"], best["epoch"])  # fmt: skip
    model.load_state_dict(best["model"])
    _atomic_checkpoint(model, model_path, _extra(facts, config, rows, best))
    table = pa.Table.from_pylist(rows, schema=EPOCHS_SCHEMA)
    Path(epochs_path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, epochs_path)
    title = (info or {}).get("run", "")
    plot_loss_curve(table, curve_path, baseline, best["epoch"], title=title, continued_after=continued_after)
    return table


def _extra(facts: dict, config: TrainingConfig, rows: list[dict], best: dict) -> dict:
    """The training facts stored in the checkpoint's metadata."""
    at_best = rows[best["epoch"] - 1]
    settings = {k: v for k, v in asdict(config).items() if k not in ("device", "threads")}
    return {
        "trained": True,
        **facts,
        "epochs": len(rows),
        "best_epoch": best["epoch"],
        "train_loss": at_best["train_loss"],
        "valid_loss": at_best["valid_loss"],
        "loss_unit": "nats per target token",
        "seed": config.seed,
        "training": settings,
    }


# ---- the loss curve ----------------------------------------------------------------------------


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
    axes.plot(epochs, data["train_loss"], marker=".", label="training (dropout on)")
    axes.plot(epochs, data["valid_loss"], marker=".", label="validation")
    axes.axhline(baseline, color="grey", linestyle="--", label=f"unigram baseline ({baseline:.3f})")
    best_loss = data["valid_loss"][epochs.index(best_epoch)]
    axes.plot([best_epoch], [best_loss], marker="*", markersize=14, color="C3", linestyle="none",
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
