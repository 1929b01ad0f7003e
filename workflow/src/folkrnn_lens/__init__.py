"""folkrnn-lens: look inside folk-rnn v2 while it reads or writes a tune.

The package holds the logic of each stage of the workflow, importable without
Snakemake, one folder per stage in the order the data flows (a stage imports only
those before it): ``tokens`` (ABC -> tokens), ``model`` (folk-rnn v2, checkpoints),
``training``, ``activations`` (every step's activations as Parquet), ``matrices``
(the part-9 Gramians and distances), ``resemblance`` (statistics, saturation,
probes), ``figures`` (heatmaps, animations, score), ``corpus_analysis`` and
``explorer`` (the interactive pages). Shared by
all: ``names`` (quantities and matrix names), ``config`` (the schema and its
defaults), ``palette``, ``parquet``, ``logs``, ``cost``.
"""

__version__ = "0.1.0"
