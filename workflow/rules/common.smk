# Shared by every stage: config validation and the input functions rules use.
import os
import re
import sys

# The logic lives in the folkrnn_lens package under workflow/src (rule scripts
# put it on their own path the same way, so no install is needed in a job's env).
sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "src"))

from folkrnn_lens.config import check_config
from snakemake.utils import validate

# A short message naming the bad key first; then snakemake fills the defaults.
check_config(config, workflow.source_path("../schemas/config.schema.yaml"))
validate(config, schema="../schemas/config.schema.yaml")

RESULTS = "results"
ENV = "../../envs/folkrnn-lens.yaml"
UNTRAINED_MODEL = f"{RESULTS}/models/untrained-v2.safetensors"


def transcription_names(kind):
    """Names of the configured transcriptions of a kind: 'read' or 'generate'."""
    specs = config["transcriptions"]
    generated = kind == "generate"
    return [name for name, spec in specs.items() if ("generate" in spec) == generated]


def name_pattern(names):
    """A wildcard constraint matching exactly these names (and nothing when empty)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def model_file():
    file = config["model"]["file"]
    return UNTRAINED_MODEL if file == "untrained" else file


def corpus_tokens(corpus):
    return f"{RESULTS}/corpus/{corpus}/tunes.txt"


def transcription_dir(name):
    return f"{RESULTS}/transcriptions/{name}"


def all_outputs():
    outputs = []
    for name in config["transcriptions"]:
        folder = transcription_dir(name)
        outputs += [
            f"{folder}/tokens.txt",
            f"{folder}/steps.parquet",
            f"{folder}/activations.parquet",
        ]
    for corpus in config["corpora"]:
        outputs.append(f"{RESULTS}/corpus/{corpus}/tunes.parquet")
    return outputs
