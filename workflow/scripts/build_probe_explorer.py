"""Rule build_probe_explorer: the explorer of a probed tune, with G' - G against the original."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.explorer.build import build_probe_explorer
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    build_probe_explorer(
        probe=snakemake.wildcards.probe,
        of=snakemake.params.of,
        steps_path=snakemake.input.steps,
        activations_path=snakemake.input.activations,
        original_path=snakemake.input.original,
        table_path=snakemake.input.table,
        gramian=snakemake.params.gramian,
        style=snakemake.params.style,
        html_path=snakemake.output.page,
        data_dir=snakemake.output.data,
    )
