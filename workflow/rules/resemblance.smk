# Stage 4b: activations -> how much each Gramian resembles X^T X (at shifts 0 and
# 1) and the other Gramians, tested against nulls that keep time order; the gate
# saturation of every unit; and their figures. Invariance probes: a transcription
# with its mode or one token changed, read by the model next to the original.
# (docs/resemblance.md.)
rule measure_resemblance:
    input:
        steps=STEPS,
        activations=ACTIVATIONS,
        influence=influence_input,
    output:
        table=f"{ANALYSIS_FOLDER}/resemblance.parquet",
        saturation=f"{ANALYSIS_FOLDER}/saturation.parquet",
        figure=report(
            f"{ANALYSIS_FOLDER}/figures/resemblance.png",
            caption="../report/resemblance.rst",
            category="{name}",
            subcategory="5 resemblance and saturation",
            labels={"figure": "resemblance with X^T X and across layers"},
        ),
        saturation_figure=report(
            f"{ANALYSIS_FOLDER}/figures/saturation.png",
            caption="../report/saturation.rst",
            category="{name}",
            subcategory="5 resemblance and saturation",
            labels={"figure": "gate saturation of every unit"},
        ),
    log:
        f"{RESULTS}/logs/resemblance/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/resemblance/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(list(config["transcriptions"])),
    conda:
        ENV
    resources:
        mem_mb=cost("resemblance", "mem_mb"),
        runtime=cost("resemblance", "runtime"),
    params:
        settings=RESEMBLANCE,
        quantities=config["record"]["quantities"],
        dpi=config["analysis"]["figures"]["dpi"],
        window=window,
    script:
        "../scripts/measure_resemblance.py"


rule probe_tune:
    input:
        model=model_file(),
        tokens=probe_source,
    output:
        tokens=f"{PROBE_FOLDER}/tokens.txt",
        table=f"{PROBE_FOLDER}/probe.parquet",
        steps=f"{PROBE_FOLDER}/steps.parquet",
        figure=report(
            f"{PROBE_FOLDER}/difference.png",
            caption="../report/probe.rst",
            category="probes",
            subcategory="{probe}",
            labels={"figure": "G' - G per layer, and distance per step"},
        ),
        # both reads of the one batch, for the probe's explorer
        original_steps=f"{PROBE_FOLDER}/original/steps.parquet",
        original_activations=f"{PROBE_FOLDER}/original/activations.parquet",
        probed_steps=f"{PROBE_FOLDER}/probed/steps.parquet",
        probed_activations=f"{PROBE_FOLDER}/probed/activations.parquet",
    log:
        f"{RESULTS}/logs/probes/{{probe}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/probes/{{probe}}.tsv"
    wildcard_constraints:
        probe=name_pattern(list(config["probes"])),
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        mem_mb=4000,
        runtime=5,
        gpu=gpus(),
    params:
        probe=lambda wildcards: config["probes"][wildcards.probe],
        gramian=RESEMBLANCE.gramian,
        device=config["device"],
        torch_threads=config["torch_threads"],
        dpi=config["analysis"]["figures"]["dpi"],
        colours=config["analysis"]["colours"],
    script:
        "../scripts/probe_tune.py"
