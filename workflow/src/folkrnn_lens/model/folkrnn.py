"""folk-rnn v2 in PyTorch, in one file: its config, the module, the training forward
and capture (``read``, ``generate``). Model files are ``checkpoint.py``'s.

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

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch.func import functional_call

from folkrnn_lens.names import QUANTITIES
from folkrnn_lens.tokens.format import END, START

log = logging.getLogger(__name__)


class UnknownTokenError(ValueError):
    """A token the model's vocabulary does not hold."""


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
            raise ValueError(f"vocabulary of {len(vocab)} tokens does not fit vocab_size {config.vocab_size}")
        for token in (START, END):
            if token not in vocab:
                raise ValueError(f"vocabulary lacks {token!r}")
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

    # ---- the training forward -------------------------------------------------------

    def forward(self, idx: torch.Tensor, clip: float | None = None) -> torch.Tensor:
        """Logits (B, T, V) for token indices (B, T), with dropout after each layer in
        training mode: what training and evaluation run.

        ``clip`` None runs torch's fused LSTM kernel on this model's weights. A number
        runs the layers step by step instead, so that going back the gradient with
        respect to each step's gate pre-activations z = a W_x + h W_h + b is clamped to
        [-clip, clip]: Lasagne's ``LSTMLayer(grad_clipping=clip)``, which trained folk-rnn
        and which the fused kernel cannot do (``math.inf``: step by step, nothing
        clamped). Both give the same logits up to float rounding."""
        return self._fused_forward(idx) if clip is None else self._stepped_forward(idx, clip)

    def _fused_forward(self, idx: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        B = idx.shape[0]
        x = nn.functional.one_hot(idx, cfg.vocab_size).to(self.W_out.dtype)  # (B, T, V)
        for layer in range(cfg.n_layers):
            lstm = _single_layer_lstm(x.shape[-1], cfg.n_units, x.device)
            h0 = self.h0[layer].expand(1, B, -1).contiguous()
            c0 = self.c0[layer].expand(1, B, -1).contiguous()
            x, _ = functional_call(lstm, self._lstm_weights(layer, 0), (x, (h0, c0)))  # (B, T, H)
            x = nn.functional.dropout(x, cfg.dropout, self.training)
        return x @ self.W_out + self.b_out  # (B, T, V)

    def _stepped_forward(self, idx: torch.Tensor, clip: float) -> torch.Tensor:
        cfg = self.config
        H = cfg.n_units
        B, T = idx.shape
        x = None  # the input of the next layer, time-major (T, B, H)
        for layer in range(cfg.n_layers):
            if layer == 0:  # one-hot input: a W_x is a row lookup
                xw = nn.functional.embedding(idx.T, self.W_x[0]) + self.b[0]  # (T, B, 4H)
            else:
                xw = torch.addmm(self.b[layer], x.reshape(T * B, H), self.W_x[layer]).view(T, B, 4 * H)
            W_h = self.W_h[layer]
            h = self.h0[layer].expand(B, H)
            c = self.c0[layer].expand(B, H)
            hs = []
            for xw_t in xw.unbind(0):  # unbind, not xw[t]: one backward for all steps, not T
                z = _ClipGradient.apply(torch.addmm(xw_t, h, W_h), clip)  # (B, 4H): gates i, f, g, o
                i, f, g_pre, o = z.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g_pre)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
            x = nn.functional.dropout(torch.stack(hs), cfg.dropout, self.training)
        return (x @ self.W_out + self.b_out).transpose(0, 1)  # (B, T, V)

    def torch_lstm(self) -> nn.LSTM:
        """A torch.nn.LSTM holding a copy of these weights (b_hh zero): what tests and
        benchmarks compare capture with."""
        cfg = self.config
        lstm = nn.LSTM(cfg.vocab_size, cfg.n_units, cfg.n_layers, batch_first=True)
        with torch.no_grad():
            for layer in range(cfg.n_layers):
                for name, tensor in self._lstm_weights(layer, layer).items():
                    getattr(lstm, name).copy_(tensor)
        return lstm.to(self.W_out.device)

    def _lstm_weights(self, layer: int, as_layer: int) -> dict[str, torch.Tensor]:
        """Layer ``layer``'s weights named as layer ``as_layer`` of a torch.nn.LSTM."""
        return {
            f"weight_ih_l{as_layer}": self.W_x[layer].T,
            f"weight_hh_l{as_layer}": self.W_h[layer].T,
            f"bias_ih_l{as_layer}": self.b[layer],
            f"bias_hh_l{as_layer}": torch.zeros_like(self.b[layer]),
        }

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
        self, layer: int, state: torch.Tensor, x_rows: torch.Tensor, weights: list, z: torch.Tensor
    ) -> None:
        """z = b + [a, h] [W_x; W_h] of one layer. ``state`` is (B, L * H), every layer's
        h side by side, so layer l's input (layer l - 1's h) and its own previous h
        are one strided slice; layer 1 adds x_rows = a W_x, the row of W_x its token
        picks (``input_rows``; exact), or another input's where an intervention says."""
        H = self.config.n_units
        inputs = state[:, :H] if layer == 0 else state[:, (layer - 1) * H : (layer + 1) * H]
        bias, W = self.b[layer].detach(), weights[layer]
        if isinstance(W, _Prepacked):
            z.copy_(torch.ops.mkldnn._linear_pointwise(inputs, W.weight, bias, "none", [], ""))
        else:
            torch.addmm(bias, inputs, W, out=z)
        if layer == 0:
            z.add_(x_rows)

    def _initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """h as (B, L, H) (see _pre_activations) and c as (L, B, H)."""
        h = torch.stack([h0.detach().expand(batch, -1) for h0 in self.h0], dim=1).contiguous()
        c = torch.stack([c0.detach().expand(batch, -1) for c0 in self.c0]).contiguous()
        return h, c

    def _record_buffer(self, slots: int, batch: int) -> torch.Tensor:
        cfg = self.config
        shape = (slots, cfg.n_layers, len(QUANTITIES), batch, cfg.n_units)
        return torch.empty(shape, device=self.W_out.device)

    def _gates(self, z: torch.Tensor, c: torch.Tensor, record: torch.Tensor, edit=None) -> None:
        """Every quantity from the pre-activations z (..., B, 4H) and the previous cell
        state c (..., B, H), written into record (..., 7, B, H) in QUANTITIES order.
        ``edit(stage, record)``, where given, may change the recorded values in place
        once the gates are computed (stage "gates"), once c is ("c": h then follows
        from the edited c) and once h is ("h"): what an intervention hooks onto."""
        H = self.config.n_units
        i, f, g_pre, g, o, c_new, h_new = record.unbind(-3)
        torch.sigmoid(z[..., :H], out=i)
        torch.sigmoid(z[..., H : 2 * H], out=f)
        g_pre.copy_(z[..., 2 * H : 3 * H])
        torch.tanh(g_pre, out=g)
        torch.sigmoid(z[..., 3 * H :], out=o)
        if edit is not None:
            edit("gates", record)
        torch.mul(f, c, out=c_new).addcmul_(i, g)
        if edit is not None:
            edit("c", record)
        torch.tanh(c_new, out=h_new).mul_(o)
        if edit is not None:
            edit("h", record)

    # ---- the step function: generate and interventions ---------------------------------

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The state before step 0 of ``batch`` tunes: h (B, L, H) and c (L, B, H)."""
        return self._initial_state(batch)

    def input_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """a W_x of layer 1 for token indices (B,): the one-hot input's term, a row
        lookup. An intervention may pass other rows (no token, a mean input)."""
        return self.W_x[0].detach()[idx]

    def step_weights(self) -> list:
        """The per-step products' weights (prepacked where possible), made once a run."""
        return self._step_weights()

    def step(
        self,
        x_rows: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        weights: list,
        z: torch.Tensor,
        record: torch.Tensor,
        edit=None,
    ) -> None:
        """One step of every layer, bottom up, for a batch: layer 1's input term x_rows
        (B, 4H), the state h (B, L, H) and c (L, B, H), updated in place; record
        (L, 7, B, H) gets every quantity and z (L, B, 4H) the pre-activations.
        ``edit(layer, stage, record[layer])`` (layers from 0), where given, is called at
        each stage of ``_gates``. With no edit, a step is exactly what read records."""
        state = h.view(h.shape[0], -1)
        hi, ci = QUANTITIES.index("h"), QUANTITIES.index("c")
        for layer in range(self.config.n_layers):
            self._pre_activations(layer, state, x_rows, weights, z[layer])
            layer_edit = None if edit is None else (lambda stage, rec, layer=layer: edit(layer, stage, rec))
            self._gates(z[layer], c[layer], record[layer], layer_edit)
            h[:, layer] = record[layer, hi]
            c[layer] = record[layer, ci]

    def logits(self, h_top: torch.Tensor) -> torch.Tensor:
        """h_top W_out + b_out for top-layer states (..., H): what the softmax is of."""
        return torch.addmm(self.b_out, h_top.reshape(-1, h_top.shape[-1]), self.W_out).view(
            *h_top.shape[:-1], -1
        )

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
            x_rows = self.input_rows(idx[:, k])
            for layer in range(L):  # every layer from the previous pass's state
                self._pre_activations(layer, state, x_rows, weights, z[layer])
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
        temperature: float,
        prime: list[str] | None,
        max_length: int,
    ) -> list[Capture]:
        """Sample one tune per seed from <s> (and the prime tokens, fed as read; None or
        [] for none), until </s> or ``max_length`` steps, recording as it goes. The
        schema's ``$defs/generation`` holds the defaults (``resolve_section("generation")``).

        Each tune draws its uniform numbers from its own seeded generator, so a seed
        gives the same tune whatever else is in the batch. Sampling uses
        softmax(logits / temperature); the recorded softmax is the model's own p.
        """
        prime_idx = self._check_generate_arguments(seeds, temperature, prime, max_length)
        L, B, end = self.config.n_layers, len(seeds), self.token2idx[END]
        rngs = [np.random.default_rng(seed) for seed in seeds]
        h, c = self._initial_state(B)
        weights = self._step_weights()
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
            self.step(self.input_rows(token), h, c, weights, z, record)  # read's products, same shapes
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
