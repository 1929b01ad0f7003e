"""Rule corpus_aggregate: the parts of a corpus analysis together, and what they add up to."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.threads)  # before numpy loads

from folkrnn_lens.corpus_analysis.aggregate import corpus_aggregate
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    corpus_aggregate(
        part_dirs=snakemake.params.part_dirs,
        out_dir=snakemake.params.folder,
        settings=snakemake.params.settings,
        name=snakemake.wildcards.analysis,
        selectivity=snakemake.params.selectivity,
    )
