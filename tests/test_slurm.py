"""The SLURM profile (workflow/profiles/slurm): what it submits, and a real cluster run.

The dry runs need the executor plugin (`pip install -e '.[cluster]'`), not SLURM.
The cluster run starts a one-node SLURM on this machine (root; installs Debian's
slurm packages if missing) and is skipped unless FOLKRNN_LENS_SLURM=1.
"""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import EXCERPT, ROOT
from .test_workflow import ABC

PROFILE = ROOT / "workflow" / "profiles" / "slurm"
SCRIPT = ROOT / "tests" / "slurm" / "run_local_slurm.sh"
GROUPED = ("tokenize_transcription", "read_activations", "generate_activations")

needs_plugin = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import snakemake_executor_plugin_slurm"]).returncode != 0,
    reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[cluster]')",
)


def corpus_config(tmp: Path, n_generated: int) -> dict:
    """A run of many transcriptions, as a corpus analysis has: every tune of the
    excerpt, an ABC tune, and n_generated generated ones."""
    (tmp / "tunes.abc").write_text(ABC)
    transcriptions = {f"excerpt_{i}": {"tokens": str(EXCERPT), "index": i} for i in range(1, 13)}
    transcriptions["reel"] = {"abc": str(tmp / "tunes.abc"), "x": 7}
    for seed in range(n_generated):
        transcriptions[f"gen_{seed}"] = {"generate": {"seed": seed, "max_length": 20}}
    return {
        "model": {
            "file": "untrained",
            "untrained": {"n_units": 16, "vocabulary_corpora": ["mini"], "vocabulary_files": [str(EXCERPT)]},
        },
        "corpora": {"mini": {"sources": [str(tmp / "tunes.abc")]}},
        "transcriptions": transcriptions,
        "record": {"layers": [1], "quantities": ["h"]},
    }


def dry_run(workdir: Path, *args: str) -> str:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    command += ["--profile", str(PROFILE), "-n", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def job_blocks(output: str) -> list[tuple[str, bool, str]]:
    """(rule, in a group, text) of every job a dry run lists (a group's are indented)."""
    parts = re.split(r"\n( *)rule (\w+):\n", output)
    return [(rule, indent != "", text) for indent, rule, text in zip(parts[1::3], parts[2::3], parts[3::3])]


def test_resources_are_declared_once_by_the_rules():
    """Every rule declares its memory and runtime; the profile names existing rules and
    sets no memory or runtime of its own (one place for each rule's resources)."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    rule_files = "".join(path.read_text() for path in ROOT.glob("workflow/rules/*.smk"))
    rules = set(re.findall(r"^rule (\w+):", rule_files, re.M))
    assert set(profile["set-resources"]) <= rules, "the profile names a rule that does not exist"
    assert set(profile["groups"]) <= rules
    for rule, resources in profile["set-resources"].items():
        assert not {"runtime", "mem_mb"} & set(resources), f"{rule}: resources declared in the profile"
    bodies = dict(re.findall(r"^rule (\w+):\n((?:(?:    .*)?\n)*)", rule_files, re.M))
    for rule, body in bodies.items():
        if "script:" in body:  # a job, not a target
            assert "mem_mb=" in body and "runtime=" in body, f"rule {rule} declares no memory or runtime"


@needs_plugin
def test_a_longer_tune_asks_for_more_memory_and_time(tmp_path):
    """The jobs of each transcription ask for what the cost model predicts for its length."""
    long_tune = " ".join(["A", "B", "c", "d", "|"] * 400)
    (tmp_path / "long.txt").write_text(f"M:4/4\nK:Cmaj\n{long_tune}\n")
    config = corpus_config(tmp_path, 0)
    config["transcriptions"] = {
        "short": {"tokens": str(EXCERPT)},
        "long": {"tokens": str(tmp_path / "long.txt")},
    }
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    asked = {}
    for rule, _, text in job_blocks(dry_run(workdir)):
        name = re.search(r"wildcards: name=(\S+)", text)
        resources = re.search(r"resources: (.*)", text)
        if name and resources and rule in ("compute_matrices", "draw_figures", "measure_resemblance"):
            values = dict(re.findall(r"(mem_mb|runtime)=(\d+)", resources.group(1)))
            asked[rule, name.group(1)] = (int(values["mem_mb"]), int(values["runtime"]))
    for rule in ("compute_matrices", "draw_figures", "measure_resemblance"):
        assert asked[rule, "long"][0] > asked[rule, "short"][0], rule
        assert asked[rule, "long"][1] >= asked[rule, "short"][1], rule


@needs_plugin
def test_a_corpus_run_is_a_few_submissions(tmp_path):
    """125 transcriptions (hundreds of jobs) become 5 submissions: the corpus,
    the model, and 3 groups of at most 50 transcriptions."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(corpus_config(tmp_path, 112)))
    output = dry_run(workdir)
    blocks = job_blocks(output)
    grouped_rules = set(yaml.safe_load((PROFILE / "config.yaml").read_text())["groups"])
    for rule, grouped, _ in blocks:
        assert grouped == (rule in grouped_rules), rule
    ungrouped = sorted(rule for rule, grouped, _ in blocks if not grouped)
    assert ungrouped == ["all", "build_corpus", "build_index", "init_untrained_model"]
    counts = {rule: sum(r == rule for r, _, _ in blocks) for rule in GROUPED}
    assert counts == {"tokenize_transcription": 13, "read_activations": 13, "generate_activations": 112}
    groups = output.split("Group job transcriptions")[1:]
    assert len(groups) == 3
    for group in groups:
        assert 0 < len(set(re.findall(r"wildcards: name=(\S+)", group))) <= 50


@needs_plugin
@pytest.mark.parametrize("device, gpus", [("cpu", 0), ("cuda", 1)])
def test_model_jobs_ask_for_a_gpu_only_with_cuda(tmp_path, device, gpus):
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = corpus_config(tmp_path, 1)
    config["device"] = device
    config["training"] = {"small": {"corpus": "mini", "n_units": 8, "max_epochs": 1, "device": device}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    blocks = job_blocks(dry_run(workdir, "all", "train"))
    model_rules = {"read_activations", "generate_activations", "train_model"}
    model_rules |= {"measure_influence", "attribute_logits", "ablate_units"}  # they read the tune again
    assert model_rules <= {rule for rule, _, _ in blocks}
    for rule, _, text in blocks:
        asked = re.search(r"resources: .*", text).group(0)
        if rule in model_rules:
            assert f"gpu={gpus}" in asked, (rule, asked)
        else:
            assert "gpu=1" not in asked, (rule, asked)


@pytest.mark.slurm
@pytest.mark.skipif(os.environ.get("FOLKRNN_LENS_SLURM") != "1", reason="set FOLKRNN_LENS_SLURM=1 (root)")
def test_a_real_slurm_cluster_gives_the_same_bytes():
    """tests/slurm/run_local_slurm.sh: SLURM run vs -j 1 vs -j 2, SHA-256 of every table."""
    env = {**os.environ, "PYTHON": sys.executable}
    command = ["bash", str(SCRIPT)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=1200)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # the script's trap stops the cluster
        output, _ = process.communicate(timeout=120)
        pytest.fail("the SLURM test took over 20 minutes:\n" + output[-6000:])
    print(output[-6000:])
    assert process.returncode == 0
    assert "PASS:" in output
