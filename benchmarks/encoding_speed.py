"""What the units encode, at scale: a corpus analysis of every tune of O'Neill's 1850 and
Ryan's Mammoth Collection (about 3,000) with the step features, unit selectivity,
bar-phase tuning, the bar-period analysis and the probes' state samples, by
`snakemake -j 2` in a fresh folder; then the probes. Targets (2 cores): the features
and sums add at most 50% to the corpus analysis's time, its peak memory stays at most
2 GiB, and the probes of one layer and quantity for every feature train in at most
2 minutes.

    python benchmarks/encoding_speed.py [--model FILE] [--sample N] [--keep DIR]

Each part logs the seconds it spent on the features, the selectivity sums (tuning and
bar period included) and the probes' samples; the rest of its time is the corpus
analysis without them. Prints, per part, both and their ratio, the parts' peak memory
(side by side), the aggregate's time, and the probes' seconds per layer and quantity.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_speed import arguments, benchmark_rows, corpus_workdir  # noqa: E402  (shared set-up)

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
TOTAL = re.compile(r"(\d+) tunes analysed, (\d+) failed, in ([\d.]+) s")
SPENT = re.compile(r"of which features ([\d.]+) s, selectivity ([\d.]+) s, probe samples ([\d.]+) s")
PROBES = re.compile(r"layer (\d+) (\S+): (\d+) steps decoded in ([\d.]+) s")


def part_seconds(log: str) -> tuple[float, float]:
    """(the part's seconds without the encoding stages, the encoding stages' seconds)."""
    total = float(TOTAL.search(log).group(3))
    encoding = sum(map(float, SPENT.search(log).groups()))
    return total - encoding, encoding


def main() -> None:
    args = arguments(__doc__.splitlines()[0], jobs=False)  # two parts, as the targets say
    workdir = corpus_workdir(args, "encoding_speed_")
    start = time.perf_counter()
    command = [*SNAKEMAKE, "-d", str(workdir), "results/corpus_analysis/all/figures/bar_clock.png"]
    result = subprocess.run([*command, "-j", "2", "-q", "progress"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stdout[-3000:] + result.stderr[-3000:])
    wall = time.perf_counter() - start

    logs = workdir / "results" / "logs" / "corpus_analysis" / "all"
    rows = {name: (s, rss) for name, s, rss in benchmark_rows(workdir)}
    tunes_table = workdir / "results" / "corpus_analysis" / "all" / "tunes.parquet"
    analysed = pd.read_parquet(tunes_table, columns=["status", "n_steps"])
    ok = analysed["status"] == "ok"
    print(f"{int(ok.sum())} tunes ({int(analysed.loc[ok, 'n_steps'].sum())} steps); snakemake -j 2, "
          f"{wall:.1f} s wall with the corpus built and the probes")  # fmt: skip
    for part in sorted(logs.glob("part_*.log")):
        base, encoding = part_seconds(part.read_text())
        added = f"+{100 * encoding / base:.0f}% (target: at most 50%)"
        print(f"  {part.stem}: {base:6.1f} s without, {encoding:6.1f} s for features, selectivity, "
              f"tuning, bar period and probe samples: {added}")  # fmt: skip
    parts = [rss for name, (_, rss) in rows.items() if name.startswith("corpus_analysis/all/part_")]
    aggregate = rows["corpus_analysis/all/aggregate"][0]
    print(f"  aggregate: {aggregate:.1f} s (selectivity, tuning and bar-period tables included)")
    print(f"peak memory: the parts side by side {sum(parts):.0f} MiB (target: at most 2048 MiB); "
          f"aggregate {rows['corpus_analysis/all/aggregate'][1]:.0f} MiB")  # fmt: skip
    probes, probes_rss = rows["corpus_analysis/all/decoding"]
    print(f"probes: {probes:.1f} s in all, peak {probes_rss:.0f} MiB")
    for layer, quantity, steps, seconds in PROBES.findall((logs / "decoding.log").read_text()):
        print(f"  layer {layer} {quantity}: {steps} sampled steps, every feature's probe and control "
              f"in {seconds} s (target: at most 120 s)")  # fmt: skip
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
