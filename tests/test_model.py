import pickle
import random

import numpy as np
import pytest
import torch

from folkrnn_lens.model import (
    QUANTITIES,
    CheckpointError,
    FolkRNN,
    UnknownTokenError,
    load_checkpoint,
    load_folkrnn_pickle,
    load_model,
    save_checkpoint,
)
from folkrnn_lens.reference import reference_read, run_reference

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
    first = model.generate([7, 8], temperature=1.0, max_length=120)
    again = model.generate([7], temperature=1.0, max_length=120)
    assert first[0].input_tokens == again[0].input_tokens
    assert first[0].input_tokens != first[1].input_tokens
    np.testing.assert_array_equal(first[0].activations, again[0].activations)  # rows alone
    repeat = model.generate([7, 8], temperature=1.0, max_length=120)
    for a, b in zip(first, repeat):
        assert a.input_tokens == b.input_tokens
        np.testing.assert_array_equal(a.activations, b.activations)
        np.testing.assert_array_equal(a.softmax, b.softmax)


def test_reading_a_generated_tune_gives_exactly_the_recorded_activations(model):
    for seed in (1, 2, 3):
        generated = model.generate([seed], temperature=0.9, max_length=150)[0]
        finished = generated.output_tokens[-1] == "</s>"
        tokens = generated.input_tokens[1:] if finished else generated.output_tokens
        read = model.read([tokens])[0]
        n = len(generated.input_tokens)
        assert read.input_tokens[:n] == generated.input_tokens
        np.testing.assert_array_equal(read.activations[:, :, :n], generated.activations)
        if finished:
            np.testing.assert_array_equal(read.softmax, generated.softmax)


def test_generation_stops_at_end_token_or_max_length(model):
    for capture in model.generate(list(range(6)), max_length=40):
        n = len(capture.input_tokens)
        assert n <= 40
        assert capture.input_tokens[0] == "<s>"
        assert "</s>" not in capture.input_tokens
        assert capture.output_tokens[-1] == "</s>" or n == 40
        assert capture.input_tokens[1:] == capture.output_tokens[:-1]


def test_prime_tokens_are_fed_first(model):
    prime = ["M:6/8", "K:Cdor", "c"]
    capture = model.generate([3], prime=prime, max_length=50)[0]
    assert capture.input_tokens[:4] == ["<s>", *prime]
    with pytest.raises(UnknownTokenError, match="'K:Dmaj' at position 0"):
        model.generate([3], prime=["K:Dmaj"])


def test_low_temperature_approaches_greedy_decoding(model):
    capture = model.generate([0], temperature=1e-4, max_length=30)[0]
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
