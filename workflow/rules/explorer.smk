# Stage 6: every result -> pages to explore in the browser. Per transcription, one
# explorer page of linked views (matrix, layers in motion, step, units) with its data
# files beside it; and the front page of the run, results/index.html, linking
# everything. Both open from the file system (docs/explorer.md).
rule build_explorer:
    input:
        steps=STEPS,
        activations=ACTIVATIONS,
        matrices=rules.compute_matrices.output.matrices,
        summary=rules.compute_matrices.output.summary,
        score=score_input,
    output:
        page=f"{ANALYSIS_FOLDER}/explorer.html",
        # not in the report: a single-file report cannot hold a folder; its text links the pages
        data=directory(f"{ANALYSIS_FOLDER}/explorer"),
    log:
        f"{RESULTS}/logs/explorer/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/explorer/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(list(config["transcriptions"])),
    conda:
        ENV
    resources:
        mem_mb=cost("explorer", "mem_mb"),
        runtime=cost("explorer", "runtime"),
    params:
        plan=ANALYSIS,
        style=STYLE,
        window=window,
    script:
        "../scripts/build_explorer.py"


rule build_probe_explorer:
    input:
        steps=rules.probe_tune.output.probed_steps,
        activations=rules.probe_tune.output.probed_activations,
        original=rules.probe_tune.output.original_activations,
        table=rules.probe_tune.output.table,
    output:
        page=f"{PROBE_FOLDER}/explorer.html",
        data=directory(f"{PROBE_FOLDER}/explorer"),
    log:
        f"{RESULTS}/logs/explorer/probes/{{probe}}.log",
    wildcard_constraints:
        probe=name_pattern(list(config["probes"])),
    conda:
        ENV
    # measured: 0.7 s and 165 MB for a 165-step tune and h (the default probe)
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        of=lambda wildcards: config["probes"][wildcards.probe]["of"],
        gramian=RESEMBLANCE.gramian,
        style=STYLE,
    script:
        "../scripts/build_probe_explorer.py"


rule build_index:
    input:
        index_inputs(),
    output:
        page=f"{RESULTS}/index.html",
    log:
        f"{RESULTS}/logs/index.log",
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        transcriptions=list(config["transcriptions"]),
        probes=list(config["probes"]),
        corpus_analyses={a: shown_quantity(s) for a, s in CORPUS_SETTINGS.items()},
        comparisons=[list(pair) for pair in config["corpus_comparisons"]],
        pairs=PATCHING_PAIRS,
    script:
        "../scripts/build_index.py"
