"""Measures what each per-transcription job costs as a tune grows, next to what the
cost model (folkrnn_lens.cost) predicts and the rules declare.

Each stage's library function runs in a fresh Python process (as a job does), on a
tune of n steps built from O'Neill's tunes and read by the shipped model, with the
default config; the process's wall time and peak RSS are measured. The
coefficients of folkrnn_lens.cost were fitted to these figures on a 2-core machine.

    python benchmarks/cost_model.py [--steps 250 500 1000 2000] [--stages matrices figures]
        [--bar-permutations 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workflow" / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from long_tune import long_tune  # noqa: E402

from folkrnn_lens.cost import JobSizes, job_costs  # noqa: E402
from folkrnn_lens.tokens.format import write_token_file  # noqa: E402

STAGES = ("activations", "matrices", "figures", "resemblance", "explorer")
STAGES += ("influence", "attribution", "ablation")  # the interventions
MODEL = ROOT / "resources" / "models" / "folkrnn_v2_music21.safetensors"

# Each stage as a job runs it: its imports, then the library call.
PROGRAMS = {
    "activations": """
        from folkrnn_lens.activations.record import read_activations
        read_activations(MODEL, DIR / "tokens.txt", DIR / "steps.parquet", DIR / "activations.parquet",
                    [1, 2, 3], list(QUANTITIES), "tune", "cpu", 2)
    """,
    "matrices": """
        from folkrnn_lens.matrices.compute import compute_matrices
        from folkrnn_lens.matrices.plan import plan_analysis
        compute_matrices("tune", DIR / "steps.parquet", DIR / "activations.parquet",
                         DIR / "matrices.npz", DIR / "summary.parquet", plan_analysis(CONFIG["analysis"]))
    """,
    "figures": """
        from folkrnn_lens.figures.draw import draw_figures
        from folkrnn_lens.figures.style import Style
        from folkrnn_lens.matrices.plan import plan_analysis
        draw_figures("tune", DIR / "matrices.npz", DIR / "summary.parquet",
                     plan_analysis(CONFIG["analysis"]), DIR / "figures", DIR / "animations",
                     Style.from_config(CONFIG["analysis"]), threads=2)
    """,
    "resemblance": """
        from folkrnn_lens.resemblance.settings import Settings
        from folkrnn_lens.resemblance.transcription import measure_resemblance
        settings = Settings.from_config(CONFIG["resemblance"], [1, 2, 3], list(QUANTITIES))
        measure_resemblance("tune", DIR / "steps.parquet", DIR / "activations.parquet",
                            DIR / "resemblance.parquet", DIR / "saturation.parquet", DIR / "r.png",
                            DIR / "s.png", settings, list(QUANTITIES))
    """,
    "influence": """
        from folkrnn_lens.interventions.transcription import measure_influence
        measure_influence("tune", MODEL, DIR / "steps.parquet", DIR / "influence.npz",
                          DIR / "influence.parquet", DIR / "influence.png",
                          CONFIG["interventions"]["influence"], CONFIG["analysis"]["colours"], 100, threads=2)
    """,
    "attribution": """
        from folkrnn_lens.interventions.transcription import attribute_logits
        attribute_logits("tune", MODEL, DIR / "steps.parquet", DIR / "attribution.parquet",
                         DIR / "attribution_summary.parquet", DIR / "attribution.png",
                         CONFIG["interventions"]["attribution"]["top_units"],
                         CONFIG["analysis"]["colours"], 100, threads=2)
    """,
    "ablation": """
        from folkrnn_lens.interventions.transcription import ablate_transcription
        ablate_transcription("tune", MODEL, DIR / "steps.parquet", DIR / "ablation.parquet",
                             DIR / "ablation_summary.parquet", DIR / "ablation.png",
                             CONFIG["interventions"]["ablation"], CONFIG["analysis"]["colours"], 100,
                             threads=2)
    """,
    "explorer": """
        from folkrnn_lens.explorer.build import build_explorer
        from folkrnn_lens.figures.style import Style
        from folkrnn_lens.matrices.plan import plan_analysis
        analysis = CONFIG["analysis"]
        build_explorer("tune", DIR / "steps.parquet", DIR / "activations.parquet", DIR / "summary.parquet",
                       DIR / "matrices.npz", plan_analysis(analysis), Style.from_config(analysis),
                       DIR / "explorer.html", DIR / "explorer")
    """,
}
PRELUDE = """
import json, os, resource, sys, time
from pathlib import Path
os.environ["OPENBLAS_NUM_THREADS"] = "2"
start = time.perf_counter()
sys.path.insert(0, {src!r})
from folkrnn_lens.names import QUANTITIES
DIR, MODEL, CONFIG = Path({dir!r}), Path({model!r}), json.loads({config!r})
"""
REPORT = """
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def defaults() -> dict:
    """The default config with the schema's defaults filled (as the workflow sees it)."""
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return config


def measure(stage: str, folder: Path, config: dict) -> dict:
    prelude = PRELUDE.format(
        src=str(ROOT / "workflow" / "src"), dir=str(folder), model=str(MODEL), config=json.dumps(config)
    )
    program = prelude + textwrap.dedent(PROGRAMS[stage]) + REPORT
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{stage}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--bar-permutations", type=int, help="resemblance.bar_permutations")
    args = parser.parse_args()
    config = defaults()
    if args.bar_permutations is not None:
        config["resemblance"]["bar_permutations"] = args.bar_permutations
    print(f"{'stage':12s} {'steps':>6s} {'seconds':>8s} {'model s':>8s} {'peak MiB':>9s} {'model MiB':>9s}")
    for n in args.steps:
        with tempfile.TemporaryDirectory(prefix="cost_model_") as tmp:
            folder = Path(tmp)
            tune = long_tune(n)
            write_token_file(folder / "tokens.txt", [tune])
            steps = len(tune.tokens) + 1
            costs = job_costs(JobSizes.from_config(config, steps))
            drawn = {"figures", "explorer"} & set(args.stages)  # these read the matrices
            needed = {*args.stages, "activations", *(["matrices"] if drawn else [])}
            for stage in [s for s in STAGES if s in needed]:
                measured = measure(stage, folder, config)
                if stage not in args.stages:
                    continue
                cost = costs[stage]
                print(
                    f"{stage:12s} {steps:6d} {measured['seconds']:8.1f} {cost.seconds:8.1f} "
                    f"{measured['peak_mb']:9.0f} {cost.peak_mb:9.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
