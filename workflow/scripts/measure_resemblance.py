"""Rule measure_resemblance: one transcription's resemblance table, gate saturation and figures."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.threads)  # before numpy loads

from folkrnn_lens.logs import log_to
from folkrnn_lens.resemblance.transcription import measure_resemblance

with log_to(snakemake.log[0]):
    measure_resemblance(
        name=snakemake.wildcards.name,
        steps_path=snakemake.input.steps,
        activations_path=snakemake.input.activations,
        table_path=snakemake.output.table,
        saturation_path=snakemake.output.saturation,
        figure_path=snakemake.output.figure,
        saturation_figure_path=snakemake.output.saturation_figure,
        settings=snakemake.params.settings,
        recorded_quantities=snakemake.params.quantities,
        dpi=snakemake.params.dpi,
        window=snakemake.params.window,
        influence_path=next(iter(snakemake.input.influence), None),  # one file, or none
    )
