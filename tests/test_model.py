import io
import logging
import os
import pickle
import random
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

import folkrnn_lens.model.folkrnn as model_module
from folkrnn_lens.model import convert
from folkrnn_lens.model.checkpoint import (
    CheckpointError,
    checkpoint_header,
    file_sha256,
    load_checkpoint,
    load_folkrnn_pickle,
    load_model,
    save_checkpoint,
)
from folkrnn_lens.model.folkrnn import MAX_LENGTH, QUANTITIES, FolkRNN, UnknownTokenError
from folkrnn_lens.model.reference import reference_read, run_reference

from .conftest import small_model

H_INDEX, C_INDEX = QUANTITIES.index("h"), QUANTITIES.index("c")


def torch_lstm_states(model: FolkRNN, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """h and c of every layer at every step from torch.nn.LSTM, fed one step at a time
    so that the cell state of every step is visible: (L, T, H) each."""
    lstm = model.torch_lstm()
    idx = torch.tensor([model.encode(["<s>", *tokens])])
    x = torch.nn.functional.one_hot(idx, model.config.vocab_size).float()
    state = (
        torch.stack([h.detach() for h in model.h0]).unsqueeze(1),
        torch.stack([c.detach() for c in model.c0]).unsqueeze(1),
    )
    hs, cs = [], []
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = lstm(x[:, t : t + 1], state)
            hs.append(state[0][:, 0].numpy())
            cs.append(state[1][:, 0].numpy())
    return np.stack(hs, axis=1), np.stack(cs, axis=1)


def test_capture_equals_torch_lstm_on_h_and_c_of_every_layer_and_step(excerpt):
    model = small_model(n_units=64)
    tokens = excerpt[2].tokens  # a long dorian tune with chords
    capture = model.read([tokens])[0]
    h, c = torch_lstm_states(model, tokens)
    assert capture.activations.shape == (3, 7, len(tokens) + 1, 64)
    assert np.abs(capture.activations[:, H_INDEX] - h).max() <= 1e-5
    assert np.abs(capture.activations[:, C_INDEX] - c).max() <= 1e-5


def test_full_size_capture_equals_torch_lstm(excerpt):
    """The full 3 x 512 size over a whole tune. (Weights in a non-chaotic range: folk-rnn's
    untrained Normal(0.1) initialisation amplifies float32 rounding step after step.)"""
    model = small_model(n_units=512)
    tokens = excerpt[0].tokens
    capture = model.read([tokens])[0]
    h, c = torch_lstm_states(model, tokens)
    assert np.abs(capture.activations[:, H_INDEX] - h).max() <= 1e-5
    assert np.abs(capture.activations[:, C_INDEX] - c).max() <= 1e-5


def test_capture_equals_the_numpy_reference_on_every_quantity(excerpt, model):
    tokens = excerpt[1].tokens
    capture = model.read([tokens])[0]
    acts, probs = reference_read(model, tokens)
    for k, quantity in enumerate(QUANTITIES):
        error = np.abs(capture.activations[:, k] - acts[:, k]).max()
        assert error <= 1e-5, f"{quantity}: {error}"
    assert np.abs(capture.softmax - probs).max() <= 1e-6
    assert np.allclose(capture.softmax.sum(axis=1), 1.0, atol=1e-5)


def test_capture_records_steps_and_tokens(excerpt, model):
    tokens = excerpt[3].tokens
    capture = model.read([tokens])[0]
    assert capture.input_tokens == ["<s>", *tokens]
    assert capture.output_tokens == [*tokens, "</s>"]
    assert capture.softmax.shape == (len(tokens) + 1, model.config.vocab_size)
    i, f, g_pre, g, o, c, h = (capture.activations[:, k] for k in range(7))
    assert np.allclose(g, np.tanh(g_pre), atol=1e-6)
    assert np.allclose(h, o * np.tanh(c), atol=1e-6)
    assert ((0 < i) & (i < 1) & (0 < f) & (f < 1)).all()


def test_prepacked_products_equal_addmm(excerpt, monkeypatch):
    """The oneDNN-prepacked per-step products (CPU, float32) against plain addmm, on
    the full size; both paths must agree to float32 rounding."""
    model = small_model(n_units=512)
    tunes = [tune.tokens for tune in excerpt[:3]]
    if model.prepack:
        assert all(type(w).__name__ == "_Prepacked" for w in model._step_weights())
    packed = model.read(tunes)
    monkeypatch.setattr(FolkRNN, "prepack", False)
    assert all(isinstance(w, torch.Tensor) for w in model._step_weights())
    plain = model.read(tunes)
    for a, b in zip(packed, plain):
        assert np.abs(a.activations - b.activations).max() <= 1e-5
        assert np.abs(a.softmax - b.softmax).max() <= 1e-6


def test_batched_read_matches_reading_one_tune_at_a_time(excerpt, model):
    tunes = [tune.tokens for tune in excerpt[:5]]
    batched = model.read(tunes)
    for tokens, capture in zip(tunes, batched):
        alone = model.read([tokens])[0]
        assert capture.input_tokens == alone.input_tokens
        assert np.abs(capture.activations - alone.activations).max() <= 1e-6
        assert np.abs(capture.softmax - alone.softmax).max() <= 1e-6


def test_unknown_token_is_an_error_naming_token_and_position(model):
    with pytest.raises(UnknownTokenError, match=r"token 'H7' at position 3 is not in the model's vocabulary"):
        model.read([["M:4/4", "K:Cmaj", "H7", "A", "|"]])  # position 3: after <s>


def test_generation_is_deterministic_per_seed_and_independent_of_the_batch(model):
    first = model.generate([7, 8], 1.0, None, 120)
    again = model.generate([7], 1.0, None, 120)
    assert first[0].input_tokens == again[0].input_tokens
    assert first[0].input_tokens != first[1].input_tokens
    np.testing.assert_array_equal(first[0].activations, again[0].activations)  # rows alone
    repeat = model.generate([7, 8], 1.0, None, 120)
    for a, b in zip(first, repeat):
        assert a.input_tokens == b.input_tokens
        np.testing.assert_array_equal(a.activations, b.activations)
        np.testing.assert_array_equal(a.softmax, b.softmax)


def test_reading_a_generated_tune_gives_exactly_the_recorded_activations(model):
    for seed in (1, 2, 3):
        generated = model.generate([seed], 0.9, None, 150)[0]
        finished = generated.output_tokens[-1] == "</s>"
        tokens = generated.input_tokens[1:] if finished else generated.output_tokens
        read = model.read([tokens])[0]
        n = len(generated.input_tokens)
        assert read.input_tokens[:n] == generated.input_tokens
        np.testing.assert_array_equal(read.activations[:, :, :n], generated.activations)
        if finished:
            np.testing.assert_array_equal(read.softmax, generated.softmax)


def test_generation_stops_at_end_token_or_max_length(model):
    for capture in model.generate(list(range(6)), 1.0, None, 40):
        n = len(capture.input_tokens)
        assert n <= 40
        assert capture.input_tokens[0] == "<s>"
        assert "</s>" not in capture.input_tokens
        assert capture.output_tokens[-1] == "</s>" or n == 40
        assert capture.input_tokens[1:] == capture.output_tokens[:-1]


def test_prime_tokens_are_fed_first(model):
    prime = ["M:6/8", "K:Cdor", "c"]
    capture = model.generate([3], 1.0, prime, 50)[0]
    assert capture.input_tokens[:4] == ["<s>", *prime]
    with pytest.raises(UnknownTokenError, match="'K:Dmaj' at position 0"):
        model.generate([3], 1.0, ["K:Dmaj"], 1000)


def test_low_temperature_approaches_greedy_decoding(model):
    capture = model.generate([0], 1e-4, None, 30)[0]
    chosen = capture.output_tokens
    greedy = [model.vocab[k] for k in capture.softmax.argmax(axis=1)]
    assert chosen == greedy


def test_checkpoint_round_trip_keeps_weights_vocab_and_capture(tmp_path, excerpt, model):
    path = tmp_path / "model.safetensors"
    save_checkpoint(model, path)
    loaded = load_model(path)
    assert loaded.vocab == model.vocab and loaded.config == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    tokens = excerpt[0].tokens
    np.testing.assert_array_equal(model.read([tokens])[0].activations, loaded.read([tokens])[0].activations)


def test_a_safetensors_file_without_our_metadata_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a folkrnn-lens checkpoint"):
        load_checkpoint(path)


def folkrnn_pickle_params(vocab_size: int, n_units: int, rng: np.random.Generator) -> list[np.ndarray]:
    """45 arrays (for 3 layers) in the order of folk-rnn's Lasagne model."""
    params = [np.eye(vocab_size, dtype=np.float32)]
    for layer in range(3):
        n_in = vocab_size if layer == 0 else n_units
        for _gate in "ifco":
            params += [
                rng.normal(0, 0.3, (n_in, n_units)).astype(np.float32),
                rng.normal(0, 0.3, (n_units, n_units)).astype(np.float32),
                rng.normal(0, 0.5, n_units).astype(np.float32),
            ]
        params += [rng.normal(0, 0.5, (1, n_units)).astype(np.float32) for _ in range(2)]
    params += [
        rng.normal(0, 0.3, (n_units, vocab_size)).astype(np.float32),
        rng.normal(0, 0.3, vocab_size).astype(np.float32),
    ]
    return params


def write_folkrnn_pickle(path, vocab: list[str], params: list[np.ndarray]) -> dict:
    """A pickle laid out like folkrnn_v2.pkl, token2idx in a shuffled order."""
    order = list(range(len(vocab)))
    random.Random(4).shuffle(order)
    token2idx = {vocab[k]: k for k in order}
    with open(path, "wb") as stream:
        pickle.dump({"token2idx": token2idx, "param_values": params}, stream, protocol=2)
    return token2idx


def test_folkrnn_pickle_loads_and_reads_correctly(tmp_path, excerpt):
    rng = np.random.default_rng(0)
    vocab = small_model().vocab
    random.Random(1).shuffle(vocab)  # folk-rnn's own indices are in no sorted order
    params = folkrnn_pickle_params(len(vocab), 24, rng)
    assert len(params) == 45
    path = tmp_path / "folkrnn_v2.pkl"
    token2idx = write_folkrnn_pickle(path, vocab, params)
    model = load_model(path)
    assert model.vocab == vocab and all(model.token2idx[t] == i for t, i in token2idx.items())
    assert (model.config.n_layers, model.config.n_units) == (3, 24)
    # the reference reads straight from the pickle's arrays, gate by gate
    layers = []
    for layer in range(3):
        arrays = params[1 + 14 * layer : 15 + 14 * layer]
        names = ["W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f", "W_xc", "W_hc", "b_c", "W_xo", "W_ho", "b_o"]
        layer_params = {name: a.astype(np.float64) for name, a in zip(names, arrays)}
        layer_params["c0"], layer_params["h0"] = (
            arrays[12][0].astype(np.float64),
            arrays[13][0].astype(np.float64),
        )
        layers.append(layer_params)
    tokens = excerpt[4].tokens
    indices = [token2idx[t] for t in ["<s>", *tokens]]
    acts, probs = run_reference(layers, params[43].astype(np.float64), params[44].astype(np.float64), indices)
    capture = model.read([tokens])[0]
    assert np.abs(capture.activations - acts).max() <= 1e-5
    assert np.abs(capture.softmax - probs).max() <= 1e-6


def test_folkrnn_pickle_with_a_wrong_shape_names_the_array(tmp_path):
    rng = np.random.default_rng(0)
    vocab = small_model().vocab
    params = folkrnn_pickle_params(len(vocab), 8, rng)
    params[16] = params[16][:, :5]  # layer 2's W_hi (layer 2 starts at 1 + 14)
    path = tmp_path / "bad.pkl"
    write_folkrnn_pickle(path, vocab, params)
    with pytest.raises(CheckpointError, match=r"param_values\[16\] has shape \(8, 5\), expected \(8, 8\)"):
        load_folkrnn_pickle(path)


def test_a_file_that_is_not_a_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="junk.pkl: not a readable pickle"):
        load_model(path)


