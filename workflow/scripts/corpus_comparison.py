"""Rule corpus_comparison: two corpus analyses set against each other."""

import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.threads)  # before numpy loads

from folkrnn_lens.corpus_analysis.aggregate import corpus_comparison
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    corpus_comparison(
        first_dir=os.path.dirname(snakemake.input.first),
        second_dir=os.path.dirname(snakemake.input.second),
        labels=(snakemake.wildcards.first, snakemake.wildcards.second),
        settings=snakemake.params.settings,
        out_dir=os.path.dirname(snakemake.output.table),
    )
