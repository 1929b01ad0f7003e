"""The interventions of one tune of about N steps, read by the shipped model, in this
process (the computation alone, no tables or figures): token influence, direct logit
attribution, activation patching against the tune with one note changed, and the
one-at-a-time ablation of every unit of h in every layer (3 x 512 rows). Targets
(2 cores): influence of a 200-step tune at most 5 s; attribution under 1 s; patching
every (layer, step) of a 200-step pair at most 10 s; the 1,536-unit sweep at most 60 s.

    python benchmarks/interventions_speed.py [--steps 200 600] [--no-sweep]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workflow" / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from long_tune import long_tune  # noqa: E402

from folkrnn_lens.interventions.ablation import ablate_units, sweep_rows  # noqa: E402
from folkrnn_lens.interventions.attribution import logit_attribution  # noqa: E402
from folkrnn_lens.interventions.influence import Ablation, token_influence, top_states, tune_steps  # noqa: E402
from folkrnn_lens.interventions.patching import activation_patching  # noqa: E402
from folkrnn_lens.model.checkpoint import load_model_on  # noqa: E402

MODEL = ROOT / "resources" / "models" / "folkrnn_v2_music21.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[200, 600])
    parser.add_argument("--no-sweep", action="store_true", help="leave out the unit ablation sweep")
    args = parser.parse_args()
    model = load_model_on(MODEL, "cpu", 2)
    header = f"{'steps':>6} {'influence s':>12} {'attribution s':>14} {'patching s':>11} {'sweep s':>8}"
    print(f"{header} {'peak MiB':>9}")
    for steps in args.steps:
        inputs, targets = tune_steps(long_tune(steps).tokens)
        started = time.perf_counter()
        token_influence(model, inputs, targets, Ablation("zero"))
        influence_s = time.perf_counter() - started
        started = time.perf_counter()
        logit_attribution(model, top_states(model, inputs), targets)
        attribution_s = time.perf_counter() - started
        corrupted = list(inputs)
        corrupted[12] = "B" if corrupted[12] != "B" else "c"  # one note changed
        started = time.perf_counter()
        activation_patching(model, inputs, corrupted, targets)
        patching_s = time.perf_counter() - started
        started = time.perf_counter()
        rows = sweep_rows(model.config.n_units)
        for layer in [] if args.no_sweep else range(1, model.config.n_layers + 1):
            ablate_units(model, inputs, targets, layer, "h", rows)
        sweep = "-" if args.no_sweep else f"{time.perf_counter() - started:8.1f}"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        times = f"{influence_s:12.2f} {attribution_s:14.2f} {patching_s:11.2f} {sweep:>8}"
        print(f"{len(inputs):6d} {times} {peak:9.0f}", flush=True)


if __name__ == "__main__":
    main()
