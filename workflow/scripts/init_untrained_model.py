"""Rule init_untrained_model: folk-rnn v2's architecture, randomly initialised."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.logs import log_to
from folkrnn_lens.model.untrained import init_untrained_model

with log_to(snakemake.log[0]):
    init_untrained_model(
        token_files=[*snakemake.input.corpora, *snakemake.input.files],
        out_path=snakemake.output.model,
        n_layers=snakemake.params.n_layers,
        n_units=snakemake.params.n_units,
        seed=snakemake.params.seed,
    )
