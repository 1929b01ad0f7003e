"""Rule generate_activations: generate a tune from a seed, recording every step."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.logs import log_to
from folkrnn_lens.recording import record_generate

generation = snakemake.params.generation
with log_to(snakemake.log[0]):
    record_generate(
        model_path=snakemake.input.model,
        tokens_path=snakemake.output.tokens,
        steps_path=snakemake.output.steps,
        activations_path=snakemake.output.activations,
        seed=generation["seed"],
        temperature=generation.get("temperature", 1.0),
        prime=generation.get("prime", []),
        max_length=generation.get("max_length", 1000),
        layers=snakemake.params.layers,
        quantities=snakemake.params.quantities,
        name=snakemake.wildcards.name,
        device=snakemake.params.device,
        threads=snakemake.params.torch_threads,
    )
