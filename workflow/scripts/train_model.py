"""Rule train_model: folk-rnn v2 trained on a split corpus, resumable from its state file."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the folkrnn_lens package

from folkrnn_lens.logs import log_to
from folkrnn_lens.training.loop import TrainingConfig, train_model

settings = snakemake.params.settings
with log_to(snakemake.log[0]):
    train_model(
        train_path=snakemake.input.train,
        valid_path=snakemake.input.valid,
        model_path=snakemake.output.model,
        epochs_path=snakemake.output.epochs,
        curve_path=snakemake.output.curve,
        state_path=snakemake.params.state,
        config=TrainingConfig.from_settings(settings),
        vocabulary_files=snakemake.input.vocabulary,
        continue_from=settings.get("continue_from", {}).get("model"),
        continue_log=settings.get("continue_from", {}).get("epochs"),
        info={
            "run": snakemake.wildcards.run,
            "corpus": settings["corpus"],
            "validation_fraction": settings["validation_fraction"],
            "split_seed": settings["split_seed"],
        },
    )
