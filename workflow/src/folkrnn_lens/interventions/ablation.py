"""Unit ablation: which units a prediction needs.

The tune is read again with chosen units of one layer's quantity (h, c or a gate: i,
f, g, o) held at a value from a chosen step on: zero, or the unit's mean over the tune
(its clean read) or over a corpus (``mean``, e.g. a corpus analysis's unit means). A
*sweep* ablates every unit of the layer one at a time, one batch row per unit; a *set*
ablates a list of units (or the whole layer) together, in one row.
At every step the change in the log-probability of the token that came next is
recorded,

    importance[u, t] = log p_t(y_t) - log p_t^(u)(y_t),

positive where the prediction needs the unit, and its mean over the steps is the
change in the tune's loss (cross-entropy, nats a step). An ablated gate enters the
step's cell state; an ablated c gives h through the step's out gate; an ablated h is
what the layer above and the next step read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from folkrnn_lens.interventions.influence import InterventionError, clean_read
from folkrnn_lens.names import QUANTITIES

log = logging.getLogger(__name__)

ABLATABLE = ("i", "f", "g", "o", "c", "h")
STAGE = {"i": "gates", "f": "gates", "g": "gates", "o": "gates", "c": "c", "h": "h"}
VALUES = ("zero", "mean")


@dataclass
class UnitAblation:
    """The change in each step's prediction when units are ablated, one row per ablation."""

    layer: int
    quantity: str
    units: list[list[int]]  # per row: the units ablated together
    start: int  # the first ablated step
    value: str
    log_prob: np.ndarray  # (n,) clean log p_t(y_t)
    importance: np.ndarray  # (rows, n): log p_t(y_t) - log p_t^(u)(y_t); 0 before start


def _check(model, layer: int, quantity: str, rows: list[list[int]], start: int, n: int, value: str) -> None:
    """Refuse, naming it, what cannot be ablated, before any computation."""
    L, H = model.config.n_layers, model.config.n_units
    if not 1 <= layer <= L:
        raise InterventionError(f"layer {layer} does not exist: the model has layers 1..{L}")
    if quantity not in ABLATABLE:
        raise InterventionError(f"quantity {quantity!r} cannot be ablated; expected one of {ABLATABLE}")
    if value not in VALUES:
        raise InterventionError(f"ablation value {value!r} is not one of {VALUES}")
    if not 0 <= start < n:
        raise InterventionError(f"ablation from step {start}: the tune has steps 0..{n - 1}")
    for units in rows:
        bad = [u for u in units if not 0 <= u < H]
        if bad:
            raise InterventionError(f"unit {bad[0]} does not exist: layer {layer} has units 0..{H - 1}")


@torch.no_grad()
def ablate_units(
    model,
    inputs: list[str],
    targets: list[str],
    layer: int,
    quantity: str,
    rows: list[list[int]],
    start: int = 0,
    value: str = "zero",
    chunk: int = 512,
    mean: np.ndarray | None = None,
) -> UnitAblation:
    """Each row of ``rows`` (a list of units of layer ``layer`` counted from 0) ablated
    from step ``start`` on; batches of ``chunk`` rows, each read after the clean read.
    ``value`` ``mean`` holds each unit at ``mean[unit]`` where given (a corpus's), else
    at its mean over the tune."""
    started = time.perf_counter()
    n = len(inputs)
    _check(model, layer, quantity, rows, start, n, value)
    if mean is not None and np.shape(mean) != (model.config.n_units,):
        units = model.config.n_units
        raise InterventionError(f"{np.shape(mean)} unit means: layer {layer} has {units} units")
    device = model.W_out.device
    idx = torch.tensor(model.encode(list(inputs)), device=device)
    target_idx = torch.tensor(model.encode(list(targets)), device=device)
    clean = _clean_read(model, idx, target_idx, layer, quantity)
    held = clean["mean"] if value == "mean" else torch.zeros_like(clean["mean"])
    if value == "mean" and mean is not None:
        held = torch.as_tensor(mean, dtype=held.dtype, device=held.device)
    importance = np.zeros((len(rows), n))
    for first in range(0, len(rows), chunk):
        part = rows[first : first + chunk]
        lp = _ablated_read(model, idx, target_idx, layer, quantity, [[], *part], start, held)
        # against the batch's own clean row (no unit held): the same products, to the bit
        importance[first : first + len(part), start:] = lp[0, start:] - lp[1:, start:]
    log.info(
        "ablation of %d rows of L%d.%s in %.1f s", len(rows), layer, quantity, time.perf_counter() - started
    )
    return UnitAblation(layer, quantity, rows, start, value, clean["log_prob"], importance)


