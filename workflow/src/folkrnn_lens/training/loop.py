"""The training loop: folk-rnn v2's recipe (docs/specification.md; folk-rnn's
``configurations/config5.py`` and ``train_rnn.py``), seeded, resumable and continuable.

- the objective is folk-rnn's: per tune, the summed cross-entropy (nats) of its
  targets, averaged over the tunes of the batch. Tables and figures report the mean
  cross-entropy per target token (nats/token), which does not depend on tune length;
- batches of tunes of similar length (``data.py``); Lasagne's RMSprop (``optimiser.py``)
  at ``learning_rate``, times ``lr_decay`` every epoch after ``lr_decay_after``;
- dropout after each LSTM layer and Lasagne's per-step clipping of the gate gradients,
  both in the model's forward, ``FolkRNN.forward(idx, clip)``.

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
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
import torch.nn as nn

from folkrnn_lens.config import resolve_section
from folkrnn_lens.model.checkpoint import (
    checkpoint_header,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
    use_device,
)
from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig
from folkrnn_lens.tokens.format import END, vocabulary_of
from folkrnn_lens.training.data import encode_tunes, length_batches, make_batch, unigram_baseline
from folkrnn_lens.training.epochs import plot_loss_curve, read_epoch_table, write_epoch_table
from folkrnn_lens.training.optimiser import RMSPROP_EPSILON, RMSPROP_RHO, LasagneRMSprop, rebuild_rmsprop

log = logging.getLogger(__name__)

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


# ---- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingConfig:
    """A training run's settings, made by ``from_settings``: the schema
    (``$defs/training_run``) holds every default, folk-rnn v2's recipe."""

    n_layers: int
    n_units: int
    dropout: float
    max_epochs: int
    patience: int | None  # epochs without a better validation loss; None: never stop early
    batch_size: int
    learning_rate: float
    lr_decay: float
    lr_decay_after: int  # epochs 1..lr_decay_after at learning_rate, epoch e after at lr * decay**(e - after)
    # Not settings: Lasagne's constants, kept as fields because every run records its
    # settings (checkpoint metadata, state fingerprint) and a continued one compares them.
    rmsprop_rho: float = field(default=RMSPROP_RHO, init=False)
    rmsprop_epsilon: float = field(default=RMSPROP_EPSILON, init=False)
    grad_clipping: float | None  # per-step clamp of gate-pre-activation gradients; None: fused LSTM
    seed: int
    device: str
    threads: int

    RESUMABLE_CHANGES = ("max_epochs", "patience", "device", "threads")
    """Settings a resumed run may change; any other change needs a fresh start."""

    @classmethod
    def from_settings(cls, settings: dict) -> TrainingConfig:
        """From a ``training`` run of config.yaml, or any part of one (tests,
        notebooks), the schema's defaults filled in; the keys of the split and the
        corpus are not training settings and are left out."""
        settings = resolve_section("training", settings)
        clipping = settings["grad_clipping"]
        values = {f.name: settings[f.name] for f in fields(cls) if f.init and f.name != "grad_clipping"}
        return cls(**values, grad_clipping=None if clipping["mode"] == "none" else clipping["value"])

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of (1-based) epoch ``epoch``."""
        return self.learning_rate * self.lr_decay ** max(0, epoch - self.lr_decay_after)


def masked_nats(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The cross-entropy (nats) of each target, zero where the mask is 0: (B, T)."""
    nll = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return nll.view_as(mask) * mask


def folkrnn_objective(nats: torch.Tensor) -> torch.Tensor:
    """folk-rnn's training loss: each tune's summed nats, averaged over the batch."""
    return nats.sum() / nats.shape[0]


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
        nats = masked_nats(model(inputs, config.grad_clipping), targets, mask)
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


def replay_epoch(
    model: FolkRNN,
    optimizer: torch.optim.Optimizer,
    tunes: list[np.ndarray],
    config: TrainingConfig,
    epoch: int,
    pad: int,
    progress: bool = False,
) -> float:
    """Epoch ``epoch``'s batches again, in its order and with its dropout masks; returns
    its training loss (nats/token, dropout on)."""
    order_rng, dropout_seed = _epoch_seeds(config.seed, epoch)
    torch.manual_seed(dropout_seed)
    return train_epoch(model, optimizer, tunes, config, order_rng, pad, progress, "rebuilding RMSprop")[0]


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
    log, and RMSprop's averages rebuilt from its last epoch's batches (``rebuild_rmsprop``).
    Refused, naming the difference, where the checkpoint comes from other settings,
    vocabulary or data, or holds the weights of an epoch before its last (continuing
    would rewind the run)."""
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
    replay = partial(replay_epoch, model, optimizer, train_tunes, config, last, pad, progress)
    replay_loss = rebuild_rmsprop(optimizer, replay, math.ceil(len(train_tunes) / config.batch_size))
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
    config: TrainingConfig,
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
            tunes = (train_tunes, valid_tunes)
            state = continued_state(
                continue_from, continue_log, model, optimizer, *tunes, config, facts, pad, progress
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
    table = write_epoch_table(rows, epochs_path)
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
