"""Rule attribute_logits: each top-layer unit's share of the logits, step by step."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.params.torch_threads)  # as torch gets: the same however many jobs run

from folkrnn_lens.interventions.transcription import attribute_logits
from folkrnn_lens.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0]):
    attribute_logits(
        name=snakemake.wildcards.name,
        model_path=snakemake.input.model,
        steps_path=snakemake.input.steps,
        out_units=snakemake.output.units,
        out_summary=snakemake.output.summary,
        out_figure=snakemake.output.figure,
        top_units=params.top_units,
        colours=params.colours,
        dpi=params.dpi,
        device=params.device,
        threads=params.torch_threads,
    )
