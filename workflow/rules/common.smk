# Shared by every stage: config validation and the input functions rules use.
import functools
import os
import re
import shutil
import sys

# The logic lives in the folkrnn_lens package under workflow/src; jobs get it on
# their PYTHONPATH (folkrnn_lens.jobs.export_package_path).
sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "src"))

from folkrnn_lens.config import (
    SCHEMA_PATH,
    check_config,
    check_feasible,
    check_references,
)
from folkrnn_lens.tokens.corpus import abc_files, load_transcription, resolve_source
from folkrnn_lens.cost import check_limits
from folkrnn_lens.corpus_analysis.part import PART_TABLES, STATES
from folkrnn_lens.decoding.corpus import TABLES as DECODING_TABLES
from folkrnn_lens.decoding.corpus import FIGURES as DECODING_FIGURES
from folkrnn_lens.corpus_analysis.aggregate import AGGREGATE_TABLES
from folkrnn_lens.corpus_analysis.aggregate import FIGURES as CORPUS_FIGURES
from folkrnn_lens.matrices.plan import plan_analysis
from folkrnn_lens.explorer.index import shown_quantity
from folkrnn_lens.figures.style import Style
from folkrnn_lens.resemblance.settings import Settings
from folkrnn_lens.jobs import export_package_path
from snakemake.utils import validate

# A short message naming the bad key first; then snakemake fills the defaults.
# The schema is the one home of every default: validate() fills them in config.
check_config(config, SCHEMA_PATH)
validate(config, schema=str(SCHEMA_PATH))
check_references(
    config
)  # names of corpora, transcriptions, analyses: what the schema cannot say
check_feasible(config)  # primes and layers against max_length and the model's header

export_package_path()

RESULTS = "results"
ENV = "../../envs/folkrnn-lens.yaml"
UNTRAINED_MODEL = f"{RESULTS}/models/untrained-v2.safetensors"

# The settings objects, each built once from the resolved config, so a bad value
# stops the workflow before any job and every rule receives them the same way.
# ANALYSIS: the part-9 analysis of each transcription, planned from config alone,
# so every matrix, figure and animation file is known before any job runs.
try:
    ANALYSIS = plan_analysis(
        config["analysis"], config["record"]["layers"], config["record"]["quantities"]
    )
    STYLE = Style.from_config(config["analysis"])
except ValueError as error:
    raise ValueError(f"config error at analysis: {error}") from None
ANALYSIS_FOLDER = f"{RESULTS}/transcriptions/{{name}}"
# A transcription's tables: written by read_activations or generate_activations
# (one path, two rules), read by every analysis of the tune.
STEPS = f"{ANALYSIS_FOLDER}/steps.parquet"
ACTIVATIONS = f"{ANALYSIS_FOLDER}/activations.parquet"
FIGURE_FORMATS = config["analysis"]["figures"]["formats"]
# MP4 only where ffmpeg is found when the workflow starts; GIFs always; an HTML
# page per animation shows it inline in the report.
MP4 = config["analysis"]["animation"]["mp4"] and shutil.which("ffmpeg") is not None
ANIMATION_SUFFIXES = ["gif", *(["mp4"] if MP4 else []), "html"]

# Beyond part 9 (resemblance.smk): the resemblance settings, checked before any job
# runs like ANALYSIS; and the folder of each invariance probe.
RESEMBLANCE_ENABLED = config["resemblance"]["enabled"]
try:
    RESEMBLANCE = Settings.from_config(
        config["resemblance"],
        config["record"]["layers"],
        config["record"]["quantities"],
    )
except ValueError as error:
    raise ValueError(f"config error at resemblance: {error}") from None
PROBE_FOLDER = f"{RESULTS}/probes/{{probe}}"
PROBE_FILES = (
    "tokens.txt",
    "probe.parquet",
    "steps.parquet",
    "difference.png",
    "explorer.html",
)


def analysis_outputs(folder):
    """Every file of the analysis of one transcription's folder."""
    names, animations = ANALYSIS.names, ANALYSIS.animations
    outputs = [
        f"{folder}/{file}"
        for file in ("matrices.npz", "summary.parquet", "summary.html")
    ]
    outputs += [f"{folder}/figures/{m}.{fmt}" for m in names for fmt in FIGURE_FORMATS]
    outputs += [
        f"{folder}/animations/{a.name}.{s}"
        for a in animations
        for s in ANIMATION_SUFFIXES
    ]
    if config["analysis"]["score"]["enabled"]:
        outputs += [f"{folder}/score.abc", f"{folder}/score.svg"]
    outputs += [f"{folder}/explorer.html", f"{folder}/explorer"]
    return outputs


