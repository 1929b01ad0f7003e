"""Rule render_score: the transcription as ABC with bar numbers, notated by abcm2ps."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.logs import log_to
from folkrnn_lens.figures.score import render_score

with log_to(snakemake.log[0]):
    render_score(
        name=snakemake.wildcards.name,
        steps_path=snakemake.input.steps,
        abc_path=snakemake.output.abc,
        svg_path=snakemake.output.svg,
        required=snakemake.params.required,
    )
