# Stage 4: activations -> the part-9 matrices of each transcription (one .npz of
# named arrays) and their summary: band counts over the unique pairs of steps.
# What is computed comes from ANALYSIS (common.smk), planned from config alone.
rule compute_matrices:
    input:
        steps=STEPS,
        activations=ACTIVATIONS,
        influence=influence_input,
    output:
        matrices=f"{ANALYSIS_FOLDER}/matrices.npz",
        summary=f"{ANALYSIS_FOLDER}/summary.parquet",
        table=report(
            f"{ANALYSIS_FOLDER}/summary.html",
            caption="../report/summary.rst",
            category="{name}",
            subcategory="2 summary",
            labels={"file": "summary of the matrices"},
        ),
    log:
        f"{RESULTS}/logs/matrices/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/matrices/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(list(config["transcriptions"])),
    conda:
        ENV
    resources:
        mem_mb=cost("matrices", "mem_mb"),
        runtime=cost("matrices", "runtime"),
    params:
        plan=ANALYSIS,
        window=window,
    script:
        "../scripts/compute_matrices.py"
