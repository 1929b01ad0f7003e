"""Rule compute_matrices: every configured matrix of one transcription, and its summary."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.threads)  # before numpy loads

from folkrnn_lens.logs import log_to
from folkrnn_lens.matrices.compute import compute_matrices

with log_to(snakemake.log[0]):
    compute_matrices(
        name=snakemake.wildcards.name,
        steps_path=snakemake.input.steps,
        activations_path=snakemake.input.activations,
        npz_path=snakemake.output.matrices,
        summary_path=snakemake.output.summary,
        plan=snakemake.params.plan,
        summary_html=snakemake.output.table,
        window=snakemake.params.window,
        influence_path=next(iter(snakemake.input.influence), None),  # one file, or none
    )
