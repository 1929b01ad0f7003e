"""folk-rnn v2 in PyTorch, in one file: the model, its checkpoints, and capture.

The model is a token-level LSTM language model: one-hot input, a stack of LSTM
layers without peepholes, a softmax over the vocabulary. Weights are kept in the
layout of the original Lasagne model (``x @ W``, gates concatenated in the order
i, f, g, o, which is also torch.nn.LSTM's order), so a folk-rnn pickle maps onto
the parameters without reshuffling and every equation of docs/specification.md reads
directly off the code:

    i = sigmoid(a W_xi + h W_hi + b_i)     f = sigmoid(a W_xf + h W_hf + b_f)
    g_pre = a W_xc + h W_hc + b_c          g = tanh(g_pre)
    o = sigmoid(a W_xo + h W_ho + b_o)     c = f * c + i * g      h = o * tanh(c)
    p = softmax(h_top W_out + b_out)

Capture (``read`` and ``generate``) runs one step function for both, so reading a
generated tune reproduces the activations recorded while generating it, bit for
bit. The quantities of a step are written straight into preallocated buffers
with ``out=`` kernels: no Python loop per unit or per gate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import pickle
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.func import functional_call

from .names import QUANTITIES
from .tokens import END, START

log = logging.getLogger(__name__)

PICKLE_LAYER_ARRAYS = (
    "W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f",
    "W_xc", "W_hc", "b_c", "W_xo", "W_ho", "b_o",
    "cell_init", "hid_init",
)  # fmt: skip
"""The 14 arrays of one Lasagne LSTMLayer in folk-rnn's pickle, in order."""


CHECKPOINT_FORMAT = "folkrnn-lens/1"


class UnknownTokenError(ValueError):
    """A token the model's vocabulary does not hold."""


class CheckpointError(ValueError):
    """A model file that is not what it claims to be."""


@dataclass(frozen=True)
class FolkRNNConfig:
    vocab_size: int = 137
    n_layers: int = 3
    n_units: int = 512
    dropout: float = 0.5  # after each LSTM layer, training only


@dataclass
class Capture:
    """Everything recorded for one tune.

    Step ``t`` reads ``input_tokens[t]``; ``output_tokens[t]`` is the token that
    came next. ``layers[l][t, q]`` is quantity ``QUANTITIES[q]`` of layer ``l + 1``
    at step ``t``: views into the capture buffer, so nothing is copied per tune (but a
    generated tune longer than RECORD_CHUNK steps, gathered once from generate's chunks).
    """

    input_tokens: list[str]
    output_tokens: list[str]
    layers: list[np.ndarray]  # per layer (T, 7, H) float32
    softmax: np.ndarray  # (T, V) float32

    def quantity(self, layer: int, name: str) -> np.ndarray:
        """(T, H) view of one quantity of one layer (counted from 1)."""
        return self.layers[layer - 1][:, QUANTITIES.index(name)]

    @property
    def activations(self) -> np.ndarray:
        """All of it as one (n_layers, 7, T, H) array (a copy)."""
        return np.stack([layer.transpose(1, 0, 2) for layer in self.layers])


