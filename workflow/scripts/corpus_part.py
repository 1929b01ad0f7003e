"""Rule corpus_part: one job's tunes of a corpus analysis, through the model."""

import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.blas_threads import pin_blas_threads

pin_blas_threads(snakemake.threads)  # before numpy loads

from folkrnn_lens.corpus_analysis import run_part
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    run_part(
        model_path=snakemake.input.model,
        spec=snakemake.params.spec,
        part=int(snakemake.wildcards.part),
        settings=snakemake.params.settings,
        bands=snakemake.params.bands,
        thresholds=snakemake.params.saturation,
        out_dir=os.path.dirname(snakemake.output.accumulators),
        corpus_table=snakemake.input.get("corpus_table"),
        corpus_tokens=snakemake.input.get("corpus_tokens"),
        device=snakemake.params.device,
        threads=snakemake.threads,
        name=snakemake.wildcards.analysis,
        analysis=snakemake.params.analysis,
    )
