"""Rule build_explorer: the explorer page of one transcription and its data files."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.explorer.build import build_explorer
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    build_explorer(
        name=snakemake.wildcards.name,
        steps_path=snakemake.input.steps,
        activations_path=snakemake.input.activations,
        summary_path=snakemake.input.summary,
        npz_path=snakemake.input.matrices,
        plan=snakemake.params.plan,
        style=snakemake.params.style,
        html_path=snakemake.output.page,
        data_dir=snakemake.output.data,
        score_path=snakemake.input.score[0] if snakemake.input.score else None,
        window=snakemake.params.window,
    )
