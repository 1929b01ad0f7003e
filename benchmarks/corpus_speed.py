"""Corpus mode at scale: every tune of O'Neill's 1850 and Ryan's Mammoth
Collection (about 3,000) from ABC through to the aggregate tables and figures, by
`snakemake -j 2` in a fresh folder. Targets: at most 5 minutes wall on 2 cores,
at most 2 GiB peak memory.

    python benchmarks/corpus_speed.py [--model FILE] [--sample N] [--jobs 2] [--keep DIR]

The model defaults to the config's (the shipped folk-rnn v2); any folk-rnn
v2-sized checkpoint gives the same cost. Prints the wall time, each job's time
and peak memory (from Snakemake's benchmark files), and the peak of the jobs
that ran side by side (the parts), which bounds the run's peak memory.
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

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]


def benchmark_rows(workdir: Path) -> list[tuple[str, float, float]]:
    """(job, seconds, max RSS in MiB) of every benchmarked job."""
    rows = []
    for path in sorted((workdir / "results" / "benchmarks").rglob("*.tsv")):
        with path.open() as handle:
            record = next(csv.DictReader(handle, delimiter="\t"))
        name = path.relative_to(workdir / "results" / "benchmarks").with_suffix("").as_posix()
        rows.append((name, float(record["s"]), float(record["max_rss"])))
    return rows


def arguments(description: str, jobs: bool = True) -> argparse.Namespace:
    """The benchmarks' options: the model, a sample of the tunes, the parts, a folder to keep."""
    parser = argparse.ArgumentParser(description=description)
    default_model = yaml.safe_load((ROOT / "config.yaml").read_text())["model"]["file"]
    parser.add_argument("--model", default=default_model, help="checkpoint (default: config.yaml's)")
    parser.add_argument("--sample", type=int, help="only this many tunes (default: all)")
    if jobs:
        parser.add_argument("--jobs", type=int, default=2, help="parts the tunes are split into")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    return parser.parse_args()


def corpus_workdir(args: argparse.Namespace, prefix: str) -> Path:
    """A fresh folder whose config.yaml analyses every tune of O'Neill's and Ryan's (or
    ``args.sample`` of them) as corpus analysis ``all``, with the corpus settings of
    config.yaml's music21_sample."""
    model = Path(args.model)
    if not model.is_absolute():
        model = ROOT / model
    if not model.exists():
        sys.exit(f"{model}: no such model; pass --model FILE (a folk-rnn v2 checkpoint)")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix=prefix))
    if args.keep and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    defaults = yaml.safe_load((ROOT / "config.yaml").read_text())
    corpus_resemblance = defaults["corpus_analysis"]["music21_sample"].get("resemblance", {})
    tunes = {"corpus": "folk"} | ({"sample": args.sample} if args.sample else {})
    jobs = getattr(args, "jobs", 2)
    config = {
        "model": {"file": str(model)},
        "corpora": {"folk": {"sources": ["music21:oneills1850", "music21:ryansMammoth"]}},
        "transcriptions": {"unused": {"tokens": str(ROOT / "resources" / "data_v2_excerpt.txt")}},
        "record": {},
        "corpus_analysis": {"all": {"tunes": tunes, "jobs": jobs, "resemblance": corpus_resemblance}},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    workdir = corpus_workdir(args, "corpus_speed_")
    targets = [
        "results/corpus_analysis/all/aggregate.parquet",
        "results/corpus_analysis/all/figures/winners.png",
    ]

    start = time.perf_counter()
    command = [*SNAKEMAKE, "-d", str(workdir), *targets, "-j", "2", "-q", "progress"]
    result = subprocess.run(command, capture_output=True, text=True)
    total = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(result.stdout[-3000:] + result.stderr[-3000:])

    folder = workdir / "results" / "corpus_analysis" / "all"
    analysed = pd.read_parquet(folder / "tunes.parquet", columns=["status", "n_steps"])
    ok = analysed["status"] == "ok"
    comparisons = len(pd.read_parquet(folder / "resemblance.parquet", columns=["tune_id"]))
    rows = benchmark_rows(workdir)
    parts = [rss for name, _, rss in rows if "/part_" in name]
    print(f"corpus mode: {int(ok.sum())} tunes ({int(analysed.loc[ok, 'n_steps'].sum())} steps) analysed, "
          f"{int((~ok).sum())} failed; {comparisons} (tune, comparison) rows")  # fmt: skip
    print(f"wall: {total:.1f} s for snakemake -j 2, cold (target: at most 300 s)")
    print(f"      {total / max(int(ok.sum()), 1) * 1000:.1f} ms a tune")
    for name, seconds, rss in rows:
        print(f"  {name:50s} {seconds:7.1f} s  {rss:7.0f} MiB")
    print(f"peak memory: the {len(parts)} parts side by side at most {sum(parts):.0f} MiB "
          f"(largest job {max(r[2] for r in rows):.0f} MiB; target: at most 2048 MiB)")  # fmt: skip
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
