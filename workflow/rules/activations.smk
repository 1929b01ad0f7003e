# Stage 3: tokens -> every activation of every step, as Parquet tables.


rule read_activations:
    input:
        model=model_file(),
        tokens=rules.tokenize_transcription.output.tokens,
        source=transcription_source,
    output:
        steps=STEPS,
        activations=ACTIVATIONS,
    log:
        f"{RESULTS}/logs/activations/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/activations/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(transcription_names(generated=False)),
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        mem_mb=cost("activations", "mem_mb"),
        runtime=cost("activations", "runtime"),
        gpu=gpus(),
    params:
        layers=config["record"]["layers"],
        quantities=config["record"]["quantities"],
        device=config["device"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/read_activations.py"


rule generate_activations:
    input:
        model=model_file(),
    output:
        tokens=f"{ANALYSIS_FOLDER}/tokens.txt",
        steps=STEPS,
        activations=ACTIVATIONS,
    log:
        f"{RESULTS}/logs/activations/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/activations/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(transcription_names(generated=True)),
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        mem_mb=cost("activations", "mem_mb"),
        runtime=cost("activations", "runtime"),
        gpu=gpus(),
    params:
        generation=lambda wildcards: config["transcriptions"][wildcards.name][
            "generate"
        ],
        layers=config["record"]["layers"],
        quantities=config["record"]["quantities"],
        device=config["device"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/generate_activations.py"
