"""The one name of each recorded quantity, shared by the model, the tables, the
config, file names and figure titles (as TransformerLens names its hooks).

Layers are counted from 1. For layer l at step t (docs/specification.md):

- ``i`` in gate, ``f`` forget gate, ``o`` out gate (sigmoids);
- ``g_pre`` the cell gate before tanh, ``g`` = tanh(g_pre);
- ``c`` cell state, ``h`` hidden state.

This module imports nothing, so stages that only read tables do not pay for torch.
"""

QUANTITIES = ("i", "f", "g_pre", "g", "o", "c", "h")
"""The quantities of a layer, in the order the model records them."""
