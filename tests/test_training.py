"""Training: the split, batches and masking, per-step clipping, the optimizer, resuming,
and the Snakemake rules end to end, all on tiny models."""

import json
import math
import subprocess
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors import safe_open

from folkrnn_lens.config import ConfigError, check_config
from folkrnn_lens.model.checkpoint import file_sha256, load_model
from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig
from folkrnn_lens.tokens.format import read_token_file, vocabulary_of
from folkrnn_lens.training import loop as training
from folkrnn_lens.training.data import (
    encode_tunes,
    length_batches,
    make_batch,
    split_corpus,
    unigram_baseline,
)
from folkrnn_lens.training.epochs import EPOCHS_SCHEMA, read_epoch_table
from folkrnn_lens.training.loop import TrainingConfig, evaluate, masked_nats, train_epoch, train_model
from folkrnn_lens.training.optimiser import LasagneRMSprop, rebuild_rmsprop

from .conftest import EXCERPT, ROOT
from .test_workflow import SNAKEMAKE, make_workdir, run_snakemake

TINY = TrainingConfig.from_settings(
    {"n_layers": 2, "n_units": 8, "batch_size": 4, "max_epochs": 2, "threads": 1}
)  # the rest: the schema's


def write_tunes(path, n, seed=0):
    """n token-file tunes of random lengths and bodies."""
    rng = np.random.default_rng(seed)
    notes = ["C", "D", "E", "F", "G", "A", "B", "c", "2", "/2", "|"]
    tunes = [f"M:4/4\nK:Cmaj\n{' '.join(rng.choice(notes, rng.integers(3, 40)))} |\n" for _ in range(n)]
    path.write_text("\n".join(tunes))
    return path


def tiny_model(vocab, n_units=8, n_layers=2, dropout=0.5, seed=0):
    model = FolkRNN(FolkRNNConfig(len(vocab), n_layers, n_units, dropout), vocab)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    with torch.no_grad():  # non-zero initial states, so their gradients are tested too
        for state in (*model.h0, *model.c0):
            state.normal_(0, 0.5, generator=torch.Generator().manual_seed(seed + 1))
    return model


def excerpt_vocab():
    return vocabulary_of([EXCERPT])


# ---- the split ------------------------------------------------------------------------


def test_the_split_is_deterministic_disjoint_and_five_percent(tmp_path):
    corpus = write_tunes(tmp_path / "tunes.txt", 200)
    tables = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        paths = [tmp_path / run / name for name in ("train.txt", "valid.txt", "split.parquet")]
        tables.append(split_corpus(corpus, *paths, fraction=0.05, seed=42))
    assert (tmp_path / "a" / "train.txt").read_bytes() == (tmp_path / "b" / "train.txt").read_bytes()
    assert (tmp_path / "a" / "split.parquet").read_bytes() == (tmp_path / "b" / "split.parquet").read_bytes()
    split = pq.read_table(tmp_path / "a" / "split.parquet").to_pandas()
    assert split["position"].tolist() == list(range(1, 201))  # every tune once
    assert (split["split"] == "valid").sum() == 10
    tunes = read_token_file(corpus)
    train, valid = (read_token_file(tmp_path / "a" / name) for name in ("train.txt", "valid.txt"))
    assert len(train) + len(valid) == 200
    for name, part in (("train", train), ("valid", valid)):
        rows = split[split["split"] == name]
        assert rows["split_position"].tolist() == list(range(1, len(part) + 1))
        assert [tunes[p - 1] for p in rows["position"]] == part  # corpus order, joinable
    other = split_corpus(corpus, *(tmp_path / f"c{k}" for k in range(3)), fraction=0.05, seed=7)
    assert other.column("split").to_pylist() != split["split"].tolist()


