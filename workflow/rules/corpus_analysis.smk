# Corpus mode: tunes -> per-tune summaries and resemblance tables (streamed to
# Parquet in jobs of many tunes: no per-step files) -> aggregates and figures.
# Outputs go to results/corpus_analysis/<analysis>/; parts/<k>/ are its jobs.
rule corpus_part:
    input:
        unpack(corpus_part_inputs),
    output:
        tables=[
            f"{CORPUS_ANALYSIS}/{{analysis}}/parts/{{part}}/{table}.parquet"
            for table in PART_TABLES
        ],
        accumulators=f"{CORPUS_ANALYSIS}/{{analysis}}/parts/{{part}}/accumulators.npz",
        states=f"{CORPUS_ANALYSIS}/{{analysis}}/parts/{{part}}/{STATES}.parquet",
        tune_figures=directory(f"{CORPUS_ANALYSIS}/{{analysis}}/parts/{{part}}/figures"),
    log:
        f"{RESULTS}/logs/corpus_analysis/{{analysis}}/part_{{part}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/corpus_analysis/{{analysis}}/part_{{part}}.tsv"
    wildcard_constraints:
        analysis=name_pattern(list(config["corpus_analysis"])),
        part=r"\d+",
    conda:
        ENV
    # Cores to book; a run with fewer (-j 1) lowers snakemake.threads, so the script
    # runs params.torch_threads: the same arithmetic however many jobs run.
    threads: config["torch_threads"]
    resources:
        mem_mb=2000,
        runtime=120,
        gpu=gpus(),
    params:
        spec=lambda wildcards: corpus_analysis(wildcards.analysis),
        settings=lambda wildcards: corpus_settings(wildcards.analysis),
        style=STYLE,  # the bands of the summaries, and the look of tune figures
        top_units=INTERVENTIONS["attribution"]["top_units"],
        device=config["device"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/corpus_part.py"


rule corpus_aggregate:
    input:
        parts=lambda wildcards: [
            f"{folder}/{table}.parquet"
            for folder in corpus_part_dirs(wildcards)
            for table in PART_TABLES
        ],
    output:
        tables=[
            f"{CORPUS_ANALYSIS}/{{analysis}}/{table}.parquet"
            for table in [*PART_TABLES, *AGGREGATE_TABLES]
        ],
        bar_averages=f"{CORPUS_ANALYSIS}/{{analysis}}/bar_averages.npz",
        figures=[
            report(
                f"{CORPUS_ANALYSIS}/{{analysis}}/figures/{figure}.png",
                caption=f"../report/corpus_{figure}.rst",
                category="corpus analyses",
                subcategory="{analysis}",
                labels={"analysis": "{analysis}", "figure": figure},
            )
            for figure in CORPUS_FIGURES
        ],
    log:
        f"{RESULTS}/logs/corpus_analysis/{{analysis}}/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/corpus_analysis/{{analysis}}/aggregate.tsv"
    wildcard_constraints:
        analysis=name_pattern(list(config["corpus_analysis"])),
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        part_dirs=corpus_part_dirs,
        folder=f"{CORPUS_ANALYSIS}/{{analysis}}",
        settings=lambda wildcards: corpus_settings(wildcards.analysis),
        selectivity=lambda wildcards: corpus_analysis(wildcards.analysis)["selectivity"],
    script:
        "../scripts/corpus_aggregate.py"


# Linear probes of every probed layer and quantity, from the parts' sampled states.
rule corpus_decoding:
    input:
        states=lambda wildcards: [
            f"{folder}/{STATES}.parquet" for folder in corpus_part_dirs(wildcards)
        ],
        features=f"{CORPUS_ANALYSIS}/{{analysis}}/features.parquet",
        tunes=f"{CORPUS_ANALYSIS}/{{analysis}}/tunes.parquet",
        unit_means=f"{CORPUS_ANALYSIS}/{{analysis}}/unit_means.parquet",
    output:
        tables=[
            f"{CORPUS_ANALYSIS}/{{analysis}}/{table}.parquet"
            for table in DECODING_TABLES
        ],
        figures=[
            report(
                f"{CORPUS_ANALYSIS}/{{analysis}}/figures/{figure}.png",
                caption=f"../report/corpus_{figure}.rst",
                category="corpus analyses",
                subcategory="{analysis}",
                labels={"analysis": "{analysis}", "figure": figure},
            )
            for figure in DECODING_FIGURES
        ],
    log:
        f"{RESULTS}/logs/corpus_analysis/{{analysis}}/decoding.log",
    benchmark:
        f"{RESULTS}/benchmarks/corpus_analysis/{{analysis}}/decoding.tsv"
    wildcard_constraints:
        analysis=name_pattern(list(config["corpus_analysis"])),
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        section=lambda wildcards: corpus_analysis(wildcards.analysis)["decoding"],
        torch_threads=config["torch_threads"],
    script:
        "../scripts/corpus_decoding.py"


rule corpus_comparison:
    input:
        first=f"{CORPUS_ANALYSIS}/{{first}}/resemblance.parquet",
        second=f"{CORPUS_ANALYSIS}/{{second}}/resemblance.parquet",
    output:
        table=f"{RESULTS}/corpus_comparisons/{{first}}_vs_{{second}}/comparison.parquet",
        figure=report(
            f"{RESULTS}/corpus_comparisons/{{first}}_vs_{{second}}/comparison.png",
            caption="../report/corpus_comparison.rst",
            category="corpus analyses",
            subcategory="comparisons",
            labels={"first": "{first}", "second": "{second}"},
        ),
    log:
        f"{RESULTS}/logs/corpus_comparisons/{{first}}_vs_{{second}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/corpus_comparisons/{{first}}_vs_{{second}}.tsv"
    wildcard_constraints:
        first=name_pattern(list(config["corpus_analysis"])),
        second=name_pattern(list(config["corpus_analysis"])),
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=lambda wildcards: corpus_settings(wildcards.first),
    script:
        "../scripts/corpus_comparison.py"
