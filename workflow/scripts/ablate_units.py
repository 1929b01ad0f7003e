"""Rule ablate_units: units held at a value, and the change in every prediction."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.params.torch_threads)  # as torch gets: the same however many jobs run

from folkrnn_lens.interventions.transcription import ablate_transcription
from folkrnn_lens.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0]):
    ablate_transcription(
        name=snakemake.wildcards.name,
        model_path=snakemake.input.model,
        steps_path=snakemake.input.steps,
        out_table=snakemake.output.table,
        out_summary=snakemake.output.summary,
        out_figure=snakemake.output.figure,
        settings=params.settings,
        means_path=next(iter(snakemake.input.means), None),  # a corpus analysis's unit means, or none
        colours=params.colours,
        dpi=params.dpi,
        device=params.device,
        threads=params.torch_threads,
    )
