"""Rule corpus_part: one job's tunes of a corpus analysis, through the model."""

import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

# Config's count, not snakemake.threads (lowered to the cores of a run, e.g. -j 1):
# the tables are then the same bytes however many jobs run.
pin_blas_threads(snakemake.params.torch_threads)  # before numpy loads

from folkrnn_lens.corpus_analysis.part import corpus_part
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    corpus_part(
        model_path=snakemake.input.model,
        spec=snakemake.params.spec,
        part=int(snakemake.wildcards.part),
        settings=snakemake.params.settings,
        style=snakemake.params.style,
        out_dir=os.path.dirname(snakemake.output.accumulators),
        corpus_table=snakemake.input.get("corpus_table"),
        corpus_tokens=snakemake.input.get("corpus_tokens"),
        device=snakemake.params.device,
        threads=snakemake.params.torch_threads,
        name=snakemake.wildcards.analysis,
        top_units=snakemake.params.top_units,
    )
