"""Rule draw_figures: every heatmap and animation of one transcription, in one job."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

pin_blas_threads(snakemake.threads)  # before numpy loads

from folkrnn_lens.figures.draw import draw_figures
from folkrnn_lens.logs import log_to

params = snakemake.params
with log_to(snakemake.log[0]):
    draw_figures(
        name=snakemake.wildcards.name,
        npz_path=snakemake.input.matrices,
        summary_path=snakemake.input.summary,
        plan=params.plan,
        figure_dir=params.figure_dir,
        animation_dir=params.animation_dir,
        style=params.style,
        threads=snakemake.threads,
        mp4=params.mp4,
        window=params.window,
    )
