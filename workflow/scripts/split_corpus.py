"""Rule split_corpus: a corpus token file -> training and validation token files."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.logs import log_to
from folkrnn_lens.training.data import split_corpus

with log_to(snakemake.log[0]):
    split_corpus(
        tokens_path=snakemake.input.tokens,
        train_path=snakemake.output.train,
        valid_path=snakemake.output.valid,
        split_path=snakemake.output.split,
        fraction=snakemake.params.fraction,
        seed=snakemake.params.seed,
    )