def score_input(wildcards):
    """The notated tune an explorer shows, where the analysis makes one."""
    if not config["analysis"]["score"]["enabled"]:
        return []
    return [f"{transcription_dir(wildcards.name)}/score.svg"]


def resemblance_outputs(folder):
    """The resemblance files of one transcription's folder (none when disabled)."""
    if not RESEMBLANCE_ENABLED:
        return []
    files = ("resemblance.parquet", "saturation.parquet")
    figures = ("resemblance.png", "saturation.png")
    return [f"{folder}/{f}" for f in files] + [f"{folder}/figures/{f}" for f in figures]


# Interventions (interventions.smk): the transcriptions intervened on, and the files.
INTERVENTIONS = config["interventions"]
INTERVENED = INTERVENTIONS["transcriptions"] or list(config["transcriptions"])
INTERVENTION_FOLDER = f"{ANALYSIS_FOLDER}/interventions"
PATCHING_FILES = ("patching.parquet", "patching_summary.parquet", "patching.png")
PATCHING_PAIRS = (
    INTERVENTIONS["patching"]["pairs"] if INTERVENTIONS["patching"]["enabled"] else {}
)


def intervention_outputs(name):
    """The intervention files of one transcription (none where it is not intervened on)."""
    if name not in INTERVENED:
        return []
    folder = transcription_dir(name)
    outputs = []
    if INTERVENTIONS["influence"]["enabled"]:
        outputs += [f"{folder}/interventions/influence.{x}" for x in ("npz", "parquet")]
        outputs.append(f"{folder}/figures/influence.png")
    if INTERVENTIONS["ablation"]["enabled"]:
        tables = ("ablation.parquet", "ablation_summary.parquet")
        outputs += [f"{folder}/interventions/{table}" for table in tables]
        outputs.append(f"{folder}/figures/ablation.png")
    if INTERVENTIONS["attribution"]["enabled"]:
        tables = ("attribution.parquet", "attribution_summary.parquet")
        outputs += [f"{folder}/interventions/{table}" for table in tables]
        outputs.append(f"{folder}/figures/attribution.png")
    return outputs


def influence_input(wildcards):
    """The tune's influence.npz, where its matrices and resemblance table take I in."""
    influence = INTERVENTIONS["influence"]
    if wildcards.name in INTERVENED and influence["enabled"] and influence["compare"]:
        return [f"{transcription_dir(wildcards.name)}/interventions/influence.npz"]
    return []


def ablation_corpus(wildcards):
    """The corpus whose unigram mean input replaces an ablated one, if any."""
    influence = INTERVENTIONS["influence"]
    if influence["ablation"] == "mean" and influence["corpus"] is not None:
        return [corpus_tokens(influence["corpus"])]
    return []


def ablation_means(wildcards):
    """The corpus analysis's unit means that ``value: mean`` holds units at, if any."""
    ablation = INTERVENTIONS["ablation"]
    if ablation["value"] == "mean" and ablation["corpus_analysis"] is not None:
        return [f"{CORPUS_ANALYSIS}/{ablation['corpus_analysis']}/unit_means.parquet"]
    return []


def pair_steps(role):
    """The steps table of a patching pair's ``clean`` or ``corrupted`` transcription."""
    return (
        lambda wildcards: f"{transcription_dir(PATCHING_PAIRS[wildcards.pair][role])}/steps.parquet"
    )


def probe_outputs():
    files = [
        *PROBE_FILES,
        *(PATCHING_FILES if INTERVENTIONS["patching"]["enabled"] else []),
    ]
    return [f"{RESULTS}/probes/{p}/{f}" for p in config["probes"] for f in files]


def probe_source(wildcards):
    """The tokens of the transcription a probe changes."""
    return f"{transcription_dir(config['probes'][wildcards.probe]['of'])}/tokens.txt"


def heatmap_output(folder, matrix, fmt):
    """A heatmap; in the report (its first format) with its kind's caption."""
    path = f"{folder}/figures/{matrix}.{fmt}"
    if fmt != FIGURE_FORMATS[0]:
        return path
    spec = ANALYSIS.spec(matrix)
    quantity = (spec.quantity or "-") + (
        f" x {spec.quantity_b}" if spec.quantity_b else ""
    )
    labels = {
        "matrix": matrix,
        "kind": spec.kind,
        "layer": str(spec.layer or "-"),
        "quantity": quantity,
    }
    caption = f"../report/{spec.kind}.rst"
    return report(
        path,
        caption=caption,
        category="{name}",
        subcategory="3 heatmaps",
        labels=labels,
    )


