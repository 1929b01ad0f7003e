"""The part-9 analysis run by Snakemake as a user runs it: matrices, figures,
animations, score and report, driven by config."""

import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from folkrnn_lens.figures.score import bar_numbers_in_svg

from .conftest import EXCERPT, ROOT
from .test_workflow import SNAKEMAKE, make_workdir, run_snakemake

pytestmark = pytest.mark.slow  # runs Snakemake: seconds to minutes a test


def analysis_config(analysis: dict, record: dict | None = None) -> dict:
    return {
        "model": {
            "file": "untrained",
            "untrained": {"n_layers": 3, "n_units": 16, "seed": 5, "vocabulary_files": [str(EXCERPT)]},
        },
        "transcriptions": {"tune": {"tokens": str(EXCERPT), "index": 4}},
        "record": record or {"layers": [1, 2, 3], "quantities": ["i", "f", "o", "h"]},
        "analysis": analysis,
        "torch_threads": 1,
    }


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    config = analysis_config(
        {
            "layers": [2, 3],
            "quantities": ["i", "o", "h"],
            "cross_pairs": [["i", "o"], ["f", "i"]],  # f is not analysed: no f x i
            "figures": {"dpi": 60},
            "animation": {"frame_seconds": 0.5, "pause_seconds": 1.0, "mp4": False},
        }
    )
    workdir = make_workdir(tmp_path_factory.mktemp("analysis"), config)
    run_snakemake(workdir, "-j", "2")
    return workdir


def test_every_matrix_figure_and_animation_is_made(analysed):
    folder = analysed / "results" / "transcriptions" / "tune"
    steps = pd.read_parquet(folder / "steps.parquet")
    n = len(steps)
    summary = pd.read_parquet(folder / "summary.parquet")
    expected = ["onehot", "softmax_l1"]
    for layer in (2, 3):
        expected += [f"L{layer}.{q}.{kind}" for q in ("i", "o", "h") for kind in ("abs", "signed")]
        expected += [f"L{layer}.i_x_o"]
    assert summary["matrix"].tolist() == expected
    assert (summary["n_steps"] == n).all()
    cross = summary["kind"] == "cross"
    assert (summary.loc[cross, "n_pairs"] == n * (n - 1)).all()
    assert (summary.loc[~cross, "n_pairs"] == n * (n - 1) // 2).all()
    data = np.load(folder / "matrices.npz")
    assert set(data.files) == {*expected, "influence", "tokens", "bars", "steps"}  # I: interventions
    assert data["tokens"].tolist() == steps["input_token"].tolist()
    for name in expected:
        png = folder / "figures" / f"{name}.png"
        with Image.open(png) as image:
            assert min(image.size) > 300
            pixels = np.asarray(image.convert("RGB")).astype(np.uint32)
        colours = np.unique(pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2])
        assert len(colours) > 20, name  # not blank: text, greys, bands
    animations = sorted(p.name for p in (folder / "animations").iterdir())
    names = ["i.abs", "o.abs", "h.abs", "onehot_vs_h", "i_x_o"]
    assert animations == sorted(f"{a}.{s}" for a in names for s in ("gif", "html"))
    with Image.open(folder / "animations" / "h.abs.gif") as gif:
        assert gif.n_frames == 2  # layers 2 and 3
    assert (analysed / "results" / "benchmarks" / "figures" / "tune.tsv").exists()


def test_the_score_numbers_the_bars_of_the_steps_table(analysed):
    folder = analysed / "results" / "transcriptions" / "tune"
    bars = pd.read_parquet(folder / "steps.parquet")["bar"]
    svg = (folder / "score.svg").read_text()
    if "abcm2ps is not installed" in svg:
        pytest.skip("abcm2ps is not installed")
    assert bar_numbers_in_svg(svg) == sorted(set(bars))
    assert (folder / "score.abc").read_text().startswith("X:1\nT:tune\nM:")


def test_the_report_gathers_each_transcription(analysed):
    run_snakemake(analysed, "--report", "report.html")
    html = (analysed / "report.html").read_text()
    for text in ("3 heatmaps", "4 animations", "1 score", "2 summary", "L3.i_x_o.png", "h.abs.html"):
        assert text in html, text
    assert "unique pairs of different steps" in html  # a caption, rendered
    assert "results/transcriptions/tune/explorer.html" in html  # the explorer, linked


def test_only_layer_three_hidden_state_gives_only_that(tmp_path):
    """Asked for layer 3's h alone, the workflow plans that alone (a dry run's file list)."""
    config = analysis_config(
        {"onehot": False, "softmax": False, "score": {"enabled": False}},
        record={"layers": [3], "quantities": ["h"]},
    )
    workdir = make_workdir(tmp_path / "h3", config)
    listed = run_snakemake(workdir, "--summary").stdout.splitlines()
    files = {line.split("\t")[0] for line in listed[1:] if "/transcriptions/tune/" in line}
    folder = "results/transcriptions/tune"
    expected = {"tokens.txt", "steps.parquet", "features.parquet", "activations.parquet", "matrices.npz"}
    expected |= {"summary.parquet"}
    expected |= {"summary.html", "figures/L3.h.abs.png", "figures/L3.h.signed.png"}
    # resemblance (on by default): h of layer 3 against X^T X; no gate recorded for saturation
    expected |= {"resemblance.parquet", "saturation.parquet"}
    expected |= {"figures/resemblance.png", "figures/saturation.png"}
    expected |= {"explorer.html", "explorer"}
    # interventions (on by default): they re-read the tune, whatever was recorded
    tables = ("influence", "attribution", "attribution_summary", "ablation", "ablation_summary")
    expected |= {f"interventions/{t}.parquet" for t in tables} | {"interventions/influence.npz"}
    expected |= {f"figures/{f}.png" for f in ("influence", "attribution", "ablation")}
    assert files == {f"{folder}/{name}" for name in expected}


def test_an_analysis_of_what_was_not_recorded_fails_before_any_job(tmp_path):
    config = analysis_config({"layers": [2]}, record={"layers": [3], "quantities": ["h"]})
    workdir = make_workdir(tmp_path / "bad", config)
    command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-j", "1"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0
    assert "config error at analysis: analysis.layers asks for layer 2" in result.stdout + result.stderr
    assert not (workdir / "results").exists()
