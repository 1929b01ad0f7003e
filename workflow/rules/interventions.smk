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
