"""Rule matrices: every configured matrix of one transcription, and its summary."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.blas_threads import pin_blas_threads

pin_blas_threads(snakemake.threads)  # before numpy loads

from folkrnn_lens.logs import log_to
from folkrnn_lens.matrices import analyse_transcription

with log_to(snakemake.log[0]):
    analyse_transcription(
        name=snakemake.wildcards.name,
        steps_path=snakemake.input.steps,
        activations_path=snakemake.input.activations,
        npz_path=snakemake.output.matrices,
        summary_path=snakemake.output.summary,
        analysis=snakemake.params.analysis,
        recorded_layers=snakemake.params.layers,
        recorded_quantities=snakemake.params.quantities,
        summary_html=snakemake.output.table,
        window=snakemake.params.window,
    )
