"""A folk-rnn model with one hand-set unit that counts the eighths elapsed in the bar.

Unit ``unit`` of layer 1 is an LSTM cell used as a resettable counter (c = f c + i g,
h = o tanh(c); gates in the order i, f, g, o of ``FolkRNN``'s weight layout):

- i and o are held open: bias +BIG, every other weight 0, so i = o = 1 (sigmoid(30)
  rounds to exactly 1 in float32);
- f is open (bias +BIG) except at a bar line (``is_bar``: ``|``, ``:|``, ``|:``, ``|1``,
  ``::`` ...), whose input weight -2 BIG drives f to sigmoid(-30) ~ 1e-13: c resets there;
- g adds each token's share of the bar's elapsed length, in eighths (folk-rnn's L:1/8),
  times ``scale``: its input weight is atanh(scale d), so that g = scale d, with d = 1
  for a note or rest, d = length - 1 for a length token (``2``: 1, ``/2``: -1/2, ``3/2``:
  1/2), whose length multiplies the note before it (1 + (length - 1) = length), and 0
  for anything else (header, bar lines, tuplet and broken-rhythm signs, chord brackets).

So c / scale is the eighths read so far in the current bar: exact for plain notes and
rests, approximate where the written lengths are not the sounding ones (a tuplet, a
broken rhythm: their factors are ignored) or not additive (a chord counts each of its
notes). ``scale`` keeps c small (a 12/8 bar: 12/64), where tanh is nearly linear, so h
follows c too. The unit takes no recurrent input and its initial c is 0.

Every other weight is folk-rnn's initialisation (``reset_parameters``, seeded): the
other units of layer 1, and all of layers 2 and 3, are units of random weights.
"""

from __future__ import annotations

import math

import torch

from folkrnn_lens.features.steps import fine_type, written_length
from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig
from folkrnn_lens.tokens.format import is_bar

from .conftest import excerpt_vocab

BIG = 30.0
"""A gate pre-activation that saturates: sigmoid(30) == 1 in float32."""


def eighths(token: str) -> float:
    """A token's share of the bar's elapsed length, in eighths (see the module docstring)."""
    kind = fine_type(token)
    if kind in ("pitch", "rest"):
        return 1.0
    if kind == "duration":
        return float(written_length(token)[0]) - 1.0
    return 0.0


def bar_clock_model(
    vocab: list[str] | None = None,
    unit: int = 5,
    n_units: int = 32,
    n_layers: int = 3,
    scale: float = 1 / 64,
    seed: int = 0,
) -> FolkRNN:
    """A model over ``vocab`` (the excerpt's by default) whose layer-1 unit ``unit``
    counts the bar's eighths (c = scale x eighths so far), every other unit random."""
    vocab = excerpt_vocab() if vocab is None else vocab
    config = FolkRNNConfig(vocab_size=len(vocab), n_layers=n_layers, n_units=n_units)
    model = FolkRNN(config, vocab, initialise=False)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    i, f, g, o = (gate * n_units + unit for gate in range(4))  # the unit's columns of each gate
    bar = torch.tensor([is_bar(token) for token in vocab])
    cell = torch.tensor([math.atanh(scale * eighths(token)) for token in vocab])
    with torch.no_grad():
        W_x, W_h, b = model.W_x[0], model.W_h[0], model.b[0]
        W_x[:, [i, f, g, o]] = 0.0
        W_h[:, [i, f, g, o]] = 0.0  # no recurrent input
        b[[i, f, o]] = BIG
        b[g] = 0.0
        W_x[bar, f] = -2 * BIG  # the forget gate shuts at a bar line
        W_x[:, g] = cell
        model.c0[0][unit] = 0.0
    return model.eval()
