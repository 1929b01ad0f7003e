"""How much of music21's real ABC collections folkrnn_lens.tokens.abc can normalise.

Usage: python benchmarks/abc_coverage.py [--out skipped.csv] [--top 10]

For O'Neill's 1850 and Ryan's Mammoth Collection (shipped in music21's corpus)
prints tunes, ok, skipped, percent ok, seconds and the most frequent skip
reasons; --out writes every skipped tune (source, x, title, reason) as CSV.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "src"))

from folkrnn_lens.tokens.abc import AbcTune, read_abc_file  # noqa: E402
from folkrnn_lens.tokens.corpus import music21_corpus_dir  # noqa: E402

COLLECTIONS = ("oneills1850", "ryansMammoth")


def reason_kind(reason: str) -> str:
    """Group reasons by their general kind: drop the line number and quoted details."""
    kind = re.sub(r"^line \d+: ", "", reason)
    return re.sub(r"'[^']*'", "'...'", kind)


def measure(directory: Path) -> tuple[list[AbcTune], float]:
    started = time.perf_counter()
    tunes = [tune for path in sorted(directory.glob("*.abc")) for tune in read_abc_file(path)]
    return tunes, time.perf_counter() - started


def report(name: str, tunes: list[AbcTune], seconds: float, top: int) -> None:
    ok = sum(tune.status == "ok" for tune in tunes)
    skipped = len(tunes) - ok
    percent = 100.0 * ok / len(tunes) if tunes else 0.0
    print(f"{name}: tunes {len(tunes)}  ok {ok}  skipped {skipped}  ok {percent:.1f}%  {seconds:.2f} s")
    reasons = Counter(reason_kind(t.reason) for t in tunes if t.status != "ok")
    for reason, count in reasons.most_common(top):
        print(f"  {count:5d}  {reason}")


def write_skipped(path: Path, tunes: list[AbcTune]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "x", "title", "reason"])
        for tune in tunes:
            if tune.status != "ok":
                writer.writerow([tune.source, tune.x, tune.title, tune.reason])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="CSV file for the skipped tunes")
    parser.add_argument("--top", type=int, default=10, help="skip reasons to list")
    args = parser.parse_args(argv)
    root = music21_corpus_dir()
    everything: list[AbcTune] = []
    for name in COLLECTIONS:
        tunes, seconds = measure(root / name)
        report(name, tunes, seconds, args.top)
        everything += tunes
    ok = sum(tune.status == "ok" for tune in everything)
    print(f"all: tunes {len(everything)}  ok {ok}  ok {100.0 * ok / max(len(everything), 1):.1f}%")
    if args.out:
        write_skipped(args.out, everything)
        print(f"skipped tunes written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
