# Stage 1: ABC and token files -> folk-rnn v2 tokens.


rule tokenize_transcription:
    input:
        source=transcription_source,
    output:
        tokens=f"{ANALYSIS_FOLDER}/tokens.txt",
    log:
        f"{RESULTS}/logs/tokenize/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokenize/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(transcription_names(generated=False)),
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=1,
    params:
        spec=lambda wildcards: config["transcriptions"][wildcards.name],
    script:
        "../scripts/tokenize_transcription.py"


rule build_corpus:
    input:
        sources=corpus_source_files,
    output:
        tokens=f"{RESULTS}/corpus/{{corpus}}/tunes.txt",
        table=f"{RESULTS}/corpus/{{corpus}}/tunes.parquet",
    log:
        f"{RESULTS}/logs/corpus/{{corpus}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/corpus/{{corpus}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        sources=lambda wildcards: config["corpora"][wildcards.corpus]["sources"],
    script:
        "../scripts/build_corpus.py"
