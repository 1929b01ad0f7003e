"""The one home of the names every stage shares: recorded quantities, matrix kinds and
matrix names (keys of ``matrices.npz``, rows of the tables, figure files and titles),
and which colour band each kind of matrix uses.

Layers are counted from 1. For layer l at step t (docs/specification.md):

- ``i`` in gate, ``f`` forget gate, ``o`` out gate (sigmoids);
- ``g_pre`` the cell gate before tanh, ``g`` = tanh(g_pre);
- ``c`` cell state, ``h`` hidden state.

Matrix names:

=====================  ==========  ===================================================
name                   kind        entry (s, t)
=====================  ==========  ===================================================
``onehot``             onehot      x_s . x_t: 1 where steps s and t read the same token
``softmax_l1``         distance    ||p_s - p_t||_1, in [0, 2]; 2 = disjoint supports
``L3.h.abs``           magnitude   |cos| of the angle between h_s and h_t of layer 3
``L3.h.signed``        signed      cos of that angle
``L2.i_x_o``           cross       cos of the angle between i_s and o_t of layer 2
``influence``          (none)      I[s, t], the change in step t's log-probability of
                                   its next token when step s's input is ablated
=====================  ==========  ===================================================

This module imports nothing, so stages that only read tables do not pay for torch.
"""

from __future__ import annotations

import re
from typing import NamedTuple

QUANTITIES = ("i", "f", "g_pre", "g", "o", "c", "h")
"""The quantities of a layer, in the order the model records them."""

GATES = ("i", "f", "o")
"""The sigmoid gates; g is a tanh in [-1, 1] and is not a gate in the saturation sense."""

KINDS = ("onehot", "distance", "magnitude", "signed", "cross")
"""The kinds of matrix of the analysis."""

GRAMIAN_KINDS = {"abs": "magnitude", "signed": "signed"}
"""A Gramian's suffix in a name (config's ``gramians``) and its kind."""

ONEHOT, SOFTMAX = "onehot", "softmax_l1"
INFLUENCE = "influence"
"""The token influence matrix (interventions); upper triangular, so not a Gramian, but
compared with them over the pairs s < t."""

_QUANTITY = "|".join(sorted(QUANTITIES, key=len, reverse=True))  # g_pre before g
_LAYER_MATRIX = re.compile(rf"^L(\d+)\.(?:({_QUANTITY})\.(abs|signed)|({_QUANTITY})_x_({_QUANTITY}))$")


class MatrixName(NamedTuple):
    """What a matrix name says: its kind, and its layer and quantities (None where none)."""

    kind: str
    layer: int | None = None
    quantity: str | None = None
    quantity_b: str | None = None  # the vertical-axis quantity of a cross matrix


def matrix_name(kind: str, layer: int | None = None, quantity: str | None = None, quantity_b=None) -> str:
    """The name of a matrix of ``kind`` (``magnitude`` of h in layer 2 -> ``L2.h.abs``)."""
    if kind == "onehot":
        return ONEHOT
    if kind == "distance":
        return SOFTMAX
    if kind in ("magnitude", "signed"):
        return gramian_name(layer, quantity, "abs" if kind == "magnitude" else "signed")
    if kind == "cross":
        return f"L{layer}.{quantity}_x_{quantity_b}"
    raise ValueError(f"unknown matrix kind {kind!r}; expected one of {KINDS}")


def gramian_name(layer: int, quantity: str, gramian: str = "abs") -> str:
    """The name of a quantity's Gramian (``gramian`` is ``abs`` or ``signed``)."""
    return f"L{layer}.{quantity}.{gramian}"


def difference_name(layer: int, quantity: str, gramian: str = "abs") -> str:
    """The name of G' - G in a probe's explorer: the probed tune's Gramian less the
    original's (``L2.h.abs.diff``). Not a matrix of the analysis: the page computes it."""
    return f"{gramian_name(layer, quantity, gramian)}.diff"


def array_name(layer: int, quantity: str) -> str:
    """The name of one recorded (steps, units) array in the explorer, and of a state
    column of the probes' samples (``L2.h``)."""
    return f"L{layer}.{quantity}"


ORIGINAL = "original:"
"""The prefix of the original tune's arrays in a probe's explorer (``original:L2.h``)."""


def parse_matrix_name(name: str) -> MatrixName:
    """The parts of a name that matrix_name made; a ValueError for anything else."""
    if name == ONEHOT:
        return MatrixName("onehot")
    if name == SOFTMAX:
        return MatrixName("distance")
    match = _LAYER_MATRIX.match(name)
    if match is None:
        examples = "'onehot', 'softmax_l1', 'L2.h.abs', 'L1.i_x_o'"
        raise ValueError(f"{name!r} is not a matrix name (e.g. {examples})")
    layer, quantity, gramian, a, b = match.groups()
    if gramian is not None:
        return MatrixName(GRAMIAN_KINDS[gramian], int(layer), quantity)
    return MatrixName("cross", int(layer), a, b)


def matrix_kind(name: str) -> str:
    """The kind of a named matrix."""
    return parse_matrix_name(name).kind


def gramian_layer_quantity(name: str) -> tuple[int | None, str | None]:
    """(layer, quantity) of a Gramian's name (``L2.h.abs`` -> (2, 'h')); (None, None)
    for ``onehot`` and ``influence``, what a resemblance comparison sets Gramians against."""
    if name == INFLUENCE:
        return None, None
    parsed = parse_matrix_name(name)
    if parsed.kind not in ("onehot", "magnitude", "signed"):
        raise ValueError(f"not a Gramian's name: {name!r} (expected e.g. 'L2.h.abs' or 'onehot')")
    return parsed.layer, parsed.quantity


def band(kind: str) -> str:
    """Which thresholds of config's ``analysis.bands`` a kind of matrix uses."""
    if kind not in KINDS:
        raise ValueError(f"unknown matrix kind {kind!r}; expected one of {KINDS}")
    return "distance" if kind == "distance" else "cosine"
