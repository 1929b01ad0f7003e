"""Rule read_activations: teacher-force a transcription, record every activation."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.logs import log_to
from folkrnn_lens.activations.record import read_activations

with log_to(snakemake.log[0]):
    read_activations(
        model_path=snakemake.input.model,
        tokens_path=snakemake.input.tokens,
        steps_path=snakemake.output.steps,
        activations_path=snakemake.output.activations,
        layers=snakemake.params.layers,
        quantities=snakemake.params.quantities,
        name=snakemake.wildcards.name,
        device=snakemake.params.device,
        threads=snakemake.params.torch_threads,
        source_path=snakemake.input.source,
    )
