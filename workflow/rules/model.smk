# Stage 2: the model. "untrained" builds folk-rnn v2's architecture with random
# weights; a configured .safetensors or .pkl file is used as it is.


rule init_untrained_model:
    input:
        corpora=[
            corpus_tokens(corpus)
            for corpus in config["model"]["untrained"]["vocabulary_corpora"]
        ],
        files=config["model"]["untrained"]["vocabulary_files"],
    output:
        model=UNTRAINED_MODEL,
    log:
        f"{RESULTS}/logs/model/untrained.log",
    benchmark:
        f"{RESULTS}/benchmarks/model/untrained.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        n_layers=config["model"]["untrained"]["n_layers"],
        n_units=config["model"]["untrained"]["n_units"],
        seed=config["model"]["untrained"]["seed"],
    script:
        "../scripts/init_untrained_model.py"
