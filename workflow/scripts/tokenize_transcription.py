"""Rule tokenize_transcription: one configured transcription -> a token file."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.tokens.corpus import load_transcription
from folkrnn_lens.logs import log_to
from folkrnn_lens.tokens.format import write_token_file

with log_to(snakemake.log[0]):
    tune = load_transcription(snakemake.params.spec, snakemake.wildcards.name)
    write_token_file(snakemake.output.tokens, [tune])
