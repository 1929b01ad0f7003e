"""folk-rnn v2's architecture with folk-rnn's initialisation and no training (rule
init_untrained_model): a clearly-named stand-in until a trained model is configured."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from folkrnn_lens.model.checkpoint import save_checkpoint
from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig
from folkrnn_lens.tokens.format import vocabulary_of

log = logging.getLogger(__name__)


def init_untrained_model(
    token_files: list[str | Path], out_path: str | Path, n_layers: int, n_units: int, seed: int
) -> None:
    """folk-rnn v2's architecture with folk-rnn's initialisation and no training: a
    clearly-named stand-in until a trained model is configured."""
    vocab = vocabulary_of(token_files)
    config = FolkRNNConfig(vocab_size=len(vocab), n_layers=n_layers, n_units=n_units)
    model = FolkRNN(config, vocab)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    save_checkpoint(model, out_path, extra={"trained": False, "seed": seed})
    log.info("untrained model: %d tokens, %d x %d units, seed %d", len(vocab), n_layers, n_units, seed)