def test_training_forward_matches_capture_softmax(excerpt, model):
    tokens = excerpt[0].tokens
    idx = torch.tensor([model.encode(["<s>", *tokens])])
    with torch.no_grad():
        p = torch.softmax(model(idx), dim=-1)[0].numpy()
    assert np.abs(p - model.read([tokens])[0].softmax).max() <= 1e-5


# ---- the pickle loader runs nothing but numpy's array rebuilding ------------------------


class RunsOnLoad:
    """A pickle payload: unpickling calls ``call(*args)``."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def payloads(marker) -> dict:
    """Each touches ``marker`` when unpickled by plain pickle.load."""
    touch = ["touch", str(marker)]
    return {
        "os.system": RunsOnLoad(os.system, f"touch {marker}"),
        "subprocess.Popen": RunsOnLoad(subprocess.Popen, touch),
        "subprocess.check_output": RunsOnLoad(subprocess.check_output, touch),
        "builtins.eval": RunsOnLoad(eval, f"open({str(marker)!r}, 'w').close()"),
    }


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize(
    "name", ["os.system", "subprocess.Popen", "subprocess.check_output", "builtins.eval"]
)
def test_a_pickle_that_runs_code_is_refused_before_it_runs(tmp_path, name, protocol):
    marker = tmp_path / "ran"
    path = tmp_path / "folkrnn_v2.pkl"
    data = pickle.dumps(payloads(marker)[name], protocol=protocol, fix_imports=False)
    path.write_bytes(data)
    module, _, function = name.rpartition(".")
    module = "(os|posix)" if module == "os" else module
    with pytest.raises(
        CheckpointError, match=rf"folkrnn_v2.pkl: refuses to load: .*global '{module}\.{function}'"
    ):
        load_model(path)
    assert not marker.exists()
    result = pickle.loads(data)  # what plain pickle.load does with the same file
    if isinstance(result, subprocess.Popen):
        result.wait()
    assert marker.exists()


def test_a_model_dict_with_a_call_inside_is_refused_before_anything_runs(tmp_path):
    """A file that would load as a valid model after running its payload: refused when
    the pickle names the payload's function, before any of it is called."""
    marker = tmp_path / "ran"
    vocab = small_model().vocab
    params = folkrnn_pickle_params(len(vocab), 8, np.random.default_rng(0))
    model_dict = {"token2idx": {token: k for k, token in enumerate(vocab)}, "param_values": params}
    hidden = {**model_dict, "note": RunsOnLoad(os.system, f"touch {marker}")}
    as_eval = RunsOnLoad(eval, f"open({str(marker)!r}, 'w').close() or {{}}")  # then a dict
    for payload in (hidden, {**model_dict, "param_values": [as_eval, *params]}):
        path = tmp_path / "model.pkl"
        path.write_bytes(pickle.dumps(payload, protocol=2))
        with pytest.raises(CheckpointError, match="refuses to load"):
            load_model(path)
        assert not marker.exists()
    path.write_bytes(pickle.dumps(model_dict, protocol=2))
    assert load_model(path).config.n_units == 8  # the same dict without the payload loads


