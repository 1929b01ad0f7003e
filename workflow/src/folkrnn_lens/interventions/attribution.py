"""Direct logit attribution: each top-layer unit's share of a logit.

The logits are linear in the top layer's h: logit_t[k] = sum_j h_t[j] W_out[j, k] +
b_out[k], so unit j contributes exactly h_t[j] W_out[j, k] to token k's logit at step
t, and the contributions and the bias sum to the logit (docs/interventions.md). At every
step this is read off for the token that came next (``target``) and for the model's
likeliest token (``top``). Computed in float64 from the recorded float32 h.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from folkrnn_lens.tokens.format import TOKEN_TYPES, token_type

OF = ("target", "top")  # the token that came next; the model's likeliest


@dataclass
class Attribution:
    """Per step: the target and top tokens and their logits; per (step, of, rank): the
    units that push the logit most; per (unit, token type): a summary over the tune."""

    target: np.ndarray  # (n,) vocabulary index of the token that came next
    top: np.ndarray  # (n,) vocabulary index of the likeliest token
    target_logit: np.ndarray  # (n,) float64
    top_logit: np.ndarray  # (n,) float64
    units: pd.DataFrame  # step, of, token, token_type, rank, unit, contribution, logit
    summary: pd.DataFrame  # unit, token_type, n_steps, mean_contribution, n_top


def contributions(h_top: np.ndarray, W_out: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """(n, H) float64: h_t[j] W_out[j, k_t], unit j's push on the logit of token k_t at step t."""
    return np.asarray(h_top, np.float64) * np.asarray(W_out, np.float64)[:, tokens].T


def top_units(contribution: np.ndarray, top: int) -> np.ndarray:
    """(n, top): the units that push most at each step, largest first (ties: lower unit)."""
    return np.argsort(-contribution, axis=1, kind="stable")[:, :top]


def logit_attribution(model, h_top: np.ndarray, targets: list[str], top: int = 10) -> Attribution:
    """The attribution of a tune's top-layer states h_top (n, H) to its model's output
    layer; ``targets[t]``: the token that came after step t; ``top`` units per step."""
    vocab = model.vocab
    h = np.asarray(h_top, np.float64)
    W = model.W_out.detach().cpu().double().numpy()  # (H, V)
    b = model.b_out.detach().cpu().double().numpy()
    logits = h @ W + b
    steps = np.arange(len(h))
    target = np.array(model.encode(list(targets)))
    likeliest = np.argmax(logits, axis=1)
    frames = []
    for of, tokens in zip(OF, (target, likeliest)):
        contribution = contributions(h, W, tokens)
        units = top_units(contribution, top)
        words = [vocab[k] for k in tokens]
        frames.append(
            pd.DataFrame(
                {
                    "step": np.repeat(steps, units.shape[1]).astype(np.int32),
                    "of": of,
                    "token": np.repeat(words, units.shape[1]),
                    "token_type": np.repeat([token_type(w) for w in words], units.shape[1]),
                    "rank": np.tile(np.arange(units.shape[1]), len(steps)).astype(np.int16),
                    "unit": units.ravel().astype(np.int16),
                    "contribution": np.take_along_axis(contribution, units, axis=1).ravel(),
                    "logit": np.repeat(logits[steps, tokens], units.shape[1]),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    summary = summarise(contributions(h, W, target), [token_type(vocab[k]) for k in target], table)
    return Attribution(target, likeliest, logits[steps, target], logits[steps, likeliest], table, summary)


def summarise(contribution: np.ndarray, types: list[str], table: pd.DataFrame) -> pd.DataFrame:
    """Per unit and type of the token that came next: over the steps predicting that
    type, the unit's mean contribution to its logit, and how often it is among the
    top units pushing it."""
    types = np.asarray(types)
    in_top = table[table["of"] == "target"].groupby(["unit", "token_type"]).size()
    rows = []
    for kind in TOKEN_TYPES:
        chosen = types == kind
        mean = contribution[chosen].mean(axis=0) if chosen.any() else np.full(contribution.shape[1], np.nan)
        for unit in range(contribution.shape[1]):
            rows.append((unit, kind, int(chosen.sum()), float(mean[unit]), int(in_top.get((unit, kind), 0))))
    return pd.DataFrame(rows, columns=["unit", "token_type", "n_steps", "mean_contribution", "n_top"]).astype(
        {"unit": np.int16, "n_steps": np.int32, "n_top": np.int32}
    )