def test_a_split_needs_two_tunes_and_a_sane_fraction(tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        split_corpus(write_tunes(tmp_path / "one.txt", 1), tmp_path / "t", tmp_path / "v", None, 0.05, 42)
    with pytest.raises(ValueError, match="fraction"):
        split_corpus(write_tunes(tmp_path / "two.txt", 2), tmp_path / "t", tmp_path / "v", None, 1.0, 42)


# ---- batches and the loss ---------------------------------------------------------------


def test_batches_cover_every_tune_once_group_similar_lengths_and_are_seeded():
    lengths = np.random.default_rng(0).integers(5, 300, 203)
    batches = length_batches(lengths, 64, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(203))
    assert [len(b) for b in sorted(batches, key=len)] == [11, 64, 64, 64]
    spans = [np.ptp(lengths[b]) for b in batches]
    assert max(spans) < np.ptp(lengths) / 2  # sorted by length, not random
    again = length_batches(lengths, 64, np.random.default_rng(1))
    assert all((a == b).all() for a, b in zip(batches, again))


def test_padding_changes_neither_the_loss_nor_its_gradient():
    vocab = excerpt_vocab()
    tunes = [t[:n] for t, n in zip(encode_tunes(EXCERPT, {t: k for k, t in enumerate(vocab)}), (50, 80, 20))]
    model = tiny_model(vocab).eval()
    inputs, targets, mask = make_batch(tunes, pad=1)
    assert mask.sum() == sum(len(t) - 1 for t in tunes)
    extra = 17  # more padding columns, holding arbitrary tokens
    noise = torch.randint(0, len(vocab), (len(tunes), extra), generator=torch.Generator().manual_seed(0))
    longer = [torch.cat([x, noise], dim=1) for x in (inputs, targets)] + [
        torch.cat([mask, torch.zeros(len(tunes), extra)], dim=1)
    ]
    for clip in (None, 5.0):
        results = []
        for x, y, m in ((inputs, targets, mask), longer):
            model.zero_grad()
            loss = training.folkrnn_objective(masked_nats(model(x, clip), y, m))
            loss.backward()
            results.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
        assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
        for a, b in zip(results[0][1], results[1][1]):  # the same up to float rounding
            assert (a - b).norm() <= 1e-5 * a.norm()


def test_one_epoch_lowers_the_training_loss():
    vocab = excerpt_vocab()
    tunes = encode_tunes(EXCERPT, {t: k for k, t in enumerate(vocab)})
    torch.manual_seed(0)
    model = tiny_model(vocab, n_units=16)
    optimizer = LasagneRMSprop(model.parameters(), lr=0.01)
    before = evaluate(model, tunes, 4, pad=1)
    config = TrainingConfig.from_settings({"n_layers": 2, "n_units": 16, "batch_size": 4})
    train_loss, tokens = train_epoch(model, optimizer, tunes, config, np.random.default_rng(0), pad=1)
    after = evaluate(model, tunes, 4, pad=1)
    assert tokens == sum(len(t) - 1 for t in tunes)
    assert math.isfinite(train_loss)
    assert after < before - 0.1, (before, after)


def test_the_unigram_baseline_by_hand(tmp_path):
    (tmp_path / "train.txt").write_text("M:4/4\nK:Cmaj\nC C |\n")  # targets M K C C | </s>
    (tmp_path / "valid.txt").write_text("M:4/4\nK:Cmaj\nD |\n")  # targets M K D | </s>
    vocab = ["<s>", "</s>", "C", "D", "K:Cmaj", "M:4/4", "|"]
    # counts + 1 over 7 tokens: <s> 1, </s> 2, C 3, D 1, K 2, M 2, | 2; total 6 + 7 = 13
    expected = -(math.log(2 / 13) * 3 + math.log(1 / 13) + math.log(2 / 13)) / 5
    assert unigram_baseline(tmp_path / "train.txt", tmp_path / "valid.txt", vocab) == pytest.approx(expected)


# ---- per-step gradient clipping -----------------------------------------------------------------


def gradients(model, forward, targets):
    model.zero_grad()
    logits = forward()
    nn_loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    nn_loss.backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.fixture
def clip_case():
    vocab = excerpt_vocab()
    model = tiny_model(vocab, n_units=16, n_layers=3).eval()  # dropout off: the paths compare
    generator = torch.Generator().manual_seed(3)
    idx = torch.randint(0, len(vocab), (5, 40), generator=generator)
    targets = torch.randint(0, len(vocab), (5, 40), generator=generator)
    return model, idx, targets


def test_the_step_loop_without_clipping_equals_the_fused_forward_and_its_gradients(clip_case):
    model, idx, targets = clip_case
    fused, fused_grads = gradients(model, lambda: model(idx), targets)
    stepped, stepped_grads = gradients(model, lambda: model(idx, math.inf), targets)
    assert (fused - stepped).abs().max() <= 1e-5
    for (name, _), a, b in zip(model.named_parameters(), fused_grads, stepped_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name
    # a clip no gradient reaches is no clip; a tiny one changes every weight's gradient
    _, loose = gradients(model, lambda: model(idx, 1e9), targets)
    assert all(torch.equal(a, b) for a, b in zip(stepped_grads, loose))
    clipped_logits, clipped = gradients(model, lambda: model(idx, 1e-3), targets)
    assert torch.equal(clipped_logits, stepped)  # the forward pass is untouched
    named = dict(zip([n for n, _ in model.named_parameters()], zip(stepped_grads, clipped)))
    for name in ("W_x.0", "W_h.0", "W_h.2", "b.1", "h0.0"):
        a, b = named[name]
        assert not torch.allclose(a, b, rtol=1e-2), name
    assert torch.equal(*named["W_out"]) and torch.equal(*named["b_out"])  # above the LSTM: unclipped


def test_clipping_bounds_the_gate_gradient_of_every_step():
    """With one layer and one step, the gradient of b is the gate-gradient summed over
    the batch: with clip c each of B rows contributes at most c."""
    vocab = excerpt_vocab()
    model = tiny_model(vocab, n_units=8, n_layers=1).eval()
    with torch.no_grad():
        model.W_out.mul_(1000)  # huge gradients
    idx, targets = torch.zeros((3, 1), dtype=torch.long), torch.ones((3, 1), dtype=torch.long)
    _, free = gradients(model, lambda: model(idx, math.inf), targets)
    _, clipped = gradients(model, lambda: model(idx, 0.5), targets)
    b = [n for n, _ in model.named_parameters()].index("b.0")
    assert free[b].abs().max() > 1.5
    assert clipped[b].abs().max() <= 3 * 0.5 + 1e-6


def test_lasagne_rmsprop_by_hand():
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = LasagneRMSprop([param], lr=0.1, rho=0.9, epsilon=1e-6)
    for grad in ([0.5, 0.0], [1.0, 2.0]):
        param.grad = torch.tensor(grad)
        optimizer.step()
    accu1 = 0.1 * np.array([0.25, 0.0])
    p1 = np.array([1.0, -2.0]) - 0.1 * np.array([0.5, 0.0]) / np.sqrt(accu1 + 1e-6)
    accu2 = 0.9 * accu1 + 0.1 * np.array([1.0, 4.0])
    p2 = p1 - 0.1 * np.array([1.0, 2.0]) / np.sqrt(accu2 + 1e-6)
    np.testing.assert_allclose(param.detach().numpy(), p2, rtol=1e-6)


def test_the_learning_rate_decays_after_epoch_20_and_settings_map_from_config():
    config = TrainingConfig.from_settings({})  # the schema's defaults: folk-rnn v2's recipe
    assert [config.learning_rate_at(e) for e in (1, 20)] == [0.003, 0.003]
    assert config.learning_rate_at(22) == pytest.approx(0.003 * 0.97**2)
    assert (config.n_layers, config.n_units, config.batch_size, config.grad_clipping) == (3, 512, 64, 5)
    assert (config.rmsprop_rho, config.rmsprop_epsilon) == (0.9, 1e-6)
    settings = {"corpus": "x", "n_units": 16, "grad_clipping": {"mode": "none", "value": 5}}
    assert TrainingConfig.from_settings(settings) == replace(config, n_units=16, grad_clipping=None)
    settings["grad_clipping"] = {"mode": "per_step", "value": 2.5}
    assert TrainingConfig.from_settings(settings).grad_clipping == 2.5
    with pytest.raises(ConfigError, match="n_units"):
        TrainingConfig.from_settings({"n_units": 0})


# ---- whole runs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def excerpt_split(tmp_path_factory):
    folder = tmp_path_factory.mktemp("split")
    split_corpus(EXCERPT, folder / "train.txt", folder / "valid.txt", folder / "split.parquet", 0.2, 1)
    return folder / "train.txt", folder / "valid.txt"


def run_training(folder, split, config, **kwargs):
    names = ("model.safetensors", "epochs.parquet", "loss_curve.png", "state.pt")
    return train_model(*split, *(folder / n for n in names), config, progress=False, **kwargs)


def checkpoint(path):
    with safe_open(str(path), framework="pt") as handle:
        extra = json.loads(handle.metadata()["folkrnn_lens"])["extra"]
        return {name: handle.get_tensor(name) for name in handle.keys()}, extra


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, excerpt_split):
    straight = run_training(tmp_path / "straight", excerpt_split, replace(TINY, max_epochs=4))
    run_training(tmp_path / "resumed", excerpt_split, TINY)  # stops after 2 epochs
    first_two = pq.read_table(tmp_path / "resumed" / "epochs.parquet")
    assert first_two.num_rows == 2
    resumed = run_training(tmp_path / "resumed", excerpt_split, replace(TINY, max_epochs=4))
    a, extra_a = checkpoint(tmp_path / "straight" / "model.safetensors")
    b, extra_b = checkpoint(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert extra_a == extra_b and extra_a["epochs"] == 4
    columns = ["epoch", "train_loss", "valid_loss", "learning_rate", "tokens"]
    assert straight.select(columns).equals(resumed.select(columns))
    state_a = torch.load(tmp_path / "straight" / "state.pt", weights_only=True)
    state_b = torch.load(tmp_path / "resumed" / "state.pt", weights_only=True)
    for k in state_a["model"]:
        assert torch.equal(state_a["model"][k], state_b["model"][k])
    # what the checkpoint says about the run
    assert extra_a["best_epoch"] == int(np.argmin(straight["valid_loss"].to_numpy())) + 1
    assert extra_a["valid_loss"] == min(straight["valid_loss"].to_pylist())
    assert (extra_a["n_train_tunes"], extra_a["n_valid_tunes"]) == (10, 2)
    assert extra_a["unigram_baseline"] == pytest.approx(
        unigram_baseline(*excerpt_split, vocabulary_of(list(excerpt_split)))
    )
    assert (tmp_path / "straight" / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_a_state_from_other_settings_is_refused(tmp_path, excerpt_split):
    run_training(tmp_path, excerpt_split, replace(TINY, max_epochs=1))
    with pytest.raises(ValueError, match="delete it to train from scratch"):
        run_training(tmp_path, excerpt_split, replace(TINY, max_epochs=2, learning_rate=0.01))


def test_training_stops_after_patience_epochs_and_keeps_the_best(tmp_path, excerpt_split, monkeypatch):
    losses = iter([3.0, 2.0, 2.5, 2.1, 2.2, 1.0])
    monkeypatch.setattr(training, "evaluate", lambda *args: next(losses))
    table = run_training(tmp_path, excerpt_split, replace(TINY, max_epochs=10, patience=3))
    assert table.column("epoch").to_pylist() == [1, 2, 3, 4, 5]
    _, extra = checkpoint(tmp_path / "model.safetensors")
    assert (extra["best_epoch"], extra["valid_loss"], extra["epochs"]) == (2, 2.0, 5)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    weights, _ = checkpoint(tmp_path / "model.safetensors")
    assert all(torch.equal(state["best"]["model"][k], v) for k, v in weights.items())


# ---- continuing from a checkpoint ----------------------------------------------------------------


@pytest.fixture(scope="module")
def first_leg(tmp_path_factory, excerpt_split):
    """A finished 3-epoch run whose best epoch is its last: what a shipped model is."""
    folder = tmp_path_factory.mktemp("first_leg")
    table = run_training(folder, excerpt_split, replace(TINY, max_epochs=3))
    assert int(np.argmin(table["valid_loss"].to_numpy())) == 2
    return folder


def continue_training(folder, split, config, start, log=None):
    log = start.parent / "epochs.parquet" if log is None else log
    return run_training(folder, split, config, continue_from=start, continue_log=log)


def test_a_continued_run_goes_on_after_the_checkpoint_s_last_epoch(tmp_path, excerpt_split, first_leg):
    start = first_leg / "model.safetensors"
    continued = continue_training(tmp_path / "on", excerpt_split, replace(TINY, max_epochs=5), start)
    straight = run_training(tmp_path / "straight", excerpt_split, replace(TINY, max_epochs=5))
    first = pq.read_table(first_leg / "epochs.parquet")
    assert continued.slice(0, 3).equals(first)  # the first leg's log, as it was
    assert continued["epoch"].to_pylist() == [1, 2, 3, 4, 5]
    # close to the uninterrupted run, not the same bits (RMSprop's averages were rebuilt):
    # off by less than half of what those epochs gained, a scale set by the run, not the CPU
    on, along = continued["valid_loss"].to_numpy()[3:], straight["valid_loss"].to_numpy()[3:]
    assert not np.array_equal(on, along)
    gained = straight["valid_loss"][2].as_py() - along[-1]
    assert gained > 0 and np.max(np.abs(on - along)) < gained / 2, (on, along, gained)
    _, extra = checkpoint(tmp_path / "on" / "model.safetensors")
    assert extra["continued_from"] == {"file": "model.safetensors", "sha256": file_sha256(start), "epoch": 3}
    assert extra["epochs"] == 5 and extra["train_sha256"] == file_sha256(excerpt_split[0])
    # stopped again, it resumes from its own state file as any run does
    again = continue_training(tmp_path / "on", excerpt_split, replace(TINY, max_epochs=6), start)
    assert again.slice(0, 5).select(["epoch", "valid_loss"]).equals(continued.select(["epoch", "valid_loss"]))


def test_rebuilt_rmsprop_averages_are_the_last_epoch_s_squared_gradients_by_hand(excerpt_split, first_leg):
    config = replace(TINY, max_epochs=3)
    model = load_model(first_leg / "model.safetensors")
    pad = model.token2idx["</s>"]
    tunes = encode_tunes(excerpt_split[0], model.token2idx)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = LasagneRMSprop(model.trainable_parameters(), 0.003)
    replay = lambda: training.replay_epoch(model, optimizer, tunes, config, 3, pad)  # noqa: E731
    rebuild_rmsprop(optimizer, replay, math.ceil(len(tunes) / config.batch_size))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing moved
    # by hand: epoch 3's batches, in its order and with its dropout masks, at these weights
    order_rng, dropout_seed = training._epoch_seeds(config.seed, 3)
    batches = length_batches([len(t) for t in tunes], config.batch_size, order_rng)
    torch.manual_seed(dropout_seed)
    squares = [torch.zeros_like(p) for p in model.trainable_parameters()]
    for batch in batches:
        inputs, targets, mask = make_batch([tunes[k] for k in batch], pad)
        model.zero_grad()
        training.folkrnn_objective(masked_nats(model(inputs, 5.0), targets, mask)).backward()
        for square, param in zip(squares, model.trainable_parameters()):
            square.mul_(0.9).add_(0.1 * param.grad**2)
    for square, param in zip(squares, model.trainable_parameters()):
        expected = square / (1 - 0.9 ** len(batches))
        torch.testing.assert_close(optimizer.state[param]["accu"], expected, rtol=1e-5, atol=1e-12)


def rewrite_extra(source, target, **changes):
    """A copy of a checkpoint with its training facts changed (None: removed)."""
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as handle:
        header = json.loads(handle.metadata()["folkrnn_lens"])
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    header["extra"].update(changes)
    header["extra"] = {k: v for k, v in header["extra"].items() if v is not None}
    save_file(tensors, str(target), metadata={"folkrnn_lens": json.dumps(header)})
    return target


def test_continuing_from_another_run_s_checkpoint_is_refused_naming_why(tmp_path, excerpt_split, first_leg):
    start, log = first_leg / "model.safetensors", first_leg / "epochs.parquet"
    config = replace(TINY, max_epochs=5)

    def refused(match, config=config, split=excerpt_split, start=start, log=log):
        folder = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        with pytest.raises(ValueError, match=match):
            continue_training(folder, split, config, start, log)
        assert not (folder / "state.pt").exists()  # nothing half-made to resume from

    refused(
        r"other settings \(learning_rate: 0.003 there, 0.01 here\)",
        config=replace(config, learning_rate=0.01),
    )
    other = tmp_path / "other_split"
    other.mkdir()
    split_corpus(EXCERPT, other / "train.txt", other / "valid.txt", None, 0.2, 7)
    other_split = (other / "train.txt", other / "valid.txt")
    refused(r"trained on other data \((n_train_tokens|train_sha256)", split=other_split)
    # a checkpoint from before the data hashes: the re-evaluated validation loss tells
    no_hashes = rewrite_extra(start, tmp_path / "old.safetensors", train_sha256=None, valid_sha256=None,
                              n_train_tokens=None, n_valid_tokens=None)  # fmt: skip
    refused("validation loss on this run's validation tunes is .* trained on another split",
            split=other_split, start=no_hashes)  # fmt: skip
    last = pq.read_table(log).to_pylist()[-1]
    rewound = rewrite_extra(start, tmp_path / "rewound.safetensors", epochs=4)
    refused("holds epoch 3's weights .* went on to epoch 4; continuing would rewind", start=rewound)
    short = tmp_path / "short.parquet"
    pq.write_table(pq.read_table(log).slice(0, 2), short)
    refused(f"not the epoch table of .* ending at validation loss {last['valid_loss']}", log=short)
    vocab = rewrite_extra(start, tmp_path / "untrained.safetensors", trained=None)
    refused("not a trained checkpoint", start=vocab)


def test_a_state_file_of_another_start_is_not_resumed_by_a_continued_run(tmp_path, excerpt_split, first_leg):
    run_training(tmp_path, excerpt_split, replace(TINY, max_epochs=1))  # a state.pt from scratch
    with pytest.raises(ValueError, match="delete it to train from scratch"):
        continue_training(
            tmp_path, excerpt_split, replace(TINY, max_epochs=5), first_leg / "model.safetensors"
        )


def test_the_shipped_epoch_csv_reads_as_the_epoch_table(tmp_path):
    table = pa.Table.from_pylist(
        [{"epoch": 1, "train_loss": 3.25, "valid_loss": 3.0000000000000004, "learning_rate": 0.003,
          "seconds": 1.5, "tokens": 10}], schema=EPOCHS_SCHEMA,
    )  # fmt: skip
    table.to_pandas().to_csv(tmp_path / "epochs.csv", index=False)  # as the shipped one was written
    assert read_epoch_table(tmp_path / "epochs.csv") == table.to_pylist()


# ---- the Snakemake rules -------------------------------------------------------------------------


def test_config_training_keys_are_checked():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["training"]["folkrnn_v2_music21"]["grad_clipping"] = {"mode": "global"}
    with pytest.raises(ConfigError, match=r"grad_clipping -> mode: 'global' is not one of"):
        check_config(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")


def tiny_workflow_config() -> dict:
    return {
        "model": {"file": "untrained", "untrained": {"n_units": 8, "vocabulary_files": [str(EXCERPT)]}},
        "corpora": {"mini": {"sources": ["music21:oneills1850/0001-0050.abc"]}},
        "transcriptions": {"excerpt_1": {"tokens": str(EXCERPT), "index": 1}},
        "record": {"layers": [1], "quantities": ["h"]},
        "training": {
            "tiny": {
                "corpus": "mini",
                "vocabulary_files": [str(EXCERPT)],
                "validation_fraction": 0.1,
                "n_layers": 2,
                "n_units": 8,
                "batch_size": 16,
                "max_epochs": 2,
                "threads": 1,
            }
        },
        "torch_threads": 1,
    }


def test_a_training_run_must_name_a_configured_corpus(tmp_path):
    config = tiny_workflow_config()
    config["training"]["tiny"]["corpus"] = "nope"
    workdir = make_workdir(tmp_path / "bad", config)
    command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-n", "train"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    message = "training -> tiny -> corpus: 'nope' is not one of the configured corpora"
    assert message in result.stdout + result.stderr


@pytest.mark.slow
def test_the_train_target_trains_a_model_that_reads_tunes(tmp_path):
    workdir = make_workdir(tmp_path / "run", tiny_workflow_config())
    dry = run_snakemake(workdir, "-n", "-j", "2")  # the default target never trains
    assert "train_model" not in dry.stdout + dry.stderr
    run_snakemake(workdir, "-j", "2", "train")
    folder = workdir / "results" / "training" / "tiny"
    for name in ("train.txt", "valid.txt", "split.parquet", "model.safetensors", "epochs.parquet",
                 "loss_curve.png", "state.pt"):  # fmt: skip
        assert (folder / name).stat().st_size > 0, name
    assert (workdir / "results" / "logs" / "training" / "tiny" / "train.log").exists()
    assert (workdir / "results" / "benchmarks" / "training" / "tiny" / "train.tsv").exists()
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert epochs["epoch"].tolist() == [1, 2]
    tunes = pd.read_parquet(workdir / "results" / "corpus" / "mini" / "tunes.parquet")
    split = pd.read_parquet(folder / "split.parquet")
    joined = tunes.merge(split, on="position")
    assert len(joined) == (tunes["status"] == "ok").sum() == len(split)
    assert (split["split"] == "valid").sum() == round(0.1 * len(split))
    model = load_model(folder / "model.safetensors")
    assert (model.config.n_layers, model.config.n_units) == (2, 8)
    [capture] = model.read([read_token_file(EXCERPT)[0].tokens])
    assert np.isfinite(capture.softmax).all()
    _, extra = checkpoint(folder / "model.safetensors")
    assert extra["corpus"] == "mini" and extra["run"] == "tiny" and extra["split_seed"] == 42
    again = run_snakemake(workdir, "-j", "2", "train")  # done: nothing reruns
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_the_train_rule_continues_a_run_from_its_checkpoint(tmp_path):
    config = tiny_workflow_config()
    workdir = make_workdir(tmp_path / "run", config)
    run_snakemake(workdir, "-j", "1", "train")
    folder = workdir / "results" / "training" / "tiny"
    shipped = workdir / "shipped"  # the run's checkpoint and table, kept; its state.pt lost
    shipped.mkdir()
    for name in ("model.safetensors", "epochs.parquet"):
        (shipped / name).write_bytes((folder / name).read_bytes())
    (folder / "state.pt").unlink()
    config["training"]["tiny"]["max_epochs"] = 3
    config["training"]["tiny"]["continue_from"] = {
        "model": "shipped/model.safetensors",
        "epochs": "shipped/epochs.parquet",
    }
    make_workdir(workdir, config)
    run_snakemake(workdir, "-j", "1", "train")
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert epochs["epoch"].tolist() == [1, 2, 3]
    assert epochs.iloc[:2].equals(pd.read_parquet(shipped / "epochs.parquet"))
    _, extra = checkpoint(folder / "model.safetensors")
    assert extra["continued_from"]["epoch"] == 2
    log = (workdir / "results" / "logs" / "training" / "tiny" / "train.log").read_text()
    assert "continuing from shipped/model.safetensors after epoch 2" in log
