# Stage 4c: model + tokens -> what each prediction depends on. Token influence:
# every step's input ablated in turn, the change in every later step's
# log-probability of the token that came next; direct logit attribution: each
# top-layer unit's share of the logits (docs/interventions.md). Both read the tune
# the steps table's tokens again with the model, in batches, through the step
# function capture uses.
rule measure_influence:
    input:
        model=model_file(),
        steps=STEPS,
        corpus=ablation_corpus,
    output:
        npz=f"{INTERVENTION_FOLDER}/influence.npz",
        table=f"{INTERVENTION_FOLDER}/influence.parquet",
        figure=report(
            f"{ANALYSIS_FOLDER}/figures/influence.png",
            caption="../report/influence.rst",
            category="{name}",
            subcategory="6 interventions",
            labels={"figure": "token influence I[s, t]"},
        ),
    log:
        f"{RESULTS}/logs/influence/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/influence/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(INTERVENED),
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        mem_mb=cost("influence", "mem_mb"),
        runtime=cost("influence", "runtime"),
        gpu=gpus(),
    params:
        settings=INTERVENTIONS["influence"],
        colours=config["analysis"]["colours"],
        dpi=config["analysis"]["figures"]["dpi"],
        window=window,
        device=config["device"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/measure_influence.py"


rule attribute_logits:
    input:
        model=model_file(),
        steps=STEPS,
    output:
        units=f"{INTERVENTION_FOLDER}/attribution.parquet",
        summary=f"{INTERVENTION_FOLDER}/attribution_summary.parquet",
        figure=report(
            f"{ANALYSIS_FOLDER}/figures/attribution.png",
            caption="../report/attribution.rst",
            category="{name}",
            subcategory="6 interventions",
            labels={"figure": "direct logit attribution"},
        ),
    log:
        f"{RESULTS}/logs/attribution/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/attribution/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(INTERVENED),
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        mem_mb=cost("attribution", "mem_mb"),
        runtime=cost("attribution", "runtime"),
        gpu=gpus(),
    params:
        top_units=INTERVENTIONS["attribution"]["top_units"],
        colours=config["analysis"]["colours"],
        dpi=config["analysis"]["figures"]["dpi"],
        device=config["device"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/attribute_logits.py"


rule ablate_units:
    input:
        model=model_file(),
        steps=STEPS,
        means=ablation_means,
    output:
        table=f"{INTERVENTION_FOLDER}/ablation.parquet",
        summary=f"{INTERVENTION_FOLDER}/ablation_summary.parquet",
        figure=report(
            f"{ANALYSIS_FOLDER}/figures/ablation.png",
            caption="../report/ablation.rst",
            category="{name}",
            subcategory="6 interventions",
            labels={"figure": "unit ablation"},
        ),
    log:
        f"{RESULTS}/logs/ablation/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/ablation/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(INTERVENED),
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        mem_mb=cost("ablation", "mem_mb"),
        runtime=cost("ablation", "runtime"),
        gpu=gpus(),
    params:
        settings=INTERVENTIONS["ablation"],
        colours=config["analysis"]["colours"],
        dpi=config["analysis"]["figures"]["dpi"],
        device=config["device"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/ablate_units.py"


rule patch_probe:
    input:
        model=model_file(),
        clean=rules.probe_tune.output.original_steps,
        corrupted=rules.probe_tune.output.probed_steps,
    output:
        table=f"{PROBE_FOLDER}/patching.parquet",
        summary=f"{PROBE_FOLDER}/patching_summary.parquet",
        figure=report(
            f"{PROBE_FOLDER}/patching.png",
            caption="../report/patching.rst",
            category="probes",
            subcategory="{probe}",
            labels={"figure": "activation patching"},
        ),
    log:
        f"{RESULTS}/logs/patching/{{probe}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/patching/{{probe}}.tsv"
    wildcard_constraints:
        probe=name_pattern(list(config["probes"])),
    conda:
        ENV
    threads: config["torch_threads"]
    # measured: 8 s and 600 MB for the default probes (165 steps); grows as the steps squared
    resources:
        mem_mb=2000,
        runtime=15,
        gpu=gpus(),
    params:
        label=lambda wildcards: f"probe {wildcards.probe}",
        names=lambda wildcards: ["original", wildcards.probe],
        states=INTERVENTIONS["patching"]["states"],
        colours=config["analysis"]["colours"],
        dpi=config["analysis"]["figures"]["dpi"],
        device=config["device"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/patch_reads.py"


# Two transcriptions of config's interventions.patching.pairs, patched like a probe
# and its original.
rule patch_pair:
    input:
        model=model_file(),
        clean=pair_steps("clean"),
        corrupted=pair_steps("corrupted"),
    output:
        table=f"{RESULTS}/patching/{{pair}}/patching.parquet",
        summary=f"{RESULTS}/patching/{{pair}}/patching_summary.parquet",
        figure=report(
            f"{RESULTS}/patching/{{pair}}/patching.png",
            caption="../report/patching_pair.rst",
            category="patching",
            subcategory="{pair}",
            labels={"figure": "activation patching"},
        ),
    log:
        f"{RESULTS}/logs/patching/pairs/{{pair}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/patching/pairs/{{pair}}.tsv"
    wildcard_constraints:
        pair=name_pattern(list(PATCHING_PAIRS)),
    conda:
        ENV
    threads: config["torch_threads"]
    # as patch_probe: grows as the steps squared
    resources:
        mem_mb=2000,
        runtime=15,
        gpu=gpus(),
    params:
        label=lambda wildcards: f"pair {wildcards.pair}",
        names=lambda wildcards: [
            PATCHING_PAIRS[wildcards.pair][role] for role in ("clean", "corrupted")
        ],
        states=INTERVENTIONS["patching"]["states"],
        colours=config["analysis"]["colours"],
        dpi=config["analysis"]["figures"]["dpi"],
        device=config["device"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/patch_reads.py"
