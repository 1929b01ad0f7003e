"""The shipped default model (resources/models/): a trained folk-rnn v2 whose
tunes parse back as folk-rnn transcriptions and whose loss beats a unigram model."""

import json
import math

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

from folkrnn_lens.activations.record import write_generated_tokens
from folkrnn_lens.model.checkpoint import load_model
from folkrnn_lens.tokens.format import END, MODES, read_token_file
from folkrnn_lens.training.epochs import read_epoch_table

from .conftest import EXCERPT, ROOT

SHIPPED = ROOT / yaml.safe_load((ROOT / "config.yaml").read_text())["model"]["file"]


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED)


@pytest.fixture(scope="module")
def facts():
    with safe_open(str(SHIPPED), framework="pt") as handle:
        return json.loads(handle.metadata()["folkrnn_lens"])["extra"]


def test_the_default_config_uses_the_shipped_trained_v2_model(shipped, facts):
    assert SHIPPED.parent == ROOT / "resources" / "models"
    assert (shipped.config.n_layers, shipped.config.n_units) == (3, 512)
    assert facts["trained"] and facts["n_train_tunes"] > 2500
    assert all(p.dtype == torch.float32 for p in shipped.parameters())


def test_its_validation_loss_beats_a_unigram_model_by_a_wide_margin(facts):
    assert facts["valid_loss"] < 0.7 * facts["unigram_baseline"]


def test_it_predicts_folk_rnn_s_own_training_data_better_than_unigram(shipped, facts):
    """The reference excerpt is folk-rnn's data_v2 (thesession.org), not the music21
    tunes it was trained on: per-token loss there still beats the unigram model."""
    nats, count = 0.0, 0
    for tune in read_token_file(EXCERPT):
        idx = torch.tensor([shipped.encode(["<s>", *tune.tokens, END])])
        with torch.no_grad():
            logits = shipped(idx[:, :-1])
        nats += torch.nn.functional.cross_entropy(logits[0], idx[0, 1:], reduction="sum").item()
        count += idx.shape[1] - 1
    assert nats / count < facts["unigram_baseline"] < math.log(len(shipped.vocab))


def test_generated_tunes_parse_back_as_transcriptions(shipped, tmp_path):
    captures = shipped.generate(list(range(6)), 1.0, None, 800)
    finished = 0
    for seed, capture in enumerate(captures):
        tokens = capture.input_tokens[1:]
        if capture.output_tokens[-1] != END:
            continue
        finished += 1
        assert tokens[0].startswith("M:") and tokens[1] in MODES, (seed, tokens[:3])
        path = tmp_path / f"{seed}.txt"
        write_generated_tokens(path, tokens, finished=True)
        (tune,) = read_token_file(path)  # meter, mode, body: a valid transcription
        assert tune.tokens == tokens and any("|" in t for t in tune.body)
    assert finished >= 5
    assert np.isfinite(captures[0].softmax).all()


def test_its_epoch_table_is_the_one_of_its_run(facts):
    """The CSV beside the model is its run's log: what the loss curve draws, and what
    `continue_from` needs to go on from it."""
    rows = read_epoch_table(SHIPPED.with_suffix(".epochs.csv"))
    assert [row["epoch"] for row in rows] == list(range(1, facts["epochs"] + 1))
    best = rows[facts["best_epoch"] - 1]
    assert (best["train_loss"], best["valid_loss"]) == (facts["train_loss"], facts["valid_loss"])
    assert min(row["valid_loss"] for row in rows) == facts["valid_loss"]
