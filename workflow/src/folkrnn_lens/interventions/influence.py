"""Token influence: how much each step's input matters to every later prediction.

For every step s the tune is read again with the input of step s ablated, and for
every step t the change in the log-probability of the token that actually came next
is recorded (docs/interventions.md):

    I[s, t] = log p_t(y_t) - log p_t^(s)(y_t)        (0 for t < s, exactly)

I[s, t] > 0 where ablating step s makes the actual next token at t less likely: step s
helped predict it. The ablated input (``Ablation``) is no token at all (the input term
a W_x of layer 1 is 0; the bias stays), the unigram mean input of a corpus (a = the
tokens' frequencies), or another token. Per layer, ``delta_h[l, s, t]`` =
||h_t^(s) - h_t|| and ``delta_c`` likewise (L2 over the units) say where the change
lives and how long it lasts.

The n re-reads run as one batch that grows by a row a step: the row of step s joins at
step s from the clean read's state there (before s it is the clean read, exactly), so
the work is about n^2 / 2 row-steps rather than n^2. The clean read is row 0 of the
same batch, so each row's log-probabilities come from the same products as the clean
read's, and an ablation that changes nothing gives I = 0 bit for bit.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from folkrnn_lens.names import QUANTITIES
from folkrnn_lens.tokens.format import END, START

log = logging.getLogger(__name__)

ABLATIONS = ("zero", "mean", "token")
BATCH_BLOCK = 32
"""The growing batch steps in whole blocks of rows (the rows not yet joined are computed
and discarded): oneDNN keeps a kernel per batch shape, and one shape per step would
hold gigabytes for a long tune."""


class InterventionError(ValueError):
    """An intervention that cannot be made; the message names what is wrong."""


@dataclass(frozen=True)
class Ablation:
    """What replaces an ablated input: ``zero`` (no token), ``mean`` (the unigram mean
    of ``tokens``, e.g. a corpus's) or ``token`` (``token``)."""

    kind: str = "zero"
    token: str | None = None
    tokens: tuple[str, ...] = ()  # mean: the tokens whose frequencies make the input

    def __post_init__(self):
        if self.kind not in ABLATIONS:
            raise InterventionError(f"ablation {self.kind!r} is not one of {ABLATIONS}")
        if self.kind == "token" and not self.token:
            raise InterventionError("ablation 'token' needs the token that replaces the input")
        if self.kind == "mean" and not self.tokens:
            raise InterventionError("ablation 'mean' needs the tokens whose unigram mean is the input")

    def describe(self) -> str:
        return {"zero": "no input token", "mean": "the unigram mean input", "token": f"token {self.token!r}"}[
            self.kind
        ]

    def input_row(self, model) -> torch.Tensor:
        """a W_x of layer 1 for the ablated input: (4H,)."""
        W = model.W_x[0].detach()
        if self.kind == "zero":
            return torch.zeros(W.shape[1], dtype=W.dtype, device=W.device)
        if self.kind == "token":
            if self.token not in model.token2idx:
                raise InterventionError(f"ablation token {self.token!r} is not in the model's vocabulary")
            return W[model.token2idx[self.token]]
        counts = Counter(token for token in self.tokens if token in model.token2idx)
        if not counts:
            raise InterventionError("ablation 'mean': none of its tokens is in the model's vocabulary")
        frequencies = torch.zeros(W.shape[0], dtype=torch.float64)
        for token, count in counts.items():
            frequencies[model.token2idx[token]] = count / sum(counts.values())
        return (frequencies @ W.double().cpu()).to(W.dtype).to(W.device)


@dataclass
class Influence:
    """The influence of each step's input on every step's prediction."""

    input_tokens: list[str]  # step t reads input_tokens[t]
    output_tokens: list[str]  # y_t, the token that came next
    log_prob: np.ndarray  # (n,) float64: log p_t(y_t) of the clean read
    influence: np.ndarray  # (n, n) float32: I[s, t]
    delta_h: np.ndarray  # (L, n, n) float32: ||h_t^(s) - h_t|| per layer
    delta_c: np.ndarray  # (L, n, n) float32
    start: int = 0  # the step of row and column 0 (a window's first)


def tune_steps(tokens: list[str]) -> tuple[list[str], list[str]]:
    """The inputs and targets of a read tune (its tokens: meter, mode, body): <s> first
    in, </s> last out."""
    return [START, *tokens], [*tokens, END]


@torch.no_grad()
def clean_read(model, idx: torch.Tensor) -> torch.Tensor:
    """Every quantity of every layer at every step, (n, L, 7, H), of a batch-one
    teacher-forced read of token indices: the step function that read and generate
    share, so the same values as either records. What the interventions set
    their changed reads against."""
    L, H = model.config.n_layers, model.config.n_units
    h, c = model.initial_state(1)
    weights = model.step_weights()
    z = torch.empty(L, 1, 4 * H, device=h.device)
    records = torch.empty(len(idx), L, len(QUANTITIES), 1, H, device=h.device)
    for t in range(len(idx)):
        model.step(model.input_rows(idx[t : t + 1]), h, c, weights, z, records[t])
    return records[..., 0, :]


def top_states(model, inputs: list[str]) -> np.ndarray:
    """The top layer's h at every step of a teacher-forced read of ``inputs``."""
    idx = torch.tensor(model.encode(inputs), device=model.W_out.device)
    return clean_read(model, idx)[:, -1, QUANTITIES.index("h")].cpu().numpy()


@torch.no_grad()
def token_influence(
    model, inputs: list[str], targets: list[str], ablation: Ablation, window: tuple[int, int] | None = None
) -> Influence:
    """I, delta_h and delta_c of one tune (step t reads inputs[t]; targets[t] came
    next: a steps table's input and output tokens, or ``tune_steps``), or of the steps
    start..stop-1 of a window: those steps ablated, their predictions measured (the
    steps before the window are read once, as the clean read's prefix)."""
    started = time.perf_counter()
    if len(inputs) != len(targets) or not inputs:
        raise InterventionError(f"{len(inputs)} input tokens and {len(targets)} targets: expected as many")
    device = model.W_out.device
    words_in, words_out = list(inputs), list(targets)
    inputs = torch.tensor(model.encode(words_in), device=device)
    targets = torch.tensor(model.encode(words_out), device=device)
    start, stop = window or (0, len(inputs))
    if not 0 <= start < stop <= len(inputs):
        raise InterventionError(
            f"window of steps {start}..{stop - 1} does not fit a tune of {len(inputs)} steps"
        )
    n, L, H = stop - start, model.config.n_layers, model.config.n_units
    ablated = ablation.input_row(model)
    weights = model.step_weights()
    # row 0: the clean read; row 1 + k: step start + k ablated, joining the batch then
    h, c = model.initial_state(n + 1)
    z = torch.empty(L, n + 1, 4 * H, device=h.device)
    record = torch.empty(L, len(QUANTITIES), n + 1, H, device=h.device)
    influence = np.zeros((n, n), np.float32)
    delta_h = np.zeros((L, n, n), np.float32)
    delta_c = np.zeros((L, n, n), np.float32)
    log_prob = np.zeros(n)
    for t in range(stop):
        k = t - start  # the step within the window
        rows = k + 2 if k >= 0 else 1  # the clean read and the window's steps so far ablated
        block = min(n + 1, -(-rows // BATCH_BLOCK) * BATCH_BLOCK)
        x_rows = model.input_rows(inputs[t]).expand(block, -1).clone()
        if k >= 0:
            h[k + 1], c[:, k + 1] = h[0], c[:, 0]  # step t's row joins from the clean state
            x_rows[k + 1] = ablated
        model.step(x_rows, h[:block], c[:, :block], weights, z[:, :block], record[:, :, :block])
        if k < 0:
            continue
        lp = torch.log_softmax(model.logits(h[:rows, -1]), dim=-1)[:, targets[t]]
        log_prob[k] = float(lp[0])
        influence[: k + 1, k] = (lp[0] - lp[1:]).cpu().numpy()
        delta_h[:, : k + 1, k] = torch.linalg.vector_norm(h[1:rows] - h[:1], dim=-1).T.cpu().numpy()
        delta_c[:, : k + 1, k] = torch.linalg.vector_norm(c[:, 1:rows] - c[:, :1], dim=-1).cpu().numpy()
    log.info("influence of %d steps (%s) in %.1f s", n, ablation.describe(), time.perf_counter() - started)
    tokens = words_in[start:stop], words_out[start:stop]
    return Influence(*tokens, log_prob, influence, delta_h, delta_c, start)
