# folkrnn-lens: ABC -> tokens -> activations -> matrices, resemblance, interventions,
# features -> figures, explorer pages, summaries.
# This file is the table of contents; each stage lives in workflow/rules/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/tokens.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/matrices.smk"
include: "workflow/rules/resemblance.smk"
include: "workflow/rules/interventions.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/corpus_analysis.smk"
include: "workflow/rules/explorer.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
