"""The whole analysis of one long tune, by `snakemake -j 2` with the default config:
wall time and peak memory of every job, against the cost model the rules declare.

The tune is built from the bodies of O'Neill's tunes (music21's corpus) under one
meter and mode, cut at a bar line near the asked-for number of steps, and read by
the shipped model. Targets (2 cores): 1,000 steps in at most 3 minutes and 3 GiB
peak; 5,000 steps within 4 GiB peak, or refused before any job.

    python benchmarks/long_tune.py --steps 1000 [--keep DIR] [--set resemblance.bar_permutations=0]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workflow" / "src"))

from folkrnn_lens.tokens.abc import read_abc_file  # noqa: E402
from folkrnn_lens.tokens.corpus import resolve_source  # noqa: E402
from folkrnn_lens.tokens.format import Transcription, is_bar, write_token_file  # noqa: E402

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
SOURCE = "music21:oneills1850"


def long_tune(steps: int) -> Transcription:
    """Bodies of O'Neill's tunes one after another until the tune reads about ``steps``
    steps (<s>, meter, mode and body), ending on a bar line."""
    body: list[str] = []
    for path in sorted(resolve_source(SOURCE).glob("*.abc")):
        for tune in read_abc_file(path):
            if tune.status != "ok":
                continue
            for token in tune.body:
                if len(body) + 3 >= steps and is_bar(body[-1]):
                    return Transcription("M:6/8", "K:Cmaj", tuple(body))
                body.append(token)
    raise SystemExit(f"{SOURCE} holds fewer than {steps} steps")


def override(config: dict, assignment: str) -> None:
    """--set a.b.c=value (value read as YAML)."""
    keys, value = assignment.split("=", 1)
    *parents, last = keys.split(".")
    for key in parents:
        config = config.setdefault(key, {})
    config[last] = yaml.safe_load(value)


def job_rows(workdir: Path) -> list[tuple[str, float, float]]:
    """(rule, seconds, peak RSS in MiB) of every job, from the benchmark files."""
    rows = []
    for path in sorted((workdir / "results" / "benchmarks").rglob("*.tsv")):
        with path.open() as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        rss = float(row["max_rss"]) if row["max_rss"] not in ("", "NA", "-") else float("nan")
        rows.append((path.parent.name, float(row["s"]), rss))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--set", action="append", default=[], help="e.g. analysis.softmax=false")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="long_tune_"))
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    tune = long_tune(args.steps)
    write_token_file(workdir / "long.txt", [tune])
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["model"] = {"file": str(ROOT / config["model"]["file"])}
    config.update(corpora={}, training={}, probes={}, corpus_analysis={}, corpus_comparisons=[])
    config["transcriptions"] = {"long": {"tokens": str(workdir / "long.txt")}}
    for assignment in args.set:
        override(config, assignment)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))

    n_steps = len(tune.tokens) + 1
    start = time.perf_counter()
    result = subprocess.run([*SNAKEMAKE, "-d", str(workdir), "-j", "2"], capture_output=True, text=True)
    total = time.perf_counter() - start
    print(f"one tune of {n_steps} steps, default config{' with ' + ', '.join(args.set) if args.set else ''}:")
    if result.returncode != 0:
        print("  snakemake refused or failed:\n" + (result.stdout + result.stderr)[-3000:])
    for rule, seconds, rss in job_rows(workdir):
        print(f"  {rule:16s} {seconds:8.1f} s   peak {rss:8.0f} MiB")
    peak = max((rss for _, _, rss in job_rows(workdir)), default=float("nan"))
    print(f"  total wall {total:8.1f} s, largest job peak {peak:.0f} MiB")
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
