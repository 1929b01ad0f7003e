"""Rule build_index: the front page of the run, linking every result."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.explorer.index import build_index
from folkrnn_lens.logs import log_to

with log_to(snakemake.log[0]):
    build_index(
        out_path=snakemake.output.page,
        results=Path(snakemake.output.page).parent,
        transcriptions=snakemake.params.transcriptions,
        probes=snakemake.params.probes,
        corpus_analyses=snakemake.params.corpus_analyses,
        comparisons=[tuple(pair) for pair in snakemake.params.comparisons],
        pairs=snakemake.params.pairs,
    )