def animation_output(folder, animation, suffix):
    """An animation file; its HTML page goes in the report."""
    path = f"{folder}/animations/{animation.name}.{suffix}"
    if suffix != "html":
        return path
    labels = {"animation": animation.name, "shows": animation.title}
    caption = "../report/animation.rst"
    return report(
        path,
        caption=caption,
        category="{name}",
        subcategory="4 animations",
        labels=labels,
    )


def transcription_names(generated):
    """Names of the configured transcriptions the model generates (or else reads)."""
    specs = config["transcriptions"]
    return [name for name, spec in specs.items() if ("generate" in spec) == generated]


def name_pattern(names):
    """A wildcard constraint matching exactly these names (and nothing when empty)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def transcription_source(wildcards):
    """The ABC or token file a read transcription comes from: an input, so editing
    it re-runs its tokens and everything after them."""
    spec = config["transcriptions"][wildcards.name]
    return str(resolve_source(spec["abc"] if "abc" in spec else spec["tokens"]))


def corpus_source_files(wildcards):
    """Every ABC file of a corpus's sources (folders listed), as inputs."""
    return [
        str(path)
        for _, path in abc_files(config["corpora"][wildcards.corpus]["sources"])
    ]


def model_file():
    file = config["model"]["file"]
    return UNTRAINED_MODEL if file == "untrained" else file


def gpus(device=None):
    """GPUs a job that runs the model asks a scheduler for: 1 where its device (by
    default config's `device`) is cuda, else 0. Used as `resources: gpu=gpus()`; the
    SLURM executor submits gpu=1 as --gpus=1."""
    return 1 if (device or config["device"]) == "cuda" else 0


def corpus_tokens(corpus):
    return f"{RESULTS}/corpus/{corpus}/tunes.txt"


def training_run(run):
    """The settings of a configured training run (defaults filled by the schema)."""
    return config["training"][run]


def continue_from_files(run):
    """The checkpoint and epoch table a training run continues from, if any."""
    start = run.get("continue_from")
    return [start["model"], start["epochs"]] if start else []


def transcription_dir(name):
    return f"{RESULTS}/transcriptions/{name}"


# ---- corpus mode (corpus_analysis.smk): results/corpus_analysis/<analysis>/ ----

CORPUS_ANALYSIS = f"{RESULTS}/corpus_analysis"


def corpus_analysis(analysis):
    return config["corpus_analysis"][analysis]


def corpus_settings_of(analysis):
    """The resemblance settings of a corpus analysis: its own over the top level's."""
    try:
        return Settings.from_config(
            config["resemblance"],
            config["record"]["layers"],
            config["record"]["quantities"],
            corpus_analysis(analysis)["resemblance"],
        )
    except ValueError as error:
        where = f"corpus_analysis -> {analysis} -> resemblance"
        raise ValueError(f"config error at {where}: {error}") from None


CORPUS_SETTINGS = {a: corpus_settings_of(a) for a in config["corpus_analysis"]}


def corpus_settings(analysis):
    return CORPUS_SETTINGS[analysis]


def corpus_part_inputs(wildcards):
    """The model, and the built corpus where the tunes are real."""
    tunes = corpus_analysis(wildcards.analysis)["tunes"]
    inputs = {"model": model_file()}
    if "corpus" in tunes:
        inputs["corpus_tokens"] = corpus_tokens(tunes["corpus"])
        inputs["corpus_table"] = f"{RESULTS}/corpus/{tunes['corpus']}/tunes.parquet"
    return inputs


def corpus_part_dirs(wildcards):
    jobs = corpus_analysis(wildcards.analysis)["jobs"]
    return [f"{CORPUS_ANALYSIS}/{wildcards.analysis}/parts/{k}" for k in range(jobs)]


def corpus_analysis_outputs(analysis):
    folder = f"{CORPUS_ANALYSIS}/{analysis}"
    tables = [*PART_TABLES, *AGGREGATE_TABLES, *DECODING_TABLES]
    figures = [*CORPUS_FIGURES, *DECODING_FIGURES]
    return (
        [f"{folder}/{table}.parquet" for table in tables]
        + [f"{folder}/bar_averages.npz"]
        + [f"{folder}/figures/{figure}.png" for figure in figures]
    )


def corpus_comparison_outputs(first, second):
    folder = f"{RESULTS}/corpus_comparisons/{first}_vs_{second}"
    return [f"{folder}/comparison.parquet", f"{folder}/comparison.png"]


