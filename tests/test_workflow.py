"""The Snakemake workflow end to end, run as a user runs it."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from folkrnn_lens.activations.tables import load_activation, read_provenance

from .conftest import EXCERPT, ROOT

pytestmark = pytest.mark.slow  # runs Snakemake: seconds to minutes a test

SNAKEMAKE = [sys.executable, "-m", "snakemake"]

ABC = """X:7
T:Test Reel
M:4/4
L:1/8
K:D
FAAB AFED|FAAB A2de|fded cAGE|1 FDEC D4:|2 FDEC D2de||
"""


def tiny_config(tmp: Path) -> dict:
    (tmp / "tunes.abc").write_text(ABC)
    return {
        "model": {
            "file": "untrained",
            "untrained": {
                "n_layers": 3,
                "n_units": 16,
                "seed": 3,
                "vocabulary_corpora": ["mini"],
                "vocabulary_files": [str(EXCERPT)],
            },
        },
        "corpora": {"mini": {"sources": [str(tmp / "tunes.abc")]}},
        "transcriptions": {
            "reel": {"abc": str(tmp / "tunes.abc"), "x": 7},
            "excerpt_3": {"tokens": str(EXCERPT), "index": 3},
            "gen": {"generate": {"seed": 4, "temperature": 1.0, "max_length": 50}},
        },
        "record": {"layers": [1, 3], "quantities": ["h", "c", "f"]},
        "torch_threads": 1,
    }


def read_provenance_of(path: Path) -> dict:
    """The interventions' provenance in a table's metadata."""
    return json.loads(pq.read_schema(path).metadata[b"folkrnn_lens.interventions"])


def run_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def make_workdir(tmp: Path, config: dict) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp


def test_lint_is_clean():
    result = run_snakemake(ROOT, "--lint")
    assert "Congratulations" in result.stdout + result.stderr


def test_small_config_runs_end_to_end_and_gives_the_same_bytes_with_one_job(tmp_path):
    """The small config with `-j 2`: what it makes; then its ABC and generated tunes
    alone with `-j 1`: every file of theirs the same bytes (one test, one `-j 2` run)."""
    config = tiny_config(tmp_path)
    workdir = make_workdir(tmp_path / "run", config)
    run_snakemake(workdir, "-j", "2")
    folder = workdir / "results" / "transcriptions"
    for name in ("reel", "excerpt_3", "gen"):
        for file in ("tokens.txt", "steps.parquet", "activations.parquet"):
            assert (folder / name / file).stat().st_size > 0, (name, file)
    steps = pd.read_parquet(folder / "reel" / "steps.parquet")
    assert steps["input_token"].tolist()[:3] == ["<s>", "M:4/4", "K:Cmaj"]
    assert steps["output_token"].iloc[-1] == "</s>"
    h3 = load_activation(folder / "reel" / "activations.parquet", 3, "h")
    assert h3.shape == (len(steps), 16)
    with pytest.raises(KeyError):
        load_activation(folder / "reel" / "activations.parquet", 2, "h")  # not configured
    meta = read_provenance(folder / "gen" / "activations.parquet")
    assert (meta["mode"], meta["seed"]) == ("generate", 4)
    assert meta["model_file"].endswith("untrained-v2.safetensors")
    tunes = pd.read_parquet(workdir / "results" / "corpus" / "mini" / "tunes.parquet")
    assert tunes["status"].tolist() == ["ok"]
    assert (workdir / "results" / "logs" / "activations" / "reel.log").exists()
    assert (workdir / "results" / "benchmarks" / "activations" / "reel.tsv").exists()
    influence = pd.read_parquet(folder / "reel" / "interventions" / "influence.parquet")
    n = len(steps)
    assert len(influence) == n * (n + 1) // 2 and (influence["t"] >= influence["s"]).all()
    features = pd.read_parquet(folder / "reel" / "features.parquet")
    assert features["input_token"].tolist() == steps["input_token"].tolist()
    assert features["next_token"].tolist() == steps["output_token"].tolist()
    assert features["bar_phase"].dropna().between(0, 1, inclusive="left").all()
    analysis = folder / "reel"
    with (
        np.load(analysis / "matrices.npz") as matrices,
        np.load(analysis / "interventions" / "influence.npz") as measured,
    ):
        np.testing.assert_array_equal(matrices["influence"], measured["influence"])
    resemblance = pd.read_parquet(analysis / "resemblance.parquet")
    compared = resemblance[resemblance["family"] == "influence"]
    assert "onehot" in set(compared["b"]) and compared["pearson"].notna().all()
    facts = read_provenance_of(folder / "gen" / "interventions" / "attribution.parquet")
    assert facts["transcription"] == "gen" and facts["attribution"] == {"top_units": 10}
    assert_same_bytes_with_one_job(workdir, config, tmp_path / "j1")


def assert_same_bytes_with_one_job(two: Path, config: dict, folder: Path) -> None:
    """The reel and the generated tune of ``config`` run alone with `-j 1` in ``folder``:
    every file of theirs the same bytes as in the `-j 2` run in ``two``."""
    others = {k: v for k, v in config["transcriptions"].items() if k in ("reel", "gen")}
    one = make_workdir(folder, {**config, "transcriptions": others})
    run_snakemake(one, "-j", "1")
    outputs = []
    for workdir in (one, two):
        files = [f for name in others for f in (workdir / "results" / "transcriptions" / name).rglob("*.*")]
        outputs.append({f.relative_to(workdir).as_posix(): f.read_bytes() for f in sorted(files)})
    assert outputs[0].keys() == outputs[1].keys()
    recorded = ("tokens.txt", "steps.parquet", "activations.parquet")
    assert sum(name.endswith(recorded) for name in outputs[0]) == 6
    assert sum(name.endswith(".png") for name in outputs[0]) > 6  # and the analysis, too
    for name in outputs[0]:
        assert outputs[0][name] == outputs[1][name], name


def test_editing_a_source_file_reruns_what_depends_on_it(tmp_path):
    """The ABC file of a transcription is an input: an edit re-tokenises it (and
    re-reads it through the model), `--summary` says why, and the tables' provenance
    names the source and its SHA-256."""
    config = tiny_config(tmp_path)
    config["transcriptions"] = {"reel": config["transcriptions"]["reel"]}
    workdir = make_workdir(tmp_path / "run", config)
    folder = workdir / "results" / "transcriptions" / "reel"
    targets = [f"results/transcriptions/reel/{f}" for f in ("tokens.txt", "activations.parquet")]
    run_snakemake(workdir, "-j", "2", *targets)
    before = (folder / "tokens.txt").read_text()
    source = tmp_path / "tunes.abc"
    meta = read_provenance(folder / "activations.parquet")
    assert meta["source_file"] == str(source)
    assert meta["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()

    source.write_text(ABC.replace("FAAB AFED", "GAAB AFED"))
    summary = run_snakemake(workdir, "--summary", *targets).stdout
    tokens_line = next(line for line in summary.splitlines() if line.startswith(targets[0]))
    assert "updated input files" in tokens_line and "update pending" in tokens_line
    run_snakemake(workdir, "-j", "2", *targets)
    after = (folder / "tokens.txt").read_text()
    assert (before.split()[2], after.split()[2]) == ("E", "F")  # F -> G in D: E -> F in C
    meta = read_provenance(folder / "activations.parquet")
    assert meta["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


def failure_before_any_job(workdir: Path) -> str:
    """Run the workflow in ``workdir``, expecting it to stop before any job ran;
    return what it printed."""
    command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-j", "1"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    assert not (workdir / "results").exists()
    return result.stdout + result.stderr


def test_a_tune_over_the_limits_is_refused_before_any_job_and_a_window_admits_it(tmp_path):
    config = tiny_config(tmp_path)
    body = " ".join(["A", "B", "c", "d", "|"] * 600)
    (tmp_path / "long.txt").write_text(f"M:4/4\nK:Cmaj\n{body}\n")
    config["transcriptions"] = {"long": {"tokens": str(tmp_path / "long.txt")}}
    config["limits"] = {"runtime": 2}
    output = failure_before_any_job(make_workdir(tmp_path / "refused", config))
    assert "transcription 'long' has 3,003 steps" in output and "over limits.runtime 2 min" in output
    assert "resemblance: {bar_permutations: 0}" in output
    config["transcriptions"]["long"]["window"] = {"start": 0, "stop": 300}
    run_snakemake(make_workdir(tmp_path / "window", config), "-n")
    config["transcriptions"]["long"]["window"] = {"start": 3000, "stop": 3010}
    output = failure_before_any_job(make_workdir(tmp_path / "outside", config))
    assert "transcriptions -> long -> window: steps 3000..3009 do not fit the tune's 3003 steps" in output


def test_a_patching_pair_is_planned_and_what_cannot_be_intervened_refused_before_any_job(tmp_path):
    config = tiny_config(tmp_path)
    (tmp_path / "a.txt").write_text("M:4/4\nK:Cmaj\nC D E F | G A B c |\n")
    (tmp_path / "b.txt").write_text("M:4/4\nK:Cmaj\nC D E F | G A B d |\n")
    config["transcriptions"] = {name: {"tokens": str(tmp_path / f"{name}.txt")} for name in ("a", "b")}
    config["interventions"] = {"patching": {"pairs": {"ab": {"clean": "a", "corrupted": "b"}}}}
    result = run_snakemake(make_workdir(tmp_path / "pair", config), "-n")
    assert "rule patch_pair" in result.stdout and "results/patching/ab/patching.parquet" in result.stdout
    (tmp_path / "b.txt").write_text("M:4/4\nK:Cmaj\nC D E F | G A B |\n")
    output = failure_before_any_job(make_workdir(tmp_path / "refused", config))
    assert "pairs -> ab: the clean 'a' has 13 steps and the corrupted 'b' 12" in output
    config["interventions"] = {"ablation": {"start": 13}}
    output = failure_before_any_job(make_workdir(tmp_path / "late", config))
    assert "ablation -> start: step 13 is past the end of transcription 'a' (steps 0..12)" in output


def test_a_bad_config_fails_before_any_job_with_the_key_named(tmp_path):
    config = tiny_config(tmp_path)
    config["record"]["quantities"] = ["h", "hidden"]
    output = failure_before_any_job(make_workdir(tmp_path / "bad", config))
    assert "record -> quantities -> 1: 'hidden' is not one of" in output


def test_a_token_outside_the_vocabulary_fails_that_job_only(tmp_path):
    config = tiny_config(tmp_path)
    config["model"]["untrained"]["vocabulary_corpora"] = []  # the reel's tokens are not all in the excerpt
    (tmp_path / "odd.txt").write_text("M:4/4\nK:Cmaj\nC D ^^G |\n")
    config["transcriptions"]["odd"] = {"tokens": str(tmp_path / "odd.txt")}
    workdir = make_workdir(tmp_path / "odd", config)
    targets = [f"results/transcriptions/{name}/activations.parquet" for name in ("odd", "excerpt_3")]
    command = [
        *SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "-j",
        "2",
        "--keep-going",
        *targets,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    log = (workdir / "results" / "logs" / "activations" / "odd.log").read_text()
    assert "transcription 'odd'" in log and "token '^^G' at position 5" in log
    assert (workdir / "results" / "transcriptions" / "excerpt_3" / "activations.parquet").exists()


def test_default_config_runs_on_a_fresh_clone(tmp_path):
    """What the README promises: `snakemake -j 2` on the shipped config, in a copy of
    the tracked workflow files (no results, no .snakemake of this checkout)."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for item in ("Snakefile", "config.yaml", "workflow", "resources", "envs"):
        source = ROOT / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, clone / item)
    run_snakemake(clone, "-j", "2")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    index = (clone / "results" / "index.html").read_text()
    for name in config["transcriptions"]:
        steps = pd.read_parquet(clone / "results" / "transcriptions" / name / "steps.parquet")
        assert len(steps) > 1
        assert np.isfinite(np.stack(steps["softmax"].to_numpy())).all()
        assert f'href="transcriptions/{name}/explorer.html"' in index
    for probe in config["probes"]:
        assert (clone / "results" / "probes" / probe / "explorer" / "meta.js").stat().st_size > 0
        assert f'href="probes/{probe}/explorer.html"' in index
