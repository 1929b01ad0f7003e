"""The rules resemblance and probe run by Snakemake as a user runs them."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from folkrnn_lens.activations.tables import load_activation
from folkrnn_lens.resemblance.probes import READS
from folkrnn_lens.tokens.format import read_token_file

from .conftest import EXCERPT
from .test_workflow import failure_before_any_job, make_workdir, run_snakemake

pytestmark = pytest.mark.slow  # runs Snakemake: seconds to minutes a test


def resemblance_config(**changes) -> dict:
    config = {
        "model": {
            "file": "untrained",
            "untrained": {"n_layers": 2, "n_units": 16, "seed": 5, "vocabulary_files": [str(EXCERPT)]},
        },
        "transcriptions": {"tune": {"tokens": str(EXCERPT), "index": 2}},  # 105 tokens, K:Cmin
        "record": {"layers": [1, 2], "quantities": ["i", "f", "o", "h"]},
        "analysis": {  # the part-9 analysis kept small: one matrix, no animation, no score
            "layers": [2],
            "quantities": ["h"],
            "onehot": False,
            "softmax": False,
            "gramians": ["abs"],
            "figures": {"dpi": 50},
            "animation": {"enabled": False},
            "score": {"enabled": False},
        },
        "resemblance": {"quantities": ["f", "h"], "bar_permutations": 19},
        "probes": {
            "in_major": {"of": "tune", "mode": "maj"},
            "one_note": {"of": "tune", "replace": {"step": 5, "token": "A"}, "quantities": ["h", "c"]},
        },
        "torch_threads": 1,
    }
    config.update(changes)
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("resemblance"), resemblance_config())
    run_snakemake(workdir, "-j", "2")
    return workdir


def test_resemblance_and_saturation_of_each_transcription(workdir):
    folder = workdir / "results" / "transcriptions" / "tune"
    n_steps = len(pd.read_parquet(folder / "steps.parquet"))
    table = pd.read_parquet(folder / "resemblance.parquet")
    # I against X^T X at 2 shifts and against 4 Gramians
    families = {"onehot": 8, "layers": 2, "quantities": 2, "influence": 6}
    assert table["family"].value_counts().to_dict() == families
    assert (table["transcription"] == "tune").all()
    assert str(table["a_layer"].dtype) == "Int8"  # null where a is I
    assert set(table["a_quantity"].dropna()) == {"f", "h"}
    gramians, influence = table[table["family"] != "influence"], table[table["family"] == "influence"]
    assert gramians["cka"].between(-1, 1).all() and gramians["cka_p_circular"].between(0, 1).all()
    assert (gramians.loc[gramians["shift"] == 0, "cka_n_circular"] == n_steps - 1).all()  # every shift
    assert influence["cka"].isna().all() and influence["pearson_p_circular"].between(0, 1).all()  # no kernel
    saturation = pd.read_parquet(folder / "saturation.parquet")
    assert len(saturation) == 2 * 3 * 16  # layers x gates i, f, o x units
    for figure in ("resemblance", "saturation"):
        with Image.open(folder / "figures" / f"{figure}.png") as image:
            assert min(image.size) > 200, figure
    for kind in ("logs", "benchmarks"):
        assert list((workdir / "results" / kind / "resemblance").iterdir()), kind


def test_probes_change_what_they_say(workdir):
    folder = workdir / "results" / "probes"
    [original] = read_token_file(workdir / "results" / "transcriptions" / "tune" / "tokens.txt")
    [major] = read_token_file(folder / "in_major" / "tokens.txt")
    assert (original.mode, major.mode) == ("K:Cmin", "K:Cmaj") and major.body == original.body
    [one_note] = read_token_file(folder / "one_note" / "tokens.txt")
    assert one_note.tokens[4] == "A" and one_note.tokens[:4] == original.tokens[:4]
    table = pd.read_parquet(folder / "one_note" / "probe.parquet")
    assert sorted(zip(table["layer"], table["quantity"])) == [(1, "c"), (1, "h"), (2, "c"), (2, "h")]
    assert (table["first_changed_step"] == 5).all() and (table["relative_frobenius"] > 0).all()
    steps = pd.read_parquet(folder / "one_note" / "steps.parquet")
    assert (steps.loc[steps["step"] < 5, "distance"] == 0).all()
    assert (steps.loc[steps["step"] == 5, "distance"] > 0).all()
    assert (pd.read_parquet(folder / "in_major" / "probe.parquet")["first_changed_step"] == 2).all()
    for probe in ("in_major", "one_note"):
        with Image.open(folder / probe / "difference.png") as image:
            assert min(image.size) > 300
    # both reads, for the probe's explorer: the same bit for bit before the change
    h = {read: load_activation(folder / "one_note" / read / "activations.parquet", 2, "h") for read in READS}
    np.testing.assert_array_equal(h["original"][:5], h["probed"][:5])
    assert np.abs(h["original"][5:] - h["probed"][5:]).max() > 0
    meta = (folder / "one_note" / "explorer" / "meta.js").read_text()
    assert '"name": "L2.h.abs.diff"' in meta and '"changed": [5]' in meta
    index = (workdir / "results" / "index.html").read_text()
    assert 'href="probes/one_note/explorer.html"' in index
    summary = pd.read_parquet(folder / "one_note" / "patching_summary.parquet")
    every = summary[(summary["layer"] == 0) & (summary["s"] >= 5)]
    np.testing.assert_allclose(every["restored"].dropna(), 1.0, atol=1e-4)  # the whole state after the change
    assert set(summary["layer"]) == {0, 1, 2} and (folder / "one_note" / "patching.png").stat().st_size > 5000


def test_the_report_shows_resemblance_saturation_and_probes(workdir):
    run_snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text()
    for text in ("5 resemblance and saturation", "resemblance.png", "saturation.png", "difference.png"):
        assert text in html, text
    assert "Karpathy, Johnson" in html and "Invariance probe" in html  # captions, rendered


def test_a_probe_of_an_unknown_transcription_fails_before_any_job(tmp_path):
    config = resemblance_config(probes={"lost": {"of": "nowhere", "mode": "dor"}})
    output = failure_before_any_job(make_workdir(tmp_path / "bad", config))
    assert "config error at probes -> lost -> of: 'nowhere' is not one of" in output


def test_resemblance_can_be_switched_off(tmp_path):
    config = resemblance_config(resemblance={"enabled": False}, probes={})
    workdir = make_workdir(tmp_path / "off", config)
    listed = run_snakemake(workdir, "--summary").stdout
    assert "results/transcriptions/tune/steps.parquet" in listed
    assert "resemblance" not in listed and "saturation" not in listed and "probes" not in listed
