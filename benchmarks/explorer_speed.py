"""The explorer in headless Chromium: size on disk, build time, first heatmap, matrix
switches and the hover readout, for the default real tune and a long one.

Targets (2 cores): the default real tune (O'Neill's Little Heathy Hill, 165 steps,
every layer and quantity) at most 15 MB, first heatmap within 1.5 s of opening,
each matrix switch within 150 ms, the hover readout within one frame; a 1,000-step
tune at most 60 MB and each switch within 1 s; size about linear in the steps;
building the explorer at most 3 s.

The activations come from the shipped model with the default config (every layer
and quantity, the default analysis), made beforehand and not timed. A switch is the
first time a matrix is shown: the page computes it from the activations then (a
later switch to it is a cache hit).

    python benchmarks/explorer_speed.py [--steps 165 1000] [--keep DIR]

Needs Debian's chromium (/usr/bin/chromium) and playwright for Python.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workflow" / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from long_tune import long_tune  # noqa: E402

from folkrnn_lens.activations.record import read_activations  # noqa: E402
from folkrnn_lens.explorer.build import build_explorer  # noqa: E402
from folkrnn_lens.figures.score import render_score  # noqa: E402
from folkrnn_lens.figures.style import Style  # noqa: E402
from folkrnn_lens.matrices.compute import compute_matrices  # noqa: E402
from folkrnn_lens.matrices.plan import plan_analysis  # noqa: E402
from folkrnn_lens.tokens.corpus import load_transcription  # noqa: E402
from folkrnn_lens.tokens.format import write_token_file  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
MODEL = ROOT / "resources" / "models" / "folkrnn_v2_music21.safetensors"
DEFAULT_TUNE = "oneills_little_heathy_hill"

# After a mouse move over a cell, one animation frame: is the readout on that cell?
# (the page updates it on the next frame; a callback asked for now runs after it)
READOUT_AFTER_ONE_FRAME = """async () => {
  await new Promise((resolve) => requestAnimationFrame(resolve));
  const left = document.getElementById("readout-left").dataset;
  return [Number(left.s), Number(left.t)];
}"""


def analysed_tune(folder: Path, steps: int, config: dict) -> Path:
    """tokens -> activations -> matrices (and the score) of the default tune, or of a
    long tune of about ``steps`` steps; returns the folder."""
    if steps == 0:
        tune = load_transcription(config["transcriptions"][DEFAULT_TUNE], DEFAULT_TUNE)
    else:
        tune = long_tune(steps)
    write_token_file(folder / "tokens.txt", [tune])
    paths = [folder / f for f in ("steps.parquet", "activations.parquet")]
    read_activations(MODEL, folder / "tokens.txt", *paths, name="tune", threads=2)
    plan = plan_analysis(config.get("analysis", {}))
    compute_matrices("tune", *paths, folder / "matrices.npz", folder / "summary.parquet", plan)
    render_score("tune", folder / "steps.parquet", folder / "score.abc", folder / "score.svg")
    return folder


def size_mb(folder: Path) -> float:
    files = [folder / "explorer.html", *(folder / "explorer").rglob("*")]
    return sum(f.stat().st_size for f in files if f.is_file()) / 1e6


def measure_page(browser, html: Path, names: list[str], n_steps: int) -> dict:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(html.as_uri())
    if not page.evaluate("() => window.FOLKRNN_EXPLORER.ready"):
        sys.exit(f"{html}: the page did not start: {errors}")
    first = page.evaluate("() => window.FOLKRNN_EXPLORER.timings.firstHeatmap")
    switches = {}
    for name in names:
        started = time.perf_counter()
        page.evaluate("(name) => window.FOLKRNN_EXPLORER.selectMatrix(name)", name)
        switches[name] = (time.perf_counter() - started) * 1000
    cell = [n_steps // 2, n_steps // 3]
    at = page.evaluate("([s, t]) => window.FOLKRNN_EXPLORER.locate.cell('a', s, t)", cell)
    page.mouse.move(at["x"], at["y"])
    # a long tune's cells are under a pixel and the pointer moves in whole pixels:
    # it lands within a few steps of the cell
    shown = page.evaluate(READOUT_AFTER_ONE_FRAME)
    hover = all(abs(a - b) <= max(2, n_steps // 100) for a, b in zip(shown, cell))
    page.close()
    return {"first_ms": first, "switches": switches, "hover_one_frame": hover, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[0, 1000], help="0: the default real tune; N: a long tune"
    )
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    base = args.keep or Path(tempfile.mkdtemp(prefix="explorer_speed_"))
    style = Style.from_config(config.get("analysis", {}))
    print(f"{'tune':>10} {'steps':>6} {'MB':>6} {'build s':>8} {'first ms':>9} {'worst switch':>22}  hover")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for steps in args.steps:
            folder = base / (DEFAULT_TUNE if steps == 0 else f"long_{steps}")
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            analysed_tune(folder, steps, config)
            plan = plan_analysis(config.get("analysis", {}))
            started = time.perf_counter()
            build_explorer(
                "tune",
                folder / "steps.parquet",
                folder / "activations.parquet",
                folder / "summary.parquet",
                folder / "matrices.npz",
                plan,
                style,
                folder / "explorer.html",
                folder / "explorer",
                score_path=folder / "score.svg",
            )
            build_s = time.perf_counter() - started
            n_steps = len(pd.read_parquet(folder / "steps.parquet", columns=["step"]))
            result = measure_page(browser, folder / "explorer.html", plan.names, n_steps)
            worst = max(result["switches"], key=result["switches"].get)
            label = "default" if steps == 0 else "long"
            hover = "1 frame" if result["hover_one_frame"] else "LATE"
            print(
                f"{label:>10} {n_steps:6d} {size_mb(folder):6.1f} {build_s:8.2f} {result['first_ms']:9.0f} "
                f"{worst:>14} {result['switches'][worst]:5.0f} ms  {hover}"
            )
            by_kind: dict[str, list[float]] = {}
            for name, ms in result["switches"].items():
                kind = "cross" if "_x_" in name else name.rsplit(".", 1)[-1] if "." in name else name
                by_kind.setdefault(kind, []).append(ms)
            print(
                "           switches by kind (median / max ms): "
                + ", ".join(
                    f"{kind} {sorted(v)[len(v) // 2]:.0f}/{max(v):.0f}" for kind, v in sorted(by_kind.items())
                )
            )
            if result["errors"]:
                print(f"           page errors: {result['errors']}")
        browser.close()
    if not args.keep:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
