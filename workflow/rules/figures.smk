# Stage 5: matrices -> a heatmap per matrix, the animations across layers, and the
# notated tune with bar numbers. One figures job per transcription draws all of
# its pictures (one figure, reused), so drawing pays its start-up once.


rule draw_figures:
    input:
        matrices=rules.compute_matrices.output.matrices,
        summary=rules.compute_matrices.output.summary,
    output:
        figures=[
            heatmap_output(ANALYSIS_FOLDER, m, fmt)
            for m in ANALYSIS.names
            for fmt in FIGURE_FORMATS
        ],
        animations=[
            animation_output(ANALYSIS_FOLDER, a, s)
            for a in ANALYSIS.animations
            for s in ANIMATION_SUFFIXES
        ],
    log:
        f"{RESULTS}/logs/figures/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(list(config["transcriptions"])),
    conda:
        ENV
    threads: 2  # the second encodes PNG/GIF while the first draws
    resources:
        mem_mb=cost("figures", "mem_mb"),
        runtime=cost("figures", "runtime"),
    params:
        plan=ANALYSIS,
        style=STYLE,
        figure_dir=f"{ANALYSIS_FOLDER}/figures",
        animation_dir=f"{ANALYSIS_FOLDER}/animations",
        mp4=MP4,
        window=window,
    script:
        "../scripts/draw_figures.py"


rule render_score:
    input:
        steps=STEPS,
    output:
        abc=f"{ANALYSIS_FOLDER}/score.abc",
        svg=report(
            f"{ANALYSIS_FOLDER}/score.svg",
            caption="../report/score.rst",
            category="{name}",
            subcategory="1 score",
            labels={"file": "the notated transcription"},
        ),
    log:
        f"{RESULTS}/logs/score/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score/{{name}}.tsv"
    wildcard_constraints:
        name=name_pattern(list(config["transcriptions"])),
    conda:
        ENV
    resources:
        mem_mb=cost("score", "mem_mb"),
        runtime=cost("score", "runtime"),
    params:
        required=config["analysis"]["score"]["required"],
    script:
        "../scripts/render_score.py"