class FolkRNN(nn.Module):
    prepack = True  # oneDNN-prepacked per-step products on CPU (_step_weights); False: addmm

    def __init__(self, config: FolkRNNConfig, vocab: list[str], initialise: bool = True):
        super().__init__()
        if len(vocab) != config.vocab_size or len(set(vocab)) != len(vocab):
            raise CheckpointError(
                f"vocabulary of {len(vocab)} tokens does not fit vocab_size {config.vocab_size}"
            )
        for token in (START, END):
            if token not in vocab:
                raise CheckpointError(f"vocabulary lacks {token!r}")
        self.config = config
        self.vocab = list(vocab)
        self.token2idx = {token: index for index, token in enumerate(vocab)}
        V, H, L = config.vocab_size, config.n_units, config.n_layers
        sizes_in = [V] + [H] * (L - 1)
        self.W_x = nn.ParameterList(nn.Parameter(torch.empty(n_in, 4 * H)) for n_in in sizes_in)
        self.W_h = nn.ParameterList(nn.Parameter(torch.empty(H, 4 * H)) for _ in range(L))
        self.b = nn.ParameterList(nn.Parameter(torch.empty(4 * H)) for _ in range(L))
        self.h0 = nn.ParameterList(nn.Parameter(torch.zeros(H)) for _ in range(L))
        self.c0 = nn.ParameterList(nn.Parameter(torch.zeros(H)) for _ in range(L))
        self.W_out = nn.Parameter(torch.empty(H, V))
        self.b_out = nn.Parameter(torch.zeros(V))
        if initialise:  # loaders overwrite every weight: skip the SVDs
            self.reset_parameters()

    # ---- initialisation ----------------------------------------------------------

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """folk-rnn v2's initialisation (its train_rnn.py): per gate, Glorot-uniform
        input weights and orthogonal recurrent weights; zero biases but the forget
        gate's at 5; an orthogonal (unit-norm) initial h and a zero initial c;
        an orthogonal output layer with zero bias."""
        H = self.config.n_units
        for W_x, W_h, b, h0, c0 in zip(self.W_x, self.W_h, self.b, self.h0, self.c0):
            for gate in range(4):
                cols = slice(gate * H, (gate + 1) * H)
                bound = math.sqrt(6.0 / (W_x.shape[0] + H))
                W_x[:, cols] = torch.empty(W_x.shape[0], H).uniform_(-bound, bound, generator=generator)
                W_h[:, cols] = _orthogonal(H, H, generator)
            b.zero_()
            b[H : 2 * H] = 5.0
            h0.copy_(_orthogonal(1, H, generator)[0])
            c0.zero_()
        self.W_out.copy_(_orthogonal(H, self.config.vocab_size, generator))
        self.b_out.zero_()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What folk-rnn trained: everything but the initial states (Lasagne's
        learn_init=False keeps hid_init and cell_init fixed)."""
        fixed = {id(p) for p in (*self.h0, *self.c0)}
        return [p for p in self.parameters() if id(p) not in fixed]

    # ---- tokens --------------------------------------------------------------------

    def encode(self, tokens: list[str]) -> list[int]:
        """Token indices; an unknown token is an error naming it and its position."""
        unknown = [(position, token) for position, token in enumerate(tokens) if token not in self.token2idx]
        if unknown:
            position, token = unknown[0]
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise UnknownTokenError(
                f"token {token!r} at position {position} is not in the model's vocabulary of "
                f"{len(self.vocab)} tokens{more}"
            )
        return [self.token2idx[token] for token in tokens]

    def _encode_tune(self, tokens, label: str, first: int = 0, name_unknown: bool = True) -> list[int]:
        """encode for the tokens of a tune (read) or a prime (generate): a list of tokens
        that neither starts with <s> nor holds </s>, which read and generate add
        themselves. (<s> later on stays: the model can sample it, and reading a generated
        tune must give what generating it recorded.) Messages begin with label and count
        positions from ``first``; an unknown token's names label only if name_unknown."""
        if isinstance(tokens, str):
            raise TypeError(
                f"{label} is a string, not a list of tokens: split it into tokens first "
                f"(e.g. {tokens[:24]!r}.split())"
            )
        tokens = list(tokens)
        if tokens[:1] == [START]:
            raise ValueError(f"{label} starts with {START!r}: give the tune's tokens only, {START} is added")
        if END in tokens:
            raise ValueError(
                f"{label}: token {END!r} at position {tokens.index(END) + first}: give the tune's tokens "
                f"only, {END} ends the tune (read adds it; generate stops at it)"
            )
        try:
            return self.encode([START] * first + tokens)[first:]
        except UnknownTokenError as error:
            if not name_unknown:
                raise
            raise UnknownTokenError(f"{label}: {error}") from None

    # ---- training forward: the same weights through torch's fused LSTM --------------

    def torch_lstm(self) -> nn.LSTM:
        """A torch.nn.LSTM holding a copy of these weights (b_hh zero)."""
        cfg = self.config
        lstm = nn.LSTM(cfg.vocab_size, cfg.n_units, cfg.n_layers, batch_first=True)
        with torch.no_grad():
            for name, tensor in self._lstm_weights().items():
                getattr(lstm, name).copy_(tensor)
        return lstm.to(self.W_out.device)

    def _lstm_weights(self) -> dict[str, torch.Tensor]:
        weights = {}
        for layer in range(self.config.n_layers):
            weights[f"weight_ih_l{layer}"] = self.W_x[layer].T
            weights[f"weight_hh_l{layer}"] = self.W_h[layer].T
            weights[f"bias_ih_l{layer}"] = self.b[layer]
            weights[f"bias_hh_l{layer}"] = torch.zeros_like(self.b[layer])
        return weights

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for token indices (B, T), with dropout after each layer
        in training mode. Runs torch's fused LSTM kernel on this model's weights."""
        cfg = self.config
        B = idx.shape[0]
        x = nn.functional.one_hot(idx, cfg.vocab_size).to(self.W_out.dtype)  # (B, T, V)
        for layer in range(cfg.n_layers):
            lstm = _single_layer_lstm(x.shape[-1], cfg.n_units, x.device)
            weights = {
                "weight_ih_l0": self.W_x[layer].T,
                "weight_hh_l0": self.W_h[layer].T,
                "bias_ih_l0": self.b[layer],
                "bias_hh_l0": torch.zeros_like(self.b[layer]),
            }
            h0 = self.h0[layer].expand(1, B, -1).contiguous()
            c0 = self.c0[layer].expand(1, B, -1).contiguous()
            x, _ = functional_call(lstm, weights, (x, (h0, c0)))  # (B, T, H)
            x = nn.functional.dropout(x, cfg.dropout, self.training)
        return x @ self.W_out + self.b_out  # (B, T, V)

    # ---- capture ------------------------------------------------------------------------

    def _step_weights(self) -> list:
        """Per layer, the weights of the per-step product (_pre_activations): W_h for
        layer 1 (its one-hot input is a row lookup), and [W_x; W_h] above it, so a
        layer costs one matrix product a step, not two. On CPU in float32 they are
        prepacked for oneDNN (the kernels of torch's own fused CPU paths), whose
        products at these shapes take 1.3 to 2 times less than addmm's. Packed for
        one fixed batch size, a row's result does not depend on the batch it is in
        (tested from 1 to 600 rows), so read and generate agree bit for bit."""
        layers = range(1, self.config.n_layers)
        weights = [self.W_h[0].detach()] + [torch.cat([self.W_x[k], self.W_h[k]]).detach() for k in layers]
        if not (self.prepack and _onednn_packable(weights[0])):
            return weights
        reorder = torch.ops.mkldnn._reorder_linear_weight
        return [_Prepacked(reorder(w.t().contiguous(), PACKED_BATCH)) for w in weights]

    def _pre_activations(
        self, layer: int, state: torch.Tensor, token: torch.Tensor, weights: list, z: torch.Tensor
    ) -> None:
        """z = b + [a, h] [W_x; W_h] of one layer. ``state`` is (B, L * H), every layer's
        h side by side, so layer l's input (layer l - 1's h) and its own previous h
        are one strided slice; layer 1 adds the row of W_x its token picks (exact)."""
        H = self.config.n_units
        inputs = state[:, :H] if layer == 0 else state[:, (layer - 1) * H : (layer + 1) * H]
        bias, W = self.b[layer].detach(), weights[layer]
        if isinstance(W, _Prepacked):
            z.copy_(torch.ops.mkldnn._linear_pointwise(inputs, W.weight, bias, "none", [], ""))
        else:
            torch.addmm(bias, inputs, W, out=z)
        if layer == 0:
            z.add_(self.W_x[0][token])

    def _initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """h as (B, L, H) (see _pre_activations) and c as (L, B, H)."""
        h = torch.stack([h0.detach().expand(batch, -1) for h0 in self.h0], dim=1).contiguous()
        c = torch.stack([c0.detach().expand(batch, -1) for c0 in self.c0]).contiguous()
        return h, c

    def _record_buffer(self, slots: int, batch: int) -> torch.Tensor:
        cfg = self.config
        shape = (slots, cfg.n_layers, len(QUANTITIES), batch, cfg.n_units)
        return torch.empty(shape, device=self.W_out.device)

    def _gates(self, z: torch.Tensor, c: torch.Tensor, record: torch.Tensor) -> None:
        """Every quantity from the pre-activations z (..., B, 4H) and the previous cell
        state c (..., B, H), written into record (..., 7, B, H) in QUANTITIES order."""
        H = self.config.n_units
        i, f, g_pre, g, o, c_new, h_new = record.unbind(-3)
        torch.sigmoid(z[..., :H], out=i)
        torch.sigmoid(z[..., H : 2 * H], out=f)
        g_pre.copy_(z[..., 2 * H : 3 * H])
        torch.tanh(g_pre, out=g)
        torch.sigmoid(z[..., 3 * H :], out=o)
        torch.mul(f, c, out=c_new).addcmul_(i, g)
        torch.tanh(c_new, out=h_new).mul_(o)

    def _softmax(self, h_top: torch.Tensor) -> torch.Tensor:
        """p (T, V) of one tune from its top-layer h (T, H); read and generate both
        compute the recorded softmax here, on the same shapes, so they agree exactly."""
        return torch.softmax(torch.addmm(self.b_out, h_top.contiguous(), self.W_out), dim=-1)

    def _capture(self, tokens: list[int], layers: list[torch.Tensor]) -> Capture:
        """A tune's capture from its per-layer (T, 7, H) views; tokens has T + 1 entries."""
        words = [self.vocab[k] for k in tokens]
        return Capture(
            input_tokens=words[:-1],
            output_tokens=words[1:],
            layers=[_to_numpy(layer) for layer in layers],
            softmax=_to_numpy(self._softmax(layers[-1][:, QUANTITIES.index("h")])),
        )

    @torch.no_grad()
    def read(self, transcriptions: list[list[str]]) -> list[Capture]:
        """Teacher forcing: feed <s> and each transcription's tokens, a batch at a time,
        and record every quantity at every step.

        The layers run as a wavefront: pass k computes step k of layer 1, step k - 1
        of layer 2, and so on, so the gates of all layers are computed together,
        with a third of the kernel calls. Every matrix product has the same shape
        as in ``generate``, which makes the two agree bit for bit. Shorter tunes are padded
        at the end, which cannot change their earlier steps.
        """
        if isinstance(transcriptions, str):
            raise TypeError("read takes a list of transcriptions, each a list of tokens, not a string")
        transcriptions = list(transcriptions)
        if not transcriptions:
            raise ValueError("read was given no transcriptions")
        L, start, end = self.config.n_layers, self.token2idx[START], self.token2idx[END]
        batch = len(transcriptions) > 1  # then messages say which transcription
        labels = [f"transcription {k}" if batch else "transcription" for k in range(len(transcriptions))]
        bodies = [self._encode_tune(tokens, label, 1, batch) for label, tokens in zip(labels, transcriptions)]
        sequences = [[start, *body, end] for body in bodies]  # messages count <s> as position 0
        B, T = len(sequences), max(len(seq) for seq in sequences) - 1
        idx = torch.full((B, T + L), end, dtype=torch.long)
        for row, seq in enumerate(sequences):
            idx[row, : len(seq) - 1] = torch.tensor(seq[:-1])
        idx = idx.to(self.W_out.device)
        h, c = self._initial_state(B)
        state, weights = h.view(B, -1), self._step_weights()
        z = torch.empty(L, B, 4 * self.config.n_units, device=h.device)
        record = self._record_buffer(T + L - 1, B)  # pass k, layer l holds step k - l
        for k in range(T + L - 1):
            for layer in range(L):  # every layer from the previous pass's state
                self._pre_activations(layer, state, idx[:, k], weights, z[layer])
            self._gates(z, c, record[k])
            live = slice(max(0, k - T + 1), min(L, k + 1))  # layers with a real step now
            h[:, live] = record[k, live, QUANTITIES.index("h")].transpose(0, 1)
            c[live] = record[k, live, QUANTITIES.index("c")]
        captures = []
        for row, seq in enumerate(sequences):
            n = len(seq) - 1
            layers = [record[layer : layer + n, layer, :, row] for layer in range(L)]
            captures.append(self._capture(seq, layers))
        return captures

    @torch.no_grad()
    def generate(
        self,
        seeds: list[int],
        temperature: float = 1.0,
        prime: list[str] | None = None,
        max_length: int = 1000,
    ) -> list[Capture]:
        """Sample one tune per seed from <s> (and the prime tokens, fed as read), until
        </s> or ``max_length`` steps, recording as it goes.

        Each tune draws its uniform numbers from its own seeded generator, so a seed
        gives the same tune whatever else is in the batch. Sampling uses
        softmax(logits / temperature); the recorded softmax is the model's own p.
        """
        prime_idx = self._check_generate_arguments(seeds, temperature, prime, max_length)
        L, B, end = self.config.n_layers, len(seeds), self.token2idx[END]
        rngs = [np.random.default_rng(seed) for seed in seeds]
        h, c = self._initial_state(B)
        state, weights = h.view(B, -1), self._step_weights()
        z = torch.empty(L, B, 4 * self.config.n_units, device=h.device)
        chunks = []  # record buffers of RECORD_CHUNK steps, one more as tunes run on
        sequences = [[self.token2idx[START]] for _ in seeds]
        lengths = [max_length] * B
        live = np.ones(B, dtype=bool)
        for t in range(max_length):
            if t % RECORD_CHUNK == 0:
                chunks.append(self._record_buffer(min(RECORD_CHUNK, max_length - t), B))
            record = chunks[-1][t % RECORD_CHUNK]
            token = torch.tensor([seq[-1] for seq in sequences], device=self.W_out.device)
            for layer in range(L):  # the products of read, on the same shapes
                self._pre_activations(layer, state, token, weights, z[layer])
                self._gates(z[layer], c[layer], record[layer])
                h[:, layer] = record[layer, QUANTITIES.index("h")]
                c[layer] = record[layer, QUANTITIES.index("c")]
            if t < len(prime_idx):
                nxt = np.full(B, prime_idx[t])
            else:
                nxt = _sample(self._softmax(h[:, -1]), temperature, rngs, live)
            for row in np.flatnonzero(live):
                sequences[row].append(int(nxt[row]))
                if nxt[row] == end and t >= len(prime_idx):
                    live[row], lengths[row] = False, t + 1
            if not live.any():
                break
        for row in np.flatnonzero(live):
            log.warning(
                "seed %s: the tune reached max_length %d steps without %s", seeds[row], max_length, END
            )
        return [
            self._capture(seq[: n + 1], _recorded_steps(chunks, row, n).unbind(1))
            for row, (seq, n) in enumerate(zip(sequences, lengths))
        ]

    def _check_generate_arguments(self, seeds, temperature, prime, max_length) -> list[int]:
        """generate's arguments, each refused with a message naming what is wrong;
        returns the prime's token indices."""
        if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__"):
            raise TypeError(f"seeds must be a list of ints, one per tune, got {seeds!r}")
        if len(seeds) == 0:
            raise ValueError("generate was given no seeds (one per tune)")
        for seed in seeds:
            if not _is_int(seed):
                raise TypeError(f"seeds must be ints, got {seed!r}")
            if seed < 0:
                raise ValueError(
                    f"seeds must be 0 or more (numpy's generators take no negative seed), got {seed}"
                )
        if not _is_real(temperature):
            raise TypeError(f"temperature must be a number, got {temperature!r}")
        if not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        if not _is_int(max_length):
            raise TypeError(f"max_length must be an int, got {max_length!r}")
        if not 1 <= max_length <= MAX_LENGTH:
            raise ValueError(f"max_length must be from 1 to {MAX_LENGTH}, got {max_length}")
        prime_idx = self._encode_tune([] if prime is None else prime, "prime")
        if max_length <= len(prime_idx):
            raise ValueError(f"max_length {max_length} leaves no room after {len(prime_idx)} prime tokens")
        return prime_idx


