"""Rule generate_activations: generate a tune from a seed, recording every step."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.logs import log_to
from folkrnn_lens.activations.record import generate_activations

generation = snakemake.params.generation
with log_to(snakemake.log[0]):
    generate_activations(
        model_path=snakemake.input.model,
        tokens_path=snakemake.output.tokens,
        steps_path=snakemake.output.steps,
        activations_path=snakemake.output.activations,
        seed=generation["seed"],
        temperature=generation["temperature"],
        prime=generation["prime"],
        max_length=generation["max_length"],
        layers=snakemake.params.layers,
        quantities=snakemake.params.quantities,
        name=snakemake.wildcards.name,
        device=snakemake.params.device,
        threads=snakemake.params.torch_threads,
    )
