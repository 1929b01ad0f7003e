"""The explorer stage without a browser: LSTMVis's select and match, the data files
the page reads, their refusals, and the front page."""

import base64
import json
import re
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from folkrnn_lens.activations.tables import Provenance, write_capture
from folkrnn_lens.config import resolve_section
from folkrnn_lens.explorer.build import build_probe_explorer
from folkrnn_lens.explorer.data import ExplorerError, array_script, write_explorer_data
from folkrnn_lens.explorer.index import build_index, corpus_table
from folkrnn_lens.explorer.units import match_ranges, select_units
from folkrnn_lens.figures.style import Style
from folkrnn_lens.matrices.compute import compute_matrices
from folkrnn_lens.matrices.plan import plan_analysis

from .conftest import make_probe, small_model, write_explorer_files

# ---- select and match ------------------------------------------------------------------


def test_select_keeps_units_on_through_the_range_and_off_just_outside():
    values = np.zeros((8, 5))
    values[2:5, 0] = 1  # on exactly through steps 2..4
    values[2:5, 1] = 1
    values[1, 1] = 1  # on before the range too
    values[2:6, 2] = 1  # on after the range too
    values[2:4, 3] = 1  # off at step 4
    values[:, 4] = 1  # on everywhere
    assert select_units(values, 2, 5, 0.5).tolist() == [0]
    assert select_units(values, 0, 8, 0.5).tolist() == [4]  # no step before or after to be off
    assert select_units(values, 2, 5, 1.0).tolist() == []  # above, not at, the threshold


def test_select_refuses_a_range_outside_the_tune():
    with pytest.raises(ValueError, match="not a range of a tune of 4 steps"):
        select_units(np.zeros((4, 2)), 3, 6, 0.0)


def test_match_ranks_runs_by_how_many_selected_units_stay_on():
    values = np.zeros((20, 3))
    values[2:5, :2] = 1  # the selection: units 0 and 1
    values[8:11, :2] = 1  # both again, same length
    values[14:15, 0] = 1  # one of them, shorter
    values[16:19, 1] = 1
    table = match_ranges(values, np.array([0, 1]), 0.5, (2, 5))
    assert table[["start", "stop", "overlap"]].values.tolist() == [[8, 11, 2], [16, 19, 1], [14, 15, 1]]
    assert match_ranges(values, np.array([], int), 0.5, (2, 5)).empty


# ---- the data files ---------------------------------------------------------------------


def read_meta(folder) -> dict:
    text = (folder / "meta.js").read_text()
    return json.loads(text.removeprefix("FOLKRNN_EXPLORER.meta(").removesuffix(");\n"))


def decoded(script: str) -> tuple[str, np.ndarray]:
    name, rows, cols, data = re.fullmatch(
        r'FOLKRNN_EXPLORER.array\("(.*)", (\d+), (\d+), "(.*)"\);\n', script
    ).groups()
    return name, np.frombuffer(base64.b64decode(data), "<f4").reshape(int(rows), int(cols))


def test_an_array_file_holds_the_float32_values_row_by_row():
    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    name, back = decoded(array_script("L2.h", values))
    assert name == "L2.h" and np.array_equal(back, values)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorer")
    model = small_model(n_units=8)
    tokens = ["M:4/4", "K:Cmaj", *"C D | E F :| G A | B c |".split()]
    capture = model.read([tokens])[0]
    provenance = Provenance("tiny", "0" * 64, list(model.vocab), "read", "tiny")
    write_capture(capture, provenance, folder / "steps.parquet", folder / "activations.parquet")
    plan = plan_analysis({"quantities": ["i", "o", "h"], "cross_pairs": [["i", "o"]]})
    paths = [
        folder / name for name in ("steps.parquet", "activations.parquet", "matrices.npz", "summary.parquet")
    ]
    compute_matrices("tiny", *paths, plan)
    return folder, plan, capture