MAX_LENGTH = 10_000
"""The most steps generate takes. Every step records 3 x 7 x 512 float32 per tune
(43 kB for folk-rnn v2), so 10,000 steps hold 430 MB a tune and 100,000 would hold
4.3 GB a tune; folk-rnn's tunes end within a few hundred steps."""

RECORD_CHUNK = 256  # steps per record buffer in generate: growing never copies the steps so far

PACKED_BATCH = 64  # oneDNN's batch-size hint: one kernel choice for every batch


@dataclass(frozen=True)
class _Prepacked:
    """Weights reordered for oneDNN's linear kernel (torch.ops.mkldnn)."""

    weight: torch.Tensor


def _onednn_packable(weight: torch.Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def _orthogonal(rows: int, cols: int, generator: torch.Generator | None) -> torch.Tensor:
    """Lasagne's Orthogonal(gain=1): the factor of a Gaussian matrix's SVD that has
    the requested shape (orthonormal rows or columns, whichever are fewer)."""
    a = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
    u, _, vh = torch.linalg.svd(a, full_matrices=False)
    return (u if u.shape == (rows, cols) else vh).float()


def _single_layer_lstm(n_in: int, n_units: int, device) -> nn.LSTM:
    return nn.LSTM(n_in, n_units, 1, batch_first=True, device=device)


def _recorded_steps(chunks: list[torch.Tensor], row: int, n: int) -> torch.Tensor:
    """Steps 0 to n - 1 of one tune from generate's record chunks, (n, L, 7, H): a view
    when they lie in the first chunk, else one copy of just these steps."""
    used = chunks[: -(-n // RECORD_CHUNK)]
    pieces = [chunk[: n - k * RECORD_CHUNK, :, :, row] for k, chunk in enumerate(used)]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return _is_int(value) or isinstance(value, (float, np.floating))


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _sample(p: torch.Tensor, temperature: float, rngs: list, live: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling of each live row, in float64, one uniform per row."""
    logp = np.log(np.maximum(_to_numpy(p).astype(np.float64), 1e-300)) / temperature
    weights = np.exp(logp - logp.max(axis=1, keepdims=True))
    cdf = np.cumsum(weights, axis=1)
    choice = np.zeros(len(rngs), dtype=np.int64)
    for row in np.flatnonzero(live):
        u = rngs[row].random() * cdf[row, -1]
        choice[row] = min(int(np.searchsorted(cdf[row], u, side="right")), cdf.shape[1] - 1)
    return choice


# ---- model files ----------------------------------------------------------------------


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(model: FolkRNN, path: str | Path, extra: dict | None = None) -> None:
    """Weights as float32 safetensors; vocabulary and config in its metadata."""
    from safetensors.torch import save_file

    tensors = {
        name: tensor.detach().float().cpu().contiguous() for name, tensor in model.state_dict().items()
    }
    # One metadata key: safetensors writes several in no fixed order, and the
    # file's bytes (its SHA-256 in every table) must not change between runs.
    header = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.config),
        "vocab": model.vocab,
        "extra": extra or {},
    }
    metadata = {"folkrnn_lens": json.dumps(header)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def _checkpoint_header(path: str | Path, handle) -> dict:
    try:
        header = json.loads((handle.metadata() or {}).get("folkrnn_lens", "{}"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: its folkrnn-lens metadata is not JSON: {error}") from error
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a folkrnn-lens checkpoint (no '{CHECKPOINT_FORMAT}' metadata)")
    return header


@contextmanager
def _open_safetensors(path: str | Path):
    """safe_open, whose errors (a truncated, empty or damaged file) name no file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            yield handle
    except SafetensorError as error:
        raise CheckpointError(
            f"{path}: not a complete checkpoint (truncated or damaged safetensors file: {error})"
        ) from error


def checkpoint_header(path: str | Path) -> dict:
    """A checkpoint's metadata: ``format``, ``config``, ``vocab`` and ``extra`` (for a
    trained model, the facts of its training run), without loading the weights."""
    with _open_safetensors(path) as handle:
        return _checkpoint_header(path, handle)


def load_checkpoint(path: str | Path) -> FolkRNN:
    with _open_safetensors(path) as handle:
        header = _checkpoint_header(path, handle)
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    try:
        config = FolkRNNConfig(**header["config"])
        model = FolkRNN(config, header["vocab"], initialise=False)
    except (KeyError, TypeError, CheckpointError) as error:
        raise CheckpointError(f"{path}: its metadata does not describe a model: {error}") from error
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        detail = " ".join(str(error).split())  # torch's message, on one line
        raise CheckpointError(f"{path}: weights do not fit the stored config: {detail}") from error
    return model.eval()


# A pickle is a program: its GLOBAL opcodes name any importable callable and REDUCE
# calls it, so plain pickle.load on a downloaded model file runs whatever the file
# says. folk-rnn's file holds dicts, lists, strings, numbers and numpy arrays, and
# rebuilding those needs only the globals below (Python 2 wrote numpy.core, numpy 2
# writes numpy._core, Python 3 writes bytes under protocols 0-2 as _codecs.encode;
# ndarray and dtype define __reduce__, so copy_reg._reconstructor never appears).
# Each maps to a guard that checks its arguments before calling numpy.

_NUMPY_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's own, wherever this numpy keeps it
_NUMPY_SCALAR = np.float32(0).__reduce__()[0]


class _Refusal(pickle.UnpicklingError):
    """A pickle that asks for something a folk-rnn model file never holds."""


def _dtype(spec, align=False, copy=False) -> np.dtype:
    """numpy.dtype for a type code ('f4', '<i8'), never for a Python class or objects."""
    if not isinstance(spec, str):
        raise _Refusal(f"numpy.dtype is given {type(spec).__name__} {spec!r}, not a type code")
    dtype = np.dtype(spec, bool(align), bool(copy))
    if dtype.hasobject:
        raise _Refusal(f"numpy.dtype {spec!r} holds Python objects")
    return dtype


def _reconstruct(subtype, shape, code) -> np.ndarray:
    """numpy's _reconstruct for a plain ndarray: numpy passes (ndarray, (0,), b'b') and
    fills the array in __setstate__; any other class would be instantiated."""
    if subtype is not np.ndarray or code not in ("b", b"b"):
        raise _Refusal(f"numpy's _reconstruct is given ({subtype!r}, {code!r}), not (numpy.ndarray, 'b')")
    if not isinstance(shape, tuple) or not all(type(n) is int for n in shape):
        raise _Refusal(f"numpy's _reconstruct is given the shape {shape!r}")
    return _NUMPY_RECONSTRUCT(np.ndarray, shape, code)


def _scalar(dtype, data):
    """A numpy scalar (np.float32(...)) from its raw bytes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, str)):
        raise _Refusal(f"numpy's scalar is given ({dtype!r}, {type(data).__name__})")
    return _NUMPY_SCALAR(dtype, data)


def _latin1_bytes(text, encoding) -> bytes:
    """What Python 3 writes a bytes object as under pickle protocols 0 to 2."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refusal(f"_codecs.encode is given ({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,  # only ever an argument of _reconstruct
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("_codecs", "encode"): _latin1_bytes,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Loads dicts, lists, tuples, strings, numbers and numpy arrays; refuses any other
    global when the pickle names it, before anything is called."""

    def __init__(self, stream, path: str | Path):
        super().__init__(stream, encoding="latin1")  # Python 2's byte strings as str
        self.path = path

    def find_class(self, module: str, name: str):
        admitted = _PICKLE_GLOBALS.get((module, name))
        if admitted is None:
            raise CheckpointError(
                f"{self.path}: refuses to load: the pickle asks for the global '{module}.{name}', which a "
                "folk-rnn model file never holds; a pickle can run any code it names, so only numpy "
                "arrays, dicts, lists, strings and numbers are admitted"
            )
        return admitted


def _float32_arrays(path, values) -> list[np.ndarray]:
    if not isinstance(values, (list, tuple)) or not all(
        isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in values
    ):
        raise CheckpointError(f"{path}: param_values is not a list of numeric arrays")
    return [v.astype(np.float32, copy=False) for v in values]


def load_folkrnn_pickle(path: str | Path) -> FolkRNN:
    """The original folk-rnn v2 model: a Python-2 pickle of a dict with ``token2idx``
    and ``param_values``, 45 Lasagne arrays (docs/specification.md): [0] the identity embedding,
    14 arrays per LSTM layer (PICKLE_LAYER_ARRAYS), then W_out and b_out. Read by
    _ArraysOnlyUnpickler, so a pickle that names anything else runs nothing."""
    with open(path, "rb") as stream:
        try:
            data = _ArraysOnlyUnpickler(stream, path).load()
        except CheckpointError:
            raise
        except _Refusal as error:
            raise CheckpointError(f"{path}: refuses to load: {error}") from error
        except Exception as error:
            raise CheckpointError(f"{path}: not a readable pickle: {error}") from error
    if not isinstance(data, dict) or not {"token2idx", "param_values"} <= set(data):
        raise CheckpointError(f"{path}: expected a dict with 'token2idx' and 'param_values'")
    token2idx, params = data["token2idx"], _float32_arrays(path, data["param_values"])
    if not isinstance(token2idx, dict) or not all(
        isinstance(token, str) and _is_int(index) for token, index in token2idx.items()
    ):
        raise CheckpointError(f"{path}: token2idx is not a dict of tokens to indices")
    n_layers, rest = divmod(len(params) - 3, len(PICKLE_LAYER_ARRAYS))
    if rest or n_layers < 1:
        raise CheckpointError(f"{path}: {len(params)} parameter arrays do not make 1 + 14*L + 2")
    vocab = [None] * len(token2idx)
    for token, index in token2idx.items():
        if 0 <= index < len(vocab):
            vocab[index] = token
    if None in vocab:
        raise CheckpointError(f"{path}: token2idx indices are not 0..{len(vocab) - 1}")
    V, H = len(vocab), params[2].shape[0]
    model = FolkRNN(FolkRNNConfig(vocab_size=V, n_layers=n_layers, n_units=H), vocab, initialise=False)
    expected = {"W_x": None, "W_h": (H, H), "b": (H,), "init": (1, H)}
    _check_shape(path, 0, params[0], (V, V))
    if not np.array_equal(params[0], np.eye(V, dtype=np.float32)):  # read takes rows of W_x instead
        raise CheckpointError(
            f"{path}: param_values[0] is not the one-hot (identity) embedding of folk-rnn v2; "
            "a model with a learned embedding is not supported"
        )
    with torch.no_grad():
        for layer in range(n_layers):
            arrays = dict(zip(PICKLE_LAYER_ARRAYS, params[1 + 14 * layer : 15 + 14 * layer]))
            n_in = V if layer == 0 else H
            for gate_pos, gate in enumerate("ifco"):
                offset = 1 + 14 * layer + 3 * gate_pos
                _check_shape(path, offset, arrays[f"W_x{gate}"], (n_in, H))
                _check_shape(path, offset + 1, arrays[f"W_h{gate}"], expected["W_h"])
                _check_shape(path, offset + 2, arrays[f"b_{gate}"], expected["b"])
                cols = slice(gate_pos * H, (gate_pos + 1) * H)
                model.W_x[layer][:, cols] = torch.from_numpy(arrays[f"W_x{gate}"])
                model.W_h[layer][:, cols] = torch.from_numpy(arrays[f"W_h{gate}"])
                model.b[layer][cols] = torch.from_numpy(arrays[f"b_{gate}"])
            _check_shape(path, 13 + 14 * layer, arrays["cell_init"], expected["init"])
            _check_shape(path, 14 + 14 * layer, arrays["hid_init"], expected["init"])
            model.c0[layer].copy_(torch.from_numpy(arrays["cell_init"][0]))
            model.h0[layer].copy_(torch.from_numpy(arrays["hid_init"][0]))
        _check_shape(path, len(params) - 2, params[-2], (H, V))
        _check_shape(path, len(params) - 1, params[-1], (V,))
        model.W_out.copy_(torch.from_numpy(params[-2]))
        model.b_out.copy_(torch.from_numpy(params[-1]))
    return model.eval()


def _check_shape(path, index: int, array: np.ndarray, shape: tuple) -> None:
    if array.shape != tuple(shape):
        raise CheckpointError(
            f"{path}: param_values[{index}] has shape {array.shape}, expected {tuple(shape)}"
        )


def use_device(device: str, threads: int) -> torch.device:
    """torch set up as config asks: ``threads`` fixed (BLAS results may depend on
    it, so results are the same bytes however many jobs run) and ``device`` checked."""
    torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but torch sees no CUDA device")
    return torch.device(device)


def load_model_on(path: str | Path, device: str, threads: int) -> FolkRNN:
    """load_model, on ``device`` with torch's ``threads`` set (use_device)."""
    return load_model(path).to(use_device(device, threads))


def load_model(path: str | Path) -> FolkRNN:
    """A folkrnn-lens checkpoint (.safetensors) or an original folk-rnn pickle (.pkl)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    if path.suffix == ".safetensors":
        return load_checkpoint(path)
    return load_folkrnn_pickle(path)
