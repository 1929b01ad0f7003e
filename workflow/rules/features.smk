# Stage 4d: tokens -> the musical features of every step (token types, pitch, onset
# and duration, bar and bar phase), beside the steps table (docs/features.md).
rule compute_features:
    input:
        steps=STEPS,
    output:
        features=f"{ANALYSIS_FOLDER}/features.parquet",
    log:
        f"{RESULTS}/logs/features/{{name}}.log",
    wildcard_constraints:
        name=name_pattern(list(config["transcriptions"])),
    conda:
        ENV
    # measured: under 2 s and 200 MB for a 1,000-step tune (imports included)
    resources:
        mem_mb=1000,
        runtime=2,
    script:
        "../scripts/compute_features.py"