def test_the_meta_and_arrays_are_the_tables_values(analysed, tmp_path):
    folder, plan, capture = analysed
    meta = write_explorer_files(folder, plan, tmp_path / "explorer")
    steps = pd.read_parquet(folder / "steps.parquet")
    assert meta["tokens"] == steps["input_token"].tolist()
    assert meta["bars"] == steps["bar"].tolist()
    bar_lines = [meta["tokens"][k] for k, line in enumerate(meta["bar_lines"]) if line]
    assert bar_lines == ["|", ":|", "|", "|"]
    assert [m["name"] for m in meta["matrices"]] == plan.names
    summary = pd.read_parquet(folder / "summary.parquet").set_index("matrix")
    for matrix in meta["matrices"]:
        assert matrix["counts"]["n_high"] == summary.loc[matrix["name"], "n_high"]
    for step, top in enumerate(meta["top"]):  # the likeliest first, from the softmax
        assert top[0][0] == steps["argmax_token"][step]
    name, h2 = decoded((tmp_path / "explorer" / meta["arrays"]["L2.h"]).read_text())
    np.testing.assert_array_equal(h2, capture.activations[1, 6])  # layer 2, quantity h
    written = (tmp_path / "explorer" / "meta.js").read_text()
    assert json.loads(written.removeprefix("FOLKRNN_EXPLORER.meta(").removesuffix(");\n")) == meta


def test_a_window_keeps_its_steps(analysed, tmp_path):
    folder, _, _ = analysed
    plan = plan_analysis({"quantities": ["h"], "cross_pairs": []})
    paths = [folder / name for name in ("steps.parquet", "activations.parquet")]
    compute_matrices(
        "tiny", *paths, tmp_path / "matrices.npz", tmp_path / "summary.parquet", plan, window=(3, 9)
    )
    meta = write_explorer_data(
        "tiny", *paths, tmp_path / "summary.parquet", tmp_path / "matrices.npz", plan,
        Style.from_config({}), tmp_path / "explorer", window=(3, 9),
    )  # fmt: skip
    assert meta["steps"] == list(range(3, 9)) and meta["n_steps"] == 6 and meta["window"] == [3, 9]


def test_a_matrix_missing_from_the_npz_is_named(analysed, tmp_path):
    folder, _, _ = analysed
    more = plan_analysis({"quantities": ["i", "o", "h", "c"], "cross_pairs": [["i", "o"]]})
    with pytest.raises(ExplorerError, match=r"matrices.npz: no matrix 'L1.c.abs'"):
        write_explorer_files(folder, more, tmp_path / "explorer")


def test_a_tune_of_one_step_is_refused(analysed, tmp_path):
    folder, plan, _ = analysed
    for name in ("activations.parquet", "summary.parquet", "matrices.npz"):
        shutil.copy(folder / name, tmp_path / name)
    pq.write_table(pq.read_table(folder / "steps.parquet").slice(0, 1), tmp_path / "steps.parquet")
    with pytest.raises(ExplorerError, match=r"steps.parquet: tiny has 1 step; the explorer needs two"):
        write_explorer_files(tmp_path, plan, tmp_path / "explorer")


# ---- the front page ---------------------------------------------------------------------


def test_the_corpus_table_has_each_layer_at_both_shifts():
    resemblance = pd.DataFrame(
        [
            {
                "tune_id": t,
                "family": "onehot",
                "a": f"L{layer}.h.abs",
                "shift": shift,
                "pearson": t + layer + shift / 10,
            }
            for t in (0, 1)
            for layer in (1, 2)
            for shift in (0, 1)
        ]
    )
    tunes = pd.DataFrame({"tune_id": [0, 1], "title": ["a", "b"], "origin": "real", "n_steps": 9, "n_bars": 2,
                          "status": "ok"})  # fmt: skip
    table = corpus_table(resemblance, tunes, ["pearson"], "h", "abs")
    assert table.loc[1, "L2 pearson shift 1"] == pytest.approx(3.1)
    assert list(table.columns[-4:]) == [f"L{layer} pearson shift {s}" for layer in (1, 2) for s in (0, 1)]


