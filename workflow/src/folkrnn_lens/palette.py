"""The colours and labels every figure shares, so that a layer, a gate or a statistic
looks the same in a transcription's figures and in a corpus's.

The colours of the matrix bands and bar lines are config's (``analysis.colours``,
defaults in the schema); these are the ones config does not set. They sit at the top
of the package, not in ``figures``, because the resemblance and corpus stages draw
too. Teal, sanguine and violet echo the band colours; this module imports nothing.
"""

LAYER_COLOURS = ("#1f4e79", "#c0392b", "#1a7f72", "#6a3d9a", "#b8860b", "#555555")
"""The layers a figure draws, in order (``layer_colour``): navy, sanguine, teal, violet, gold, grey."""

GATE_COLOURS = {"i": "#1a7f72", "f": "#c0392b", "o": "#6a3d9a"}
"""The in, forget and out gates: teal, sanguine, violet."""

OTHER_GATE = "0.3"
"""A gate GATE_COLOURS does not name (dark grey)."""

PAIR_COLOURS = ("#1f4e79", "#b8860b")
"""Two sets side by side (a corpus comparison's first and second): navy, gold."""

HIGHLIGHT = "#c0392b"
"""One point a figure singles out (the best epoch of a loss curve): sanguine."""

DIVERGING = "RdBu_r"
"""matplotlib's colormap for signed statistics and differences: blue negative, red positive."""

STATISTIC_LABELS = {
    "pearson": "Pearson r (off-diagonal)",
    "spearman": "Spearman ρ (off-diagonal)",
    "cka": "linear CKA",
}
"""A resemblance statistic as figures name it."""


def layer_colour(index: int) -> str:
    """The colour of the ``index``-th layer drawn (from 0), cycling."""
    return LAYER_COLOURS[index % len(LAYER_COLOURS)]
