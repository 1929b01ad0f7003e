"""folkrnn-lens: look inside folk-rnn v2 while it reads or writes a tune.

The package holds the logic of each stage of the workflow, importable without
Snakemake: ``tokens`` and ``abc`` (ABC -> tokens), ``model`` (folk-rnn v2 and
capture), ``tables`` (activations as Parquet).
"""

__version__ = "0.1.0"
