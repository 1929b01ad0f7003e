"""A plain numpy reference of folk-rnn v2, one step and one gate at a time.

It follows docs/specification.md's equations literally, in the style of folk-rnn's own
``sample_rnn.py``: separate weight matrices per gate, one-hot input vectors,
``np.dot`` per gate. Tests check the fast capture against it, and the benchmark
uses it as the per-step baseline. Not for production use: it is slow on purpose.
"""

from __future__ import annotations

import numpy as np

from folkrnn_lens.model.folkrnn import QUANTITIES, FolkRNN


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def gate_weights(model: FolkRNN, dtype=np.float64) -> list[dict[str, np.ndarray]]:
    """Per layer: W_x{i,f,c,o}, W_h{i,f,c,o}, b_{i,f,c,o}, h0, c0 as separate arrays."""
    H = model.config.n_units
    layers = []
    for layer in range(model.config.n_layers):
        W_x = model.W_x[layer].detach().cpu().numpy().astype(dtype)
        W_h = model.W_h[layer].detach().cpu().numpy().astype(dtype)
        b = model.b[layer].detach().cpu().numpy().astype(dtype)
        params = {
            "h0": model.h0[layer].detach().cpu().numpy().astype(dtype),
            "c0": model.c0[layer].detach().cpu().numpy().astype(dtype),
        }
        for k, gate in enumerate("ifco"):
            cols = slice(k * H, (k + 1) * H)
            params[f"W_x{gate}"], params[f"W_h{gate}"], params[f"b_{gate}"] = (
                W_x[:, cols],
                W_h[:, cols],
                b[cols],
            )
        layers.append(params)
    return layers


def run_reference(
    layers: list[dict[str, np.ndarray]], W_out: np.ndarray, b_out: np.ndarray, indices: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Activations (L, 7, T, H) in QUANTITIES order and softmax (T, V) for one
    sequence of input token indices, computed step by step in the weights' dtype."""
    V, H = W_out.shape[1], layers[0]["W_hi"].shape[0]
    T, dtype = len(indices), W_out.dtype
    acts = np.zeros((len(layers), len(QUANTITIES), T, H), dtype)
    probs = np.zeros((T, V), dtype)
    h = [p["h0"].copy() for p in layers]
    c = [p["c0"].copy() for p in layers]
    for t, index in enumerate(indices):
        a = np.zeros(V, dtype)
        a[index] = 1.0  # one-hot x_t
        for layer, p in enumerate(layers):
            i = sigmoid(np.dot(a, p["W_xi"]) + np.dot(h[layer], p["W_hi"]) + p["b_i"])
            f = sigmoid(np.dot(a, p["W_xf"]) + np.dot(h[layer], p["W_hf"]) + p["b_f"])
            g_pre = np.dot(a, p["W_xc"]) + np.dot(h[layer], p["W_hc"]) + p["b_c"]
            g = np.tanh(g_pre)
            o = sigmoid(np.dot(a, p["W_xo"]) + np.dot(h[layer], p["W_ho"]) + p["b_o"])
            c[layer] = f * c[layer] + i * g
            h[layer] = o * np.tanh(c[layer])
            for k, value in enumerate((i, f, g_pre, g, o, c[layer], h[layer])):
                acts[layer, k, t] = value
            a = h[layer]
        logits = np.dot(a, W_out) + b_out
        e = np.exp(logits - logits.max())
        probs[t] = e / e.sum()
    return acts, probs


def reference_read(model: FolkRNN, tokens: list[str], dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """The reference activations of reading <s> + tokens with a FolkRNN's weights."""
    indices = model.encode(["<s>", *tokens])
    W_out = model.W_out.detach().cpu().numpy().astype(dtype)
    b_out = model.b_out.detach().cpu().numpy().astype(dtype)
    return run_reference(gate_weights(model, dtype), W_out, b_out, indices)
