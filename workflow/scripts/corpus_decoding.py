"""Rule corpus_decoding: linear probes of a corpus analysis's sampled states."""

import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

# Config's count, not snakemake.threads: the probes' arithmetic, and so their tables,
# the same however many jobs run.
pin_blas_threads(snakemake.params.torch_threads)  # before numpy loads

import torch

torch.set_num_threads(snakemake.params.torch_threads)

from folkrnn_lens.decoding.corpus import corpus_decoding
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    corpus_decoding(
        state_paths=snakemake.input.states,
        features_path=snakemake.input.features,
        tunes_path=snakemake.input.tunes,
        unit_means_path=snakemake.input.unit_means,
        section=snakemake.params.section,
        out_dir=os.path.dirname(snakemake.output.tables[0]),
        name=snakemake.wildcards.analysis,
    )