def all_outputs():
    return [*index_inputs(), f"{RESULTS}/index.html"]


def index_inputs():
    """Every result of the run: what the front page links."""
    outputs = []
    for name in config["transcriptions"]:
        folder = transcription_dir(name)
        outputs += [
            f"{folder}/tokens.txt",
            f"{folder}/steps.parquet",
            f"{folder}/activations.parquet",
            f"{folder}/features.parquet",
            *analysis_outputs(folder),
            *resemblance_outputs(folder),
            *intervention_outputs(name),
        ]
    outputs += probe_outputs()
    outputs += [
        f"{RESULTS}/patching/{pair}/{f}"
        for pair in PATCHING_PAIRS
        for f in PATCHING_FILES
    ]
    for corpus in config["corpora"]:
        outputs.append(f"{RESULTS}/corpus/{corpus}/tunes.parquet")
    for analysis in config["corpus_analysis"]:  # corpus_analysis.smk
        outputs += corpus_analysis_outputs(analysis)
    for first, second in config["corpus_comparisons"]:
        outputs += corpus_comparison_outputs(first, second)
    return outputs


# ---- cost: what each transcription's jobs need (folkrnn_lens.cost) ----


@functools.cache  # planning asks for it several times: tokenise each source once
def read_steps_count(name):
    """A read transcription's steps (tokens and <s>), known before any job; None for
    a generated one or an unreadable source (its own job says why)."""
    spec = config["transcriptions"][name]
    if "generate" in spec:
        return None
    try:
        return len(load_transcription(spec, name).tokens) + 1
    except (OSError, ValueError):
        return None


def planned_steps(name):
    """The steps a transcription's analysis will have, known before any job: a read
    tune's tokens (tokenised here, cheaply), a generated one's max_length at most,
    a window's length. None where the source cannot be read: its own job says why."""
    spec = config["transcriptions"][name]
    if "generate" in spec:
        steps = spec["generate"]["max_length"]
    else:
        steps = read_steps_count(name)
        if steps is None:
            return None
    if "window" not in spec:
        return steps
    start, stop = spec["window"]["start"], spec["window"]["stop"]
    if not start + 2 <= stop <= steps and "generate" not in spec:
        raise ValueError(
            f"config error at transcriptions -> {name} -> window: steps {start}..{stop - 1} do not fit "
            f"the tune's {steps} steps (0..{steps - 1}); it needs start + 2 <= stop <= {steps}"
        )
    return stop - start


def transcription_costs():
    """Each transcription's job costs; refused before any job where over the limits."""
    costs = {}
    for name in config["transcriptions"]:
        steps = planned_steps(name)
        costs[name] = check_limits(name, config, steps or DEFAULT_STEPS)
    return costs


DEFAULT_STEPS = 1000  # a tune whose length cannot be known yet is costed as this long
COSTS = transcription_costs()


def check_patching_pairs():
    """Two read transcriptions of different lengths cannot be patched: refused here,
    before any job (a generated one's length is checked by its patching job)."""
    for pair, roles in PATCHING_PAIRS.items():
        counts = {
            role: read_steps_count(roles[role]) for role in ("clean", "corrupted")
        }
        if None not in counts.values() and counts["clean"] != counts["corrupted"]:
            raise ValueError(
                f"config error at interventions -> patching -> pairs -> {pair}: the clean "
                f"{roles['clean']!r} has {counts['clean']} steps and the corrupted "
                f"{roles['corrupted']!r} {counts['corrupted']}; patching needs two of the same length"
            )


def check_ablation_start():
    """An ablation from a step past a read tune's end is refused here, before any job."""
    ablation = INTERVENTIONS["ablation"]
    if not ablation["enabled"]:
        return
    for name in INTERVENED:
        steps = read_steps_count(name)
        if steps is not None and ablation["start"] >= steps:
            raise ValueError(
                f"config error at interventions -> ablation -> start: step {ablation['start']} is past "
                f"the end of transcription {name!r} (steps 0..{steps - 1})"
            )


check_patching_pairs()
check_ablation_start()


def cost(stage, resource):
    """A rule's resource (mem_mb, runtime) from its transcription's predicted cost."""
    return lambda wildcards: getattr(COSTS[wildcards.name][stage], resource)


def window(wildcards):
    """The steps (start, stop) a transcription's analysis keeps, or None for all."""
    spec = config["transcriptions"][wildcards.name].get("window")
    return None if spec is None else (spec["start"], spec["stop"])
