"""Rule probe: a transcription with its mode or one token changed, against the original."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.logs import log_to
from folkrnn_lens.probes import analyse_probe

params = snakemake.params
with log_to(snakemake.log[0]):
    analyse_probe(
        name=snakemake.wildcards.probe,
        spec=params.probe,
        model_path=snakemake.input.model,
        tokens_path=snakemake.input.tokens,
        out_tokens=snakemake.output.tokens,
        out_table=snakemake.output.table,
        out_steps=snakemake.output.steps,
        out_figure=snakemake.output.figure,
        gramian=params.gramian,
        device=params.device,
        threads=params.torch_threads,
        dpi=params.dpi,
    )
