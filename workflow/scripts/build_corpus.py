"""Rule build_corpus: ABC sources -> data_v2-format token file + tunes table."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.tokens.corpus import build_corpus
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    build_corpus(snakemake.params.sources, snakemake.output.tokens, snakemake.output.table)