def _clean_read(model, idx, target_idx, layer: int, quantity: str) -> dict:
    """The clean read's log p_t(y_t) and the quantity's mean over the tune (per unit)."""
    records = clean_read(model, idx)
    top = records[:, -1, QUANTITIES.index("h")]
    log_prob = torch.log_softmax(model.logits(top), dim=-1)[torch.arange(len(idx)), target_idx]
    mean = records[:, layer - 1, QUANTITIES.index(quantity)].double().mean(dim=0)
    return {"log_prob": log_prob.double().cpu().numpy(), "mean": mean.to(records.dtype)}


def _ablated_read(model, idx, target_idx, layer, quantity, rows, start, held) -> np.ndarray:
    """(rows, n) log p_t(y_t) with each row's units held from step ``start`` (a row of
    no units is the clean read)."""
    L, H, n, B = model.config.n_layers, model.config.n_units, len(idx), len(rows)
    row_of = torch.tensor([r for r, units in enumerate(rows) for _ in units], dtype=torch.long)
    unit_of = torch.tensor([u for units in rows for u in units], dtype=torch.long)
    values = held[unit_of]
    q, stage_of_q = QUANTITIES.index(quantity), STAGE[quantity]
    h, c = model.initial_state(B)
    weights = model.step_weights()
    z = torch.empty(L, B, 4 * H, device=h.device)
    record = torch.empty(L, len(QUANTITIES), B, H, device=h.device)
    out = np.zeros((B, n))
    for t in range(n):

        def edit(at_layer: int, stage: str, rec: torch.Tensor, t=t) -> None:
            if t >= start and at_layer == layer - 1 and stage == stage_of_q:
                rec[q, row_of, unit_of] = values

        model.step(model.input_rows(idx[t : t + 1]).expand(B, -1), h, c, weights, z, record, edit)
        out[:, t] = torch.log_softmax(model.logits(h[:, -1]), dim=-1)[:, target_idx[t]].double().cpu().numpy()
    return out


def sweep_rows(units: int) -> list[list[int]]:
    """One row per unit: every unit ablated alone."""
    return [[u] for u in range(units)]


def ablation_tables(result: UnitAblation, targets: list[str]):
    """The long table (one row per ablation and step from ``start``) and the summary
    (one row per ablation: the change in the loss, and the mean importance by type of
    the token that came next)."""
    import pandas as pd

    from folkrnn_lens.tokens.format import TOKEN_TYPES, token_type

    rows, n = result.importance.shape
    steps = np.arange(result.start, n)
    types = np.array([token_type(token) for token in targets])
    long = pd.DataFrame(
        {
            "layer": np.int8(result.layer),
            "quantity": result.quantity,
            "row": np.repeat(np.arange(rows), len(steps)).astype(np.int32),
            "step": np.tile(steps, rows).astype(np.int32),
            "next_token": np.tile(np.asarray(targets)[steps], rows),
            "token_type": np.tile(types[steps], rows),
            "importance": result.importance[:, steps].ravel(),
        }
    )
    summary = pd.DataFrame(
        {
            "layer": np.int8(result.layer),
            "quantity": result.quantity,
            "row": np.arange(rows, dtype=np.int32),
            "units": [list(units) for units in result.units],
            "delta_loss": result.importance[:, steps].mean(axis=1),
        }
    )
    for kind in TOKEN_TYPES:
        chosen = steps[types[steps] == kind]
        summary[f"importance_{kind}"] = result.importance[:, chosen].mean(axis=1) if len(chosen) else np.nan
    return long, summary
