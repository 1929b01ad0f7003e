"""One tune end to end, cold: ABC -> tokens -> activations -> every matrix, figure,
animation and the score, by `snakemake -j 2` in a fresh folder. Target: 20 s wall
on 2 cores.

The resemblance tables of "beyond part 9" are switched off: they are not part of
the target (the rule `resemblance` takes a few seconds more a tune).

The model is made beforehand (not timed): folk-rnn v2's untrained architecture
over the excerpt's vocabulary and the tune's tokens, as the default config's
stand-in does, so the timed run is what a user pays per tune.

    python benchmarks/analysis_speed.py [--tune-abc music21:oneills1850/0001-0050.abc --x 3] [--keep DIR]

Prints the breakdown: Snakemake start (parse + DAG, a dry run), the model
(read_activations), matrices, drawing (figures; with its own split into heatmaps
and animations), the score (beside them), and the rest (tokenising, job
start-up, scheduling).
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workflow" / "src"))

from folkrnn_lens.model.untrained import init_untrained_model  # noqa: E402
from folkrnn_lens.tokens.corpus import load_transcription  # noqa: E402
from folkrnn_lens.tokens.format import write_token_file  # noqa: E402

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]


def job_seconds(workdir: Path, stage: str) -> float:
    path = workdir / "results" / "benchmarks" / stage / "tune.tsv"
    with path.open() as handle:
        return float(next(csv.DictReader(handle, delimiter="\t"))["s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune-abc", default="music21:oneills1850/0001-0050.abc")
    parser.add_argument(
        "--x", type=int, default=3, help="X: number of the tune (3: O'Neill's Little Heathy Hill)"
    )
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="analysis_speed_"))
    if workdir.exists() and args.keep:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    spec = {"abc": args.tune_abc, "x": args.x}
    tune = load_transcription(spec, "tune")
    write_token_file(workdir / "tune_tokens.txt", [tune])
    model = workdir / "model.safetensors"
    init_untrained_model(
        [ROOT / "resources" / "data_v2_excerpt.txt", workdir / "tune_tokens.txt"], model, 3, 512, 0
    )
    config = {
        "model": {"file": str(model)},
        "transcriptions": {"tune": spec},
        "record": {},
        "resemblance": {"enabled": False},  # the part-9 analysis only (issue 4's target)
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))

    start = time.perf_counter()
    subprocess.run([*SNAKEMAKE, "-d", str(workdir), "-n", "-q"], check=True, capture_output=True)
    startup = time.perf_counter() - start
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)  # cold again

    start = time.perf_counter()
    result = subprocess.run([*SNAKEMAKE, "-d", str(workdir), "-j", "2", "-q"], capture_output=True, text=True)
    total = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(result.stdout[-3000:] + result.stderr[-3000:])

    model_s, matrices_s = job_seconds(workdir, "activations"), job_seconds(workdir, "matrices")
    drawing_s, score_s = job_seconds(workdir, "figures"), job_seconds(workdir, "score")
    log = (workdir / "results" / "logs" / "figures" / "tune.log").read_text()
    split = re.search(r"heatmaps in ([\d.]+) s, (\d+) animations in ([\d.]+) s", log)
    steps = len(tune.tokens) + 1
    figures = len(list((workdir / "results" / "transcriptions" / "tune" / "figures").glob("*.png")))
    animations = len(list((workdir / "results" / "transcriptions" / "tune" / "animations").glob("*.gif")))
    rest = total - startup - model_s - matrices_s - drawing_s
    print(f"one tune ({tune.title or 'X:' + str(args.x)}, {steps} steps), cold, snakemake -j 2:")
    print(f"  Snakemake start (parse + DAG)   {startup:6.2f} s")
    print(f"  model (read_activations job)    {model_s:6.2f} s")
    print(f"  matrices (matrices job)         {matrices_s:6.2f} s")
    print(
        f"  drawing (figures job)           {drawing_s:6.2f} s   {figures} heatmaps, {animations} animations"
    )
    if split:
        print(f"    of which heatmaps {split[1]} s, animations {split[3]} s (in-process)")
    print(f"  score (beside them)             {score_s:6.2f} s")
    print(f"  rest (tokenise, job start-up)   {rest:6.2f} s")
    verdict = "met" if total <= 20 else "NOT met"
    print(f"  total wall                      {total:6.2f} s   (target 20 s: {verdict})")
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
