"""Rule figures: every heatmap and animation of one transcription, in one job."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.blas_threads import pin_blas_threads

pin_blas_threads(snakemake.threads)  # before numpy loads

from folkrnn_lens.figures import Style, draw_transcription
from folkrnn_lens.logs import log_to
from folkrnn_lens.matrices import plan_analysis

params = snakemake.params
with log_to(snakemake.log[0]):
    draw_transcription(
        name=snakemake.wildcards.name,
        npz_path=snakemake.input.matrices,
        summary_path=snakemake.input.summary,
        plan=plan_analysis(params.analysis, params.layers, params.quantities),
        figure_dir=params.figure_dir,
        animation_dir=params.animation_dir,
        style=Style.from_config(params.analysis),
        threads=snakemake.threads,
        mp4=params.mp4,
        window=params.window,
    )
