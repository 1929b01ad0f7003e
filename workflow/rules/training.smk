# Training folk-rnn v2 (folk-rnn's recipe) on a corpus: only when asked, with
# `snakemake -j 2 train`; `all` never trains. state.pt (the model, optimizer and log
# after the last finished epoch) is deliberately not an output, so that snakemake does
# not delete it when a job fails or is interrupted: rerunning `train` resumes from it.


rule split_corpus:
    input:
        tokens=lambda wildcards: corpus_tokens(training_run(wildcards.run)["corpus"]),
    output:
        train=f"{RESULTS}/training/{{run}}/train.txt",
        valid=f"{RESULTS}/training/{{run}}/valid.txt",
        split=f"{RESULTS}/training/{{run}}/split.parquet",
    log:
        f"{RESULTS}/logs/training/{{run}}/split.log",
    benchmark:
        f"{RESULTS}/benchmarks/training/{{run}}/split.tsv"
    wildcard_constraints:
        run=name_pattern(config["training"]),
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        fraction=lambda wildcards: training_run(wildcards.run)["validation_fraction"],
        seed=lambda wildcards: training_run(wildcards.run)["split_seed"],
    script:
        "../scripts/split_corpus.py"


rule train_model:
    input:
        train=rules.split_corpus.output.train,
        valid=rules.split_corpus.output.valid,
        vocabulary=lambda wildcards: training_run(wildcards.run)["vocabulary_files"],
        start=lambda wildcards: continue_from_files(training_run(wildcards.run)),
    output:
        model=f"{RESULTS}/training/{{run}}/model.safetensors",
        epochs=f"{RESULTS}/training/{{run}}/epochs.parquet",
        curve=f"{RESULTS}/training/{{run}}/loss_curve.png",
    log:
        f"{RESULTS}/logs/training/{{run}}/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/training/{{run}}/train.tsv"
    wildcard_constraints:
        run=name_pattern(config["training"]),
    conda:
        ENV
    threads: lambda wildcards: training_run(wildcards.run)["threads"]
    resources:
        mem_mb=8000,
        runtime=48 * 60,
        gpu=lambda wildcards: gpus(training_run(wildcards.run)["device"]),
    params:
        settings=lambda wildcards: training_run(wildcards.run),
        state=lambda wildcards: f"{RESULTS}/training/{wildcards.run}/state.pt",
    script:
        "../scripts/train_model.py"


rule train:
    input:
        [f"{RESULTS}/training/{run}/model.safetensors" for run in config["training"]],
