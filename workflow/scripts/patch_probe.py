"""Rule patch_probe: the probe read with its original's states patched in, layer by layer."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.params.torch_threads)  # as torch gets: the same however many jobs run

from folkrnn_lens.interventions.transcription import patch_probe
from folkrnn_lens.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0]):
    patch_probe(
        probe=snakemake.wildcards.probe,
        model_path=snakemake.input.model,
        original_steps=snakemake.input.original,
        probed_steps=snakemake.input.probed,
        out_table=snakemake.output.table,
        out_summary=snakemake.output.summary,
        out_figure=snakemake.output.figure,
        states=params.states,
        colours=params.colours,
        dpi=params.dpi,
        device=params.device,
        threads=params.torch_threads,
    )
