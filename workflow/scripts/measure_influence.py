"""Rule measure_influence: every step's input ablated in turn, and what it changes later."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.params.torch_threads)  # as torch gets: the same however many jobs run

from folkrnn_lens.interventions.transcription import measure_influence
from folkrnn_lens.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0]):
    measure_influence(
        name=snakemake.wildcards.name,
        model_path=snakemake.input.model,
        steps_path=snakemake.input.steps,
        out_npz=snakemake.output.npz,
        out_table=snakemake.output.table,
        out_figure=snakemake.output.figure,
        settings=params.settings,
        colours=params.colours,
        dpi=params.dpi,
        corpus_path=snakemake.input.corpus[0] if snakemake.input.corpus else None,
        window=params.window,
        device=params.device,
        threads=params.torch_threads,
    )