@pytest.mark.parametrize(
    "program, refusal",
    [
        # _reconstruct asked to build something other than numpy.ndarray
        (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\ndtype\n(I0\ntS'b'\ntR.", "_reconstruct is given"),
        (b"cnumpy\ndtype\n(S'O'\nI0\nI1\ntR.", "holds Python objects"),  # object arrays
        (b"c_codecs\nencode\n(S'x'\nS'zlib'\ntR.", "_codecs.encode is given"),
        (b"ccopy_reg\n_reconstructor\n(cnumpy\nndarray\ncnumpy\nndarray\nNtR.", "'copy_reg._reconstructor'"),
    ],
)
def test_admitted_globals_build_nothing_but_arrays(tmp_path, program, refusal):
    path = tmp_path / "model.pkl"
    path.write_bytes(program)
    with pytest.raises(CheckpointError, match=rf"model.pkl: refuses to load: .*{refusal}"):
        load_folkrnn_pickle(path)


class Python2Pickler(pickle._Pickler):
    """Pickles as Python 2 did for folk-rnn: every string a byte string (STRING or
    BINSTRING, read back with encoding="latin1"), numpy's module numpy.core.multiarray."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_byte_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if self.proto == 0:
            escaped = "".join(chr(b) if 32 <= b < 127 and b not in b"\\'" else f"\\x{b:02x}" for b in data)
            self.write(b"S'" + escaped.encode("ascii") + b"'\n")
        elif len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_byte_string

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{obj.__qualname__}\n".encode("ascii"))
        self.memoize(obj)


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_python_2_pickles_of_every_protocol_load(tmp_path, protocol):
    """Every key folk-rnn's train_rnn.py saves (with cPickle, protocol 2): besides the
    arrays, losses as 0-d arrays and numpy scalars (numpy.core.multiarray.scalar)."""
    vocab = small_model().vocab
    params = folkrnn_pickle_params(len(vocab), 8, np.random.default_rng(protocol))
    saved = {
        "configuration": "config5",
        "experiment_id": "config5-data_v2-20160112-222521",
        "epoch_since_start": 99,
        "iters_since_start": 28000,
        "losses_train": [np.array(1.25, dtype=np.float32), np.array(1.5, dtype=np.float32)],
        "losses_eval_valid": [np.float64(1.31)],
        "learning_rate": np.float32(0.003),
        "token2idx": {token: k for k, token in enumerate(vocab)},
        "param_values": params,
    }
    stream = io.BytesIO()
    Python2Pickler(stream, protocol).dump(saved)
    assert b"cnumpy.core.multiarray\nscalar\n" in stream.getvalue()
    path = tmp_path / "folkrnn_v2.pkl"
    path.write_bytes(stream.getvalue())
    model = load_folkrnn_pickle(path)
    assert model.vocab == vocab
    np.testing.assert_array_equal(model.W_out.detach().numpy(), params[-2])
    np.testing.assert_array_equal(model.W_x[0][:, :8].detach().numpy(), params[1])


def test_a_pickle_whose_embedding_is_not_one_hot_is_refused(tmp_path):
    """folk-rnn v2 feeds tokens one-hot (an identity embedding, never trained); a learned
    embedding would be silently skipped by a model that reads rows of W_x."""
    vocab = small_model().vocab
    params = folkrnn_pickle_params(len(vocab), 8, np.random.default_rng(0))
    params[0] = params[0][::-1].copy()
    path = tmp_path / "folkrnn_v2.pkl"
    write_folkrnn_pickle(path, vocab, params)
    with pytest.raises(CheckpointError, match=r"param_values\[0\] is not the one-hot \(identity\) embedding"):
        load_folkrnn_pickle(path)


# ---- converting a pickle into a checkpoint -----------------------------------------------


def test_convert_writes_a_checkpoint_that_reads_exactly_as_the_pickle(tmp_path, excerpt):
    vocab = small_model().vocab
    pickle_path, out = tmp_path / "folkrnn_v2.pkl", tmp_path / "models" / "folkrnn_v2.safetensors"
    write_folkrnn_pickle(pickle_path, vocab, folkrnn_pickle_params(len(vocab), 16, np.random.default_rng(3)))
    assert convert.main([str(pickle_path), str(out)]) == 0
    extra = checkpoint_header(out)["extra"]
    assert extra == {"converted_from": "folkrnn_v2.pkl", "source_sha256": file_sha256(pickle_path)}
    tunes = [tune.tokens for tune in excerpt[:3]]
    for original, converted in zip(load_model(pickle_path).read(tunes), load_model(out).read(tunes)):
        np.testing.assert_array_equal(original.activations, converted.activations)
        np.testing.assert_array_equal(original.softmax, converted.softmax)
    with pytest.raises(SystemExit):  # an existing checkpoint stays unless --force
        convert.main([str(pickle_path), str(out)])
    first = file_sha256(out)
    assert convert.main([str(pickle_path), str(out), "--force"]) == 0
    assert file_sha256(out) == first  # the same pickle makes the same bytes: stable provenance


def test_convert_refuses_a_malicious_pickle_and_writes_nothing(tmp_path, capsys):
    marker, out = tmp_path / "ran", tmp_path / "model.safetensors"
    pickle_path = tmp_path / "folkrnn_v2.pkl"
    pickle_path.write_bytes(pickle.dumps(RunsOnLoad(os.system, f"touch {marker}")))
    assert convert.main([str(pickle_path), str(out)]) == 1
    assert "refuses to load" in capsys.readouterr().err
    assert not marker.exists() and not out.exists()


def test_convert_runs_as_a_module(tmp_path):
    vocab = small_model().vocab
    pickle_path, out = tmp_path / "folkrnn_v2.pkl", tmp_path / "folkrnn_v2.safetensors"
    write_folkrnn_pickle(pickle_path, vocab, folkrnn_pickle_params(len(vocab), 8, np.random.default_rng(0)))
    command = [sys.executable, "-m", "folkrnn_lens.model.convert", str(pickle_path), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "3 layers of 8 units" in done.stdout and file_sha256(pickle_path) in done.stdout
    assert load_model(out).config.n_units == 8


# ---- damaged checkpoints name the file ---------------------------------------------------


@pytest.mark.parametrize("damage", ["empty", "half", "random bytes", "data short"])
def test_a_damaged_checkpoint_is_an_error_naming_the_file(tmp_path, model, damage):
    whole = tmp_path / "whole.safetensors"
    save_checkpoint(model, whole)
    data = whole.read_bytes()
    damaged = {
        "empty": b"",
        "half": data[: len(data) // 2],
        "random bytes": np.random.default_rng(0).bytes(4096),
        "data short": data[:-64],  # the header parses; its tensors end past the file
    }[damage]
    path = tmp_path / "model.safetensors"
    path.write_bytes(damaged)
    for load in (load_checkpoint, checkpoint_header, load_model):
        with pytest.raises(CheckpointError, match=r"model.safetensors: not a complete checkpoint"):
            load(path)


@pytest.mark.parametrize("change", ["missing tensor", "wrong shape"])
def test_a_checkpoint_whose_tensors_do_not_fit_names_the_file(tmp_path, model, change):
    from safetensors import safe_open
    from safetensors.torch import save_file

    whole = tmp_path / "whole.safetensors"
    save_checkpoint(model, whole)
    with safe_open(str(whole), framework="pt") as handle:
        metadata, tensors = handle.metadata(), {name: handle.get_tensor(name) for name in handle.keys()}
    if change == "missing tensor":
        del tensors["W_out"]
    else:
        tensors["W_out"] = tensors["W_out"][:, :5].contiguous()
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(
        CheckpointError, match=r"model.safetensors: weights do not fit the stored config.*W_out"
    ):
        load_model(path)


# ---- read and generate refuse what they cannot do -----------------------------------------


@pytest.mark.parametrize(
    "transcriptions, error, message",
    [
        ([], ValueError, "read was given no transcriptions"),
        ("M:4/4 K:Cmaj A B", TypeError, "read takes a list of transcriptions"),
        (["M:4/4 K:Cmaj A B"], TypeError, r"transcription is a string, not a list of tokens.*split\(\)"),
        ([["M:4/4", "K:Cmaj", "A", "</s>", "B"]], ValueError, "token '</s>' at position 4"),
        ([["<s>", "M:4/4", "K:Cmaj", "A"]], ValueError, "transcription starts with '<s>'"),
        (
            [["M:4/4", "K:Cmaj", "A"], ["M:4/4", "K:Cmaj", "H7"]],
            UnknownTokenError,
            "transcription 1: token 'H7'",
        ),
    ],
)
def test_read_refuses_what_is_not_a_list_of_tunes(model, transcriptions, error, message):
    with pytest.raises(error, match=message):
        model.read(transcriptions)


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"seeds": []}, ValueError, "no seeds"),
        ({"seeds": 3}, TypeError, "seeds must be a list of ints"),
        ({"seeds": [1.5]}, TypeError, "seeds must be ints, got 1.5"),
        ({"seeds": ["1"]}, TypeError, "seeds must be ints"),
        ({"seeds": [-1]}, ValueError, "seeds must be 0 or more"),
        ({"max_length": 10.5}, TypeError, "max_length must be an int, got 10.5"),
        ({"max_length": "100"}, TypeError, "max_length must be an int"),
        ({"max_length": True}, TypeError, "max_length must be an int, got True"),
        ({"max_length": MAX_LENGTH + 1}, ValueError, f"max_length must be from 1 to {MAX_LENGTH}"),
        ({"max_length": 0}, ValueError, "max_length must be from 1"),
        ({"temperature": float("nan")}, ValueError, "temperature must be a positive finite number, got nan"),
        ({"temperature": float("inf")}, ValueError, "temperature must be a positive finite number, got inf"),
        ({"temperature": 0.0}, ValueError, "temperature must be a positive"),
        ({"temperature": -1}, ValueError, "temperature must be a positive"),
        ({"temperature": "1"}, TypeError, "temperature must be a number"),
        ({"prime": "M:4/4 K:Cmaj"}, TypeError, "prime is a string, not a list of tokens"),
        (
            {"prime": ["Q"]},
            UnknownTokenError,
            "prime: token 'Q' at position 0 is not in the model's vocabulary",
        ),
        ({"prime": ["M:4/4", "</s>"]}, ValueError, "prime: token '</s>' at position 1"),
    ],
)
def test_generate_refuses_arguments_it_cannot_use(model, arguments, error, message):
    arguments = {"seeds": [0], "temperature": 1.0, "prime": None, "max_length": 20} | arguments
    with pytest.raises(error, match=message):
        model.generate(**arguments)


# ---- generation's record -----------------------------------------------------------------


def test_generation_records_in_chunks_and_reads_back_exactly_across_them(model, monkeypatch):
    """Tunes longer than a chunk: the record grows a chunk at a time, never copied while
    it grows, and reading the tune still gives exactly what generating it recorded."""
    monkeypatch.setattr(model_module, "RECORD_CHUNK", 16)
    sizes, record_buffer = [], FolkRNN._record_buffer

    def counted_record_buffer(self, slots, batch):
        sizes.append(slots)
        return record_buffer(self, slots, batch)

    monkeypatch.setattr(FolkRNN, "_record_buffer", counted_record_buffer)
    captures = model.generate([1, 2, 3], 0.9, None, 100)
    steps = max(len(capture.input_tokens) for capture in captures)
    assert steps > 16 and sizes == [min(16, 100 - k) for k in range(0, steps, 16)]
    for capture in captures:
        finished = capture.output_tokens[-1] == "</s>"
        tokens = capture.input_tokens[1:] if finished else capture.output_tokens
        read = model.read([tokens])[0]
        n = len(capture.input_tokens)
        np.testing.assert_array_equal(read.activations[:, :, :n], capture.activations)
        if finished:
            np.testing.assert_array_equal(read.softmax, capture.softmax)


def test_a_tune_cut_at_max_length_is_a_warning_naming_seed_and_length(model, caplog):
    with torch.no_grad():
        model.b_out[model.token2idx["</s>"]] = -1e4  # never ends
    with caplog.at_level(logging.WARNING, logger="folkrnn_lens.model.folkrnn"):
        (capture,) = model.generate([7], 1.0, None, 12)
    assert len(capture.input_tokens) == 12
    assert "seed 7: the tune reached max_length 12 steps without </s>" in caplog.text
    caplog.clear()
    with torch.no_grad():
        model.b_out[model.token2idx["</s>"]] = 1e4  # ends at once
    with caplog.at_level(logging.WARNING, logger="folkrnn_lens.model.folkrnn"):
        (capture,) = model.generate([7], 1.0, None, 12)
    assert capture.output_tokens == ["</s>"] and not caplog.text
