"""Rule probe_tune: a transcription with its mode or one token changed, against the original."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.jobs import pin_blas_threads

# config's count, as torch gets: the Gramians' products the same however many jobs run
pin_blas_threads(snakemake.params.torch_threads)  # before numpy loads

from folkrnn_lens.logs import log_to
from folkrnn_lens.resemblance.probes import probe_tune

params = snakemake.params
with log_to(snakemake.log[0]):
    probe_tune(
        name=snakemake.wildcards.probe,
        spec=params.probe,
        model_path=snakemake.input.model,
        tokens_path=snakemake.input.tokens,
        out_tokens=snakemake.output.tokens,
        out_table=snakemake.output.table,
        out_steps=snakemake.output.steps,
        out_figure=snakemake.output.figure,
        colours=params.colours,
        gramian=params.gramian,
        device=params.device,
        threads=params.torch_threads,
        dpi=params.dpi,
        reads_dir=Path(snakemake.output.original_steps).parent.parent,
    )
