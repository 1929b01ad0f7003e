"""Rule compute_features: the musical features of every step of one transcription."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.features.transcription import compute_features
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    compute_features(snakemake.wildcards.name, snakemake.input.steps, snakemake.output.features)