def test_the_front_page_links_what_exists(tmp_path):
    results = tmp_path / "results"
    folder = results / "transcriptions" / "tune"
    (folder / "figures").mkdir(parents=True)
    (folder / "explorer.html").write_text("<html></html>")
    (folder / "features.parquet").write_bytes(b"")
    (results / "patching" / "ab").mkdir(parents=True)
    (results / "patching" / "ab" / "patching.png").write_bytes(b"")
    pairs = {"ab": {"clean": "a", "corrupted": "b"}}
    page = build_index(results / "index.html", results, ["tune"], [], {}, [], pairs)
    text = page.read_text()
    assert 'href="transcriptions/tune/explorer.html"' in text
    assert 'href="transcriptions/tune/features.parquet"' in text
    assert "ab: b patched from a" in text and 'href="patching/ab/patching.png"' in text
    assert "summary.html" not in text  # not made: not linked
    assert resolve_section("analysis")  # the schema is reachable from the package


# ---- a probe's explorer --------------------------------------------------------------------


def test_a_probe_s_page_holds_both_reads_and_g_prime_minus_g_of_each_layer(tmp_path):
    tokens = ["M:4/4", "K:Cmaj", *"C D E F | G A B c | c B A G |".split()]
    spec = {"of": "tune", "replace": {"step": 6, "token": "A"}, "quantities": ["c", "h"]}
    result = make_probe(tmp_path, small_model(n_units=8), tokens, spec)
    meta = read_meta(tmp_path / "explorer")
    assert meta["reference"] == {
        "of": "tune",
        "description": "tune with step 6 reading 'A'",
        "changed": [6],
        "gramian": "abs",
    }
    differences = [m for m in meta["matrices"] if m["kind"] == "difference"]
    assert [m["name"] for m in differences] == [f"L{n}.{q}.abs.diff" for n in (1, 2, 3) for q in "ch"]
    table = pd.read_parquet(tmp_path / "probe.parquet")
    row = table[(table["layer"] == 2) & (table["quantity"] == "h")].iloc[0]
    shown = next(m for m in differences if m["name"] == "L2.h.abs.diff")
    assert shown["gramian"] == "L2.h.abs" and shown["gramian"] in [m["name"] for m in meta["matrices"]]
    assert shown["comparison"]["max_abs_difference"] == row["max_abs_difference"]
    original, probed = result.reads
    _, h2 = decoded((tmp_path / "explorer" / meta["arrays"]["original:L2.h"]).read_text())
    np.testing.assert_array_equal(h2, original.quantity(2, "h"))
    _, h2 = decoded((tmp_path / "explorer" / meta["arrays"]["L2.h"]).read_text())
    np.testing.assert_array_equal(h2, probed.quantity(2, "h"))
    assert meta["tokens"][6] == "A" and meta["tokens"][:6] == ["<s>", *tokens[:5]]
    assert meta["animations"][0]["frames"] == [[f"L{layer}.c.abs.diff"] for layer in (1, 2, 3)]


def test_a_probe_s_original_of_other_length_is_refused(tmp_path):
    tokens = ["M:4/4", "K:Cmaj", *"C D E F | G A B c |".split()]
    spec = {"of": "tune", "replace": {"step": 4, "token": "E"}}
    make_probe(tmp_path / "a", small_model(n_units=8), tokens, spec)
    make_probe(tmp_path / "b", small_model(n_units=8), [*tokens, "d"], spec)
    a, b = tmp_path / "a", tmp_path / "b"
    with pytest.raises(ExplorerError, match=r"the original 'tune' has 14 steps, the probed tune 13"):
        build_probe_explorer(
            "probe", "tune", a / "probed" / "steps.parquet", a / "probed" / "activations.parquet",
            b / "original" / "activations.parquet", a / "probe.parquet", "abs", Style.from_config({}),
            tmp_path / "x.html", tmp_path / "x",
        )  # fmt: skip
