"""Activation patching: which layer, at which step, carries what a change did.

Two tunes of the same length are read: the clean one (typically a probe's original)
and the corrupted one (the probe). The corrupted tune is read again once per (layer,
step) with that layer's state at that step patched in from the clean read (h and c, or
one of them; ``states``), and once per step with every layer patched. At every later
step t the log-probability of the clean tune's next token y_t is recorded, and

    restored[l, s, t] = (log p_t^(l, s)(y_t) - log p_t^x(y_t)) / (log p_t(y_t) - log p_t^x(y_t))

says how much of the clean prediction the patch brings back (1: all of it, 0: none),
where the two reads differ at t at all (ROME's causal trace, for an LSTM's layers). The
rows run as one batch that grows at each step by the rows patched there, each joining
from the corrupted read's state (before s it is the corrupted read exactly), so the
work is (L + 1) n^2 / 2 row-steps. Patching a state into its own read changes nothing,
bit for bit; patching every layer's h and c at s reproduces the clean read after s
where the inputs after s are the clean ones.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from folkrnn_lens.interventions.influence import BATCH_BLOCK, InterventionError, clean_read
from folkrnn_lens.names import QUANTITIES

log = logging.getLogger(__name__)

STATES = ("h", "c")
ALL_LAYERS = 0  # a row's layer: every layer patched at its step


@dataclass
class Patching:
    """The log-probabilities of the clean tune's next tokens under every patch."""

    layers: list[int]  # per row: the patched layer (1..L), or ALL_LAYERS
    steps: np.ndarray  # per row: the patched step
    clean: np.ndarray  # (n,) log p_t(y_t) of the clean read
    corrupted: np.ndarray  # (n,) log p_t^x(y_t) of the corrupted read
    patched: np.ndarray  # (rows, n) log p_t^(l, s)(y_t); NaN for t < s
    states: tuple[str, ...]

    def restored(self) -> np.ndarray:
        """(rows, n): the share of the clean log-probability each patch restores at each
        step; NaN where t < s or where the clean and corrupted reads agree at t."""
        gap = self.clean - self.corrupted
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(gap != 0, (self.patched - self.corrupted) / gap, np.nan)


@torch.no_grad()
def activation_patching(
    model, clean: list[str], corrupted: list[str], targets: list[str], states: tuple[str, ...] = STATES
) -> Patching:
    """Patch the clean read's ``states`` into the corrupted read at every (layer, step),
    and every layer at once at every step; ``clean`` and ``corrupted`` are the input
    tokens of each step, ``targets`` the clean tune's next tokens."""
    started = time.perf_counter()
    if len(clean) != len(corrupted) or len(clean) != len(targets):
        raise InterventionError(
            f"patching needs two tunes of the same length: the clean one has {len(clean)} steps, "
            f"the corrupted one {len(corrupted)} (and {len(targets)} targets)"
        )
    if not states or set(states) - set(STATES):
        raise InterventionError(f"states to patch must be some of {STATES}, got {list(states)}")
    device = model.W_out.device
    clean_idx = torch.tensor(model.encode(list(clean)), device=device)
    corrupted_idx = torch.tensor(model.encode(list(corrupted)), device=device)
    target_idx = torch.tensor(model.encode(list(targets)), device=device)
    L, H, n = model.config.n_layers, model.config.n_units, len(clean)
    clean = clean_read(model, clean_idx)
    clean_h, clean_c = clean[:, :, QUANTITIES.index("h")], clean[:, :, QUANTITIES.index("c")]
    per_step = L + 1  # each layer alone, then every layer
    total = 1 + per_step * n  # row 0: the corrupted read
    layer_of = torch.tensor([ALL_LAYERS] + [*range(1, L + 1), ALL_LAYERS] * n)  # each step: 1..L, every
    h, c = model.initial_state(total)
    weights = model.step_weights()
    z = torch.empty(L, total, 4 * H, device=device)
    record = torch.empty(L, len(QUANTITIES), total, H, device=device)
    hi, ci = QUANTITIES.index("h"), QUANTITIES.index("c")
    patched = np.full((per_step * n, n), np.nan)
    corrupted_lp, clean_lp = np.zeros(n), np.zeros(n)
    for t in range(n):
        first = 1 + per_step * t  # the rows patched at step t
        joining = torch.arange(first, first + per_step, device=device)
        h[joining], c[:, joining] = h[0].clone(), c[:, :1].clone()  # they join from the corrupted state

        def edit(layer: int, stage: str, rec: torch.Tensor, joining=joining, t=t) -> None:
            rows = joining[(layer_of[joining] == layer + 1) | (layer_of[joining] == ALL_LAYERS)]
            if stage == "c" and "c" in states:
                rec[ci, rows] = clean_c[t, layer]
            elif stage == "h" and "h" in states:
                rec[hi, rows] = clean_h[t, layer]

        rows = first + per_step
        block = min(total, -(-rows // BATCH_BLOCK) * BATCH_BLOCK)
        x_rows = model.input_rows(corrupted_idx[t]).expand(block, -1)
        model.step(x_rows, h[:block], c[:, :block], weights, z[:, :block], record[:, :, :block], edit)
        # the clean read's state in the same product as the others: comparable to the bit
        top = torch.cat([h[:rows, -1], clean_h[t, -1:]])
        lp = torch.log_softmax(model.logits(top), dim=-1)[:, target_idx[t]].double().cpu().numpy()
        corrupted_lp[t], clean_lp[t] = lp[0], lp[-1]
        patched[: rows - 1, t] = lp[1:-1]
    rows_layers = layer_of[1:].tolist()
    rows_steps = np.repeat(np.arange(n), per_step)
    log.info("patching of %d steps x %d layers in %.1f s", n, L, time.perf_counter() - started)
    return Patching(rows_layers, rows_steps, clean_lp, corrupted_lp, patched, tuple(states))


def patching_tables(result: Patching, tokens: list[str]):
    """The long table (one row per patch and later step t) and the summary (one row per
    patch: the share of the clean log-probability restored over every t >= s, as a
    ratio of sums, where the reads differ)."""
    import pandas as pd

    rows, n = result.patched.shape
    row, t = np.nonzero(~np.isnan(result.patched))
    gap = result.clean - result.corrupted
    long = pd.DataFrame(
        {
            "layer": np.asarray(result.layers, np.int8)[row],
            "s": result.steps[row].astype(np.int32),
            "t": t.astype(np.int32),
            "next_token": np.asarray(tokens)[t],
            "log_prob": result.patched[row, t],
            "clean_log_prob": result.clean[t],
            "corrupted_log_prob": result.corrupted[t],
            "restored": result.restored()[row, t],
        }
    )
    later = ~np.isnan(result.patched) & (gap != 0)
    moved = np.where(later, result.patched - result.corrupted, 0).sum(axis=1)
    total = np.where(later, gap, 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        restored = np.where(total != 0, moved / total, np.nan)
    summary = pd.DataFrame(
        {
            "layer": np.asarray(result.layers, np.int8),
            "s": result.steps.astype(np.int32),
            "restored": restored,
            "clean_minus_corrupted": total,
        }
    )
    return long, summary
