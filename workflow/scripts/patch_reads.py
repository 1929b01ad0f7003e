"""Rules patch_probe and patch_pair: the corrupted tune read with the clean one's states patched in."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.params.torch_threads)  # as torch gets: the same however many jobs run

from folkrnn_lens.interventions.transcription import patch_transcriptions
from folkrnn_lens.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0]):
    patch_transcriptions(
        label=params.label,
        model_path=snakemake.input.model,
        clean_steps=snakemake.input.clean,
        corrupted_steps=snakemake.input.corrupted,
        out_table=snakemake.output.table,
        out_summary=snakemake.output.summary,
        out_figure=snakemake.output.figure,
        states=params.states,
        colours=params.colours,
        dpi=params.dpi,
        names=tuple(params.names),
        device=params.device,
        threads=params.torch_threads,
    )
