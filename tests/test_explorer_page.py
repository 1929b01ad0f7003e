"""The explorer page in a real browser (Playwright with Debian's chromium): it opens
offline from file://, computes the matrices as matrices.npz holds them, colours them as
the figures do, runs LSTMVis's select and match as units.py does, and links its views."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from folkrnn_lens.activations.record import read_activations
from folkrnn_lens.activations.tables import Provenance, load_activations, write_capture
from folkrnn_lens.explorer.index import build_index
from folkrnn_lens.explorer.page import explorer_html, write_explorer_page
from folkrnn_lens.explorer.units import match_ranges, select_units
from folkrnn_lens.figures.score import render_score
from folkrnn_lens.figures.style import Style, band_colours
from folkrnn_lens.matrices.compute import compute_matrices
from folkrnn_lens.matrices.plan import plan_analysis
from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig
from folkrnn_lens.tokens.corpus import load_transcription
from folkrnn_lens.tokens.format import write_token_file

from .conftest import ROOT, excerpt_vocab, make_probe, write_explorer_files

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"no browser at {CHROMIUM} (Debian: apt-get install chromium)", allow_module_level=True)

TOKENS = ["M:4/4", "K:Cmaj", *"|: C D E F | G A B c :: c B A G | F E D C :| C 2 E 2 | G 4 |".split()]
N_UNITS = 8
SHIPPED_MODEL = ROOT / "resources" / "models" / "folkrnn_v2_music21.safetensors"


def tiny_model() -> FolkRNN:
    """conftest's small model, over a vocabulary with the double repeat ``::``."""
    vocab = [*excerpt_vocab(), "::"]
    model = FolkRNN(FolkRNNConfig(vocab_size=len(vocab), n_layers=3, n_units=N_UNITS), vocab)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3 / N_UNITS**0.5 * 4)
    return model.eval()


def write_data(folder: Path, plan, out: Path, score: Path | None) -> dict:
    return write_explorer_files(folder, plan, out, score_path=score)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A transcription's explorer.html and explorer/ folder, and what they were made from."""
    folder = tmp_path_factory.mktemp("explorer_page")
    model = tiny_model()
    capture = model.read([TOKENS])[0]
    provenance = Provenance("tiny", "0" * 64, list(model.vocab), "read", "tiny")
    write_capture(capture, provenance, folder / "steps.parquet", folder / "activations.parquet")
    plan = plan_analysis({"quantities": ["i", "o", "h"], "cross_pairs": [["i", "o"]]})
    paths = [folder / f for f in ("steps.parquet", "activations.parquet", "matrices.npz", "summary.parquet")]
    compute_matrices("tiny", *paths, plan)
    bars = render_score("tiny", folder / "steps.parquet", folder / "score.abc", folder / "score.svg")
    meta = write_data(folder, plan, folder / "explorer", folder / "score.svg")
    write_explorer_page(folder / "explorer.html", title="tiny: folkrnn-lens explorer")
    return {"folder": folder, "plan": plan, "meta": meta, "score_bars": bars}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, html: Path):
    """The page, loaded; with the console's errors and every request it made."""
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.errors, page.requests = [], []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(html.as_uri())
    page.evaluate("FOLKRNN_EXPLORER.ready")
    return page


@pytest.fixture
def page(browser, site):
    page = open_page(browser, site["folder"] / "explorer.html")
    yield page
    page.close()


def test_the_page_loads_offline_without_errors(page, site):
    assert page.errors == []
    assert page.requests and all(url.startswith("file://") for url in page.requests), page.requests
    assert page.inner_text("#messages") == ""
    assert f"{site['meta']['n_steps']} steps" in page.inner_text("#subtitle")
    assert "{{DATA_FOLDER}}" not in explorer_html() and 'data-folder="explorer"' in explorer_html()


ALL_VALUES = """async ([name, n]) => {
  const out = [];
  for (let s = 0; s < n; s++)
    for (let t = 0; t < n; t++) out.push(await FOLKRNN_EXPLORER.matrixValue(name, s, t));
  return out;
}"""


def test_the_page_computes_every_matrix_as_matrices_npz_holds_it(page, site):
    with np.load(site["folder"] / "matrices.npz") as npz:
        for name in site["plan"].names:
            values = page.evaluate(ALL_VALUES, [name, npz[name].shape[0]])
            np.testing.assert_allclose(
                np.reshape(values, npz[name].shape), npz[name], atol=1e-5, err_msg=name
            )


def test_hovering_a_cell_reads_out_both_steps_the_value_and_the_band_counts(page, site):
    steps = pd.read_parquet(site["folder"] / "steps.parquet")
    summary = pd.read_parquet(site["folder"] / "summary.parquet").set_index("matrix")
    page.evaluate("FOLKRNN_EXPLORER.selectMatrix('L2.h.abs')")
    with np.load(site["folder"] / "matrices.npz") as npz:
        matrix = npz["L2.h.abs"]
    for s, t in [(3, 10), (12, 5), (0, len(steps) - 1)]:
        at = page.evaluate(f"FOLKRNN_EXPLORER.locate.cell('a', {s}, {t})")
        page.mouse.move(at["x"], at["y"])
        page.wait_for_function(f"document.querySelector('#readout-left').dataset.s === '{s}'")
        read = page.evaluate("({...document.querySelector('#readout-left').dataset})")
        assert (int(read["s"]), int(read["t"])) == (s, t)
        assert read["columnToken"] == steps["input_token"][s] and read["rowToken"] == steps["input_token"][t]
        assert int(read["columnBar"]) == steps["bar"][s] and int(read["rowBar"]) == steps["bar"][t]
        assert float(read["value"]) == pytest.approx(float(matrix[s, t]), abs=1e-5)
        assert f"“{steps['input_token'][t]}” bar {steps['bar'][t]}" in page.inner_text("#readout")
    counts = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#counts [data-key]')]"
        ".map((td) => [td.dataset.key, td.textContent]))"
    )
    for key in ("n_pairs", "n_low", "n_high"):
        assert int(counts[key]) == summary.loc["L2.h.abs", key]
    assert float(counts["high_threshold"]) == summary.loc["L2.h.abs", "high_threshold"]


CELL_COLOURS = """(cells) => {
  const canvas = document.querySelector('#panel-a canvas'), box = canvas.getBoundingClientRect();
  const ctx = canvas.getContext('2d'), scale = canvas.width / box.width;
  return cells.map(([s, t]) => {
    const at = FOLKRNN_EXPLORER.locate.cell('a', s, t);
    const x = Math.floor((at.x - box.left) * scale), y = Math.floor((at.y - box.top) * scale);
    return Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
  });
}"""


def test_every_matrix_of_the_menu_is_drawn_in_the_figures_colours(page, site):
    style, meta = Style.from_config({}), site["meta"]
    n = meta["n_steps"]
    bar_steps = {k for k, line in enumerate(meta["bar_lines"]) if line}
    cells = [(s, t) for s in range(n) for t in range(n) if s not in bar_steps and t not in bar_steps]
    with np.load(site["folder"] / "matrices.npz") as npz:
        items = page.locator("#matrix-menu .item")
        assert items.count() == len(site["plan"].names)
        for i in range(items.count()):
            items.nth(i).click()
            name = items.nth(i).get_attribute("data-name")
            page.wait_for_function(f"document.querySelector('#caption-a').textContent.startsWith('{name} ')")
            kind = next(m["kind"] for m in meta["matrices"] if m["name"] == name)
            expected = band_colours(npz[name], kind, style)
            drawn = page.evaluate(CELL_COLOURS, cells)
            assert drawn == [expected[s, t].tolist() for s, t in cells], name
            assert len({tuple(c) for c in drawn}) > 1 or kind == "onehot", f"{name}: one colour only"


def unit_cases(site):
    """(layer, quantity, start, stop, threshold, values): a range where unit 0 is on
    exactly (so the selection holds it), and steps 2..4 (where perhaps none is)."""
    folder = site["folder"]
    cases = []
    for layer, quantity, threshold in [(2, "h", 0.0), (1, "i", 0.5), (3, "o", 0.5)]:
        values = load_activations(folder / "activations.parquet", {(layer, quantity)})[(layer, quantity)]
        on = values[:, 0] > threshold
        runs = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(int), [0]])))
        cases.append((layer, quantity, int(runs[0]), int(runs[1]), threshold, values) if len(runs) else None)
        cases.append((layer, quantity, 2, 5, threshold, values))
    return [case for case in cases if case]


def test_select_and_match_agree_with_units_py(page, site):
    for layer, quantity, start, stop, threshold, values in unit_cases(site):
        args = [layer, quantity, start, stop, threshold]
        units = page.evaluate("(a) => FOLKRNN_EXPLORER.selectUnits(...a)", args)
        expected = select_units(values, start, stop, threshold)
        assert units == expected.tolist(), args
        matches = page.evaluate("(a) => FOLKRNN_EXPLORER.matchRanges(...a)", args)
        table = match_ranges(values, expected, threshold, (start, stop))
        columns = ("start", "stop", "overlap", "length")
        assert [[m[k] for k in columns] for m in matches] == table.values.tolist()


def test_dragging_a_range_on_the_unit_trace_selects_and_matches(page, site):
    layer, quantity, start, stop, threshold, values = unit_cases(site)[0]
    page.select_option("#unit-layer", str(layer))
    page.select_option("#unit-quantity", quantity)
    page.locator("#unit-trace-stack").scroll_into_view_if_needed()
    a = page.evaluate(f"FOLKRNN_EXPLORER.locate.unitTraceStep({start})")
    b = page.evaluate(f"FOLKRNN_EXPLORER.locate.unitTraceStep({stop - 1})")
    page.mouse.move(a["x"], a["y"])
    page.mouse.down()
    page.mouse.move(b["x"] + (6 if stop - 1 == start else 0), b["y"], steps=4)
    page.mouse.up()
    page.wait_for_function(f"JSON.stringify(FOLKRNN_EXPLORER.state.range) === '[{start},{stop}]'")
    expected = select_units(values, start, stop, threshold).tolist()
    assert page.evaluate("FOLKRNN_EXPLORER.state.units") == expected
    assert page.inner_text("#unit-indices") == (" ".join(map(str, expected)) or "(none)")
    table = match_ranges(values, np.array(expected), threshold, (start, stop))
    if len(table):
        page.locator("#match-list button").first.click()
        first = table.iloc[0]
        page.wait_for_function(f"FOLKRNN_EXPLORER.state.range[0] === {first['start']}")
        assert page.evaluate("FOLKRNN_EXPLORER.state.range") == [first["start"], first["stop"]]


def test_clicking_a_step_highlights_its_bar_on_the_score(page, site):
    meta = site["meta"]
    if not meta["score_bars"]:
        pytest.skip("abcm2ps drew no score here")
    positions = meta["score_bars"]
    page.locator("#trace-stack").scroll_into_view_if_needed()
    for step in (5, len(meta["tokens"]) - 3):
        at = page.evaluate(f"FOLKRNN_EXPLORER.locate.traceStep({step})")
        page.mouse.click(at["x"], at["y"])
        assert page.evaluate("FOLKRNN_EXPLORER.state.step") == step
        bar = meta["bars"][step]
        rect = page.locator("#score svg rect.bar-highlight")
        assert rect.count() == 1 and int(rect.get_attribute("data-bar")) == bar
        x0 = float(rect.get_attribute("x"))
        x1 = x0 + float(rect.get_attribute("width"))
        i = next(k for k, p in enumerate(positions) if p[0] == bar)
        _, x, y = positions[i]
        following = [p[1] for p in positions[i + 1 :] if abs(p[2] - y) <= 20 and p[1] > x]
        width = float(page.locator("#score svg").get_attribute("width").rstrip("px"))
        right = following[0] if following else width
        assert x - 3 <= x0 < x1 <= right
    page.locator("#panel-a").scroll_into_view_if_needed()
    cell = page.evaluate("FOLKRNN_EXPLORER.locate.cell('a', 2, 7)")  # a cell selects its row's step
    page.mouse.click(cell["x"], cell["y"])
    assert page.evaluate("FOLKRNN_EXPLORER.state.step") == 7
    assert page.inner_text("#predictions").startswith(f"step {meta['steps'][7]}")


def test_a_missing_array_or_score_is_named_on_the_page(browser, site, tmp_path):
    folder = site["folder"]
    shutil.copytree(folder / "explorer", tmp_path / "explorer")
    (tmp_path / "explorer" / "data" / "L2.h.js").unlink()
    write_explorer_page(tmp_path / "explorer.html")
    page = open_page(browser, tmp_path / "explorer.html")
    assert "data/L2.h.js" in page.inner_text("#messages")
    page.close()
    write_data(folder, site["plan"], tmp_path / "bare", None)  # no score
    write_explorer_page(tmp_path / "bare.html", data_folder="bare")
    page = open_page(browser, tmp_path / "bare.html")
    assert "no score" in page.inner_text("#score").lower() and page.inner_text("#messages") == ""
    page.close()
    meta = dict(site["meta"], matrices=[], animations=[])
    (tmp_path / "bare" / "meta.js").write_text(f"FOLKRNN_EXPLORER.meta({json.dumps(meta)});\n")
    page = open_page(browser, tmp_path / "bare.html")
    assert "lists no matrices" in page.inner_text("#messages")
    page.close()
    write_explorer_page(tmp_path / "lost.html", data_folder="nowhere")
    page = open_page(browser, tmp_path / "lost.html")
    assert "nowhere/meta.js" in page.inner_text("#messages")
    page.close()


def test_a_screenshot_of_each_view(page, tmp_path):
    page.evaluate("FOLKRNN_EXPLORER.selectStep(6)")
    page.evaluate("FOLKRNN_EXPLORER.selectRange(3, 6)")
    at = page.evaluate("FOLKRNN_EXPLORER.locate.cell('a', 4, 9)")
    page.mouse.move(at["x"], at["y"])
    for view in ("matrix", "motion", "step", "unit"):
        path = tmp_path / f"{view}.png"
        page.locator(f"#{view}-view").screenshot(path=str(path))
        assert path.stat().st_size > 5000


# ---- a probe's page ----------------------------------------------------------------------

PROBED_STEP = 7  # reads TOKENS[6], "F"; the probe reads "G" there


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe_page")
    spec = {"of": "tiny", "replace": {"step": PROBED_STEP, "token": "G"}}
    return {"folder": folder, "result": make_probe(folder, tiny_model(), TOKENS, spec)}


def test_a_probe_s_page_computes_g_prime_minus_g_as_the_probe_does(browser, probe_site, tmp_path):
    page = open_page(browser, probe_site["folder"] / "explorer.html")
    assert page.errors == [] and page.inner_text("#messages") == ""
    assert page.evaluate("[FOLKRNN_EXPLORER.state.matrix, FOLKRNN_EXPLORER.state.second]") == [
        "L2.h.abs.diff",
        "L2.h.abs",
    ]
    assert f"input changed at step {PROBED_STEP}" in page.inner_text("#subtitle")
    result = probe_site["result"]
    n = len(TOKENS) + 1
    for layer in (1, 2, 3):
        values = np.reshape(page.evaluate(ALL_VALUES, [f"L{layer}.h.abs.diff", n]), (n, n))
        np.testing.assert_allclose(values, result.differences[layer, "h"], atol=2e-6, err_msg=str(layer))
        assert not values[:PROBED_STEP, :PROBED_STEP].any()  # both reads of one batch: exactly 0
        assert np.abs(values[PROBED_STEP:, PROBED_STEP:]).max() > 0
    scale = result.table.set_index("layer").loc[2, "max_abs_difference"]
    assert f"+{scale:.3g}" in page.inner_text("#legend")
    assert page.inner_text("#counts").count("\n") >= 3  # probe.parquet's numbers
    page.locator("#matrix-view").screenshot(path=str(tmp_path / "probe.png"))
    page.close()


# ---- pacing of the layers in motion, and the front page -----------------------------------

DWELLS = """async (count) => {
  // how long each frame of the playing animation stays, in order, over `count` changes
  const api = FOLKRNN_EXPLORER, seen = [];
  let frame = api.state.frame, since = performance.now();
  document.getElementById("motion-play").click();
  while (seen.length < count) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (api.state.frame !== frame) {
      seen.push([frame, performance.now() - since]);
      frame = api.state.frame;
      since = performance.now();
    }
  }
  document.getElementById("motion-play").click();
  return seen;
}"""


def test_play_paces_frames_as_the_animations_config_says(browser, site, tmp_path):
    shutil.copytree(site["folder"] / "explorer", tmp_path / "explorer")
    meta = dict(site["meta"], frame_seconds=0.1, pause_seconds=0.5)
    (tmp_path / "explorer" / "meta.js").write_text(f"FOLKRNN_EXPLORER.meta({json.dumps(meta)});\n")
    write_explorer_page(tmp_path / "explorer.html")
    page = open_page(browser, tmp_path / "explorer.html")
    shown = page.evaluate("FOLKRNN_EXPLORER.state.animation")
    compute = "(names) => Promise.all(names.map((n) => FOLKRNN_EXPLORER.matrixValue(n, 0, 1)))"
    for frame in next(a for a in meta["animations"] if a["name"] == shown)["frames"]:  # computed first
        page.evaluate(compute, frame)
    dwells = page.evaluate(DWELLS, 4)
    page.close()
    assert [frame for frame, _ in dwells] == [0, 1, 2, 0]  # layers 1 -> 2 -> 3, and round again
    first, second, last, _ = (ms for _, ms in dwells)
    # frame changes are seen by polling every 5 ms: a dwell reads up to a poll short
    assert 80 <= first < 800 and 80 <= second < 800  # frame_seconds, not the GIFs' default 1 s
    assert last >= 580  # frame_seconds + pause_seconds on the last layer


def test_the_front_page_sorts_and_filters_a_corpus_s_tunes(browser, tmp_path):
    results = tmp_path / "results"
    folder = results / "corpus_analysis" / "few"
    folder.mkdir(parents=True)
    titles, steps = ["The Reel", "A Jig", "Hornpipe"], [120, 80, 200]
    pd.DataFrame({"tune_id": [0, 1, 2], "title": titles, "origin": "real", "n_steps": steps, "n_bars": 8,
                  "status": "ok"}).to_parquet(folder / "tunes.parquet")  # fmt: skip
    rows = [{"tune_id": t, "family": "onehot", "a": "L1.h.abs", "shift": shift, "pearson": 0.1 * t + shift}
            for t in range(3) for shift in (0, 1)]  # fmt: skip
    pd.DataFrame(rows).to_parquet(folder / "resemblance.parquet")
    shown = {"statistics": ["pearson"], "quantity": "h", "gramian": "abs"}
    index = build_index(results / "index.html", results, [], [], {"few": shown}, [])
    page = browser.new_page()
    page.goto(index.as_uri())
    visible_titles = (
        "[...document.querySelectorAll('table.tunes tbody tr')]"
        ".filter((r) => !r.hidden).map((r) => r.cells[1].textContent)"
    )
    assert page.evaluate(visible_titles) == titles
    page.click("th:text('n_steps')")
    assert page.evaluate(visible_titles) == ["A Jig", "The Reel", "Hornpipe"]
    page.click("th:text('n_steps')")
    assert page.evaluate(visible_titles) == ["Hornpipe", "The Reel", "A Jig"]
    page.fill("input.filter", "jig")
    assert page.evaluate(visible_titles) == ["A Jig"]
    page.screenshot(path=str(tmp_path / "index.png"))
    page.close()


# ---- the default real tune ----------------------------------------------------------------

DEFAULT_TUNE = {"abc": "music21:oneills1850/0001-0050.abc", "x": 3}  # config.yaml's first


@pytest.fixture(scope="module")
def default_site(tmp_path_factory):
    """The explorer of the default config's real tune, read by the shipped model, with
    every layer, quantity and matrix of the default analysis."""
    folder = tmp_path_factory.mktemp("default_tune")
    write_token_file(folder / "tokens.txt", [load_transcription(DEFAULT_TUNE, "tune")])
    paths = [folder / f for f in ("steps.parquet", "activations.parquet", "matrices.npz", "summary.parquet")]
    read_activations(SHIPPED_MODEL, folder / "tokens.txt", *paths[:2], name="tune")
    plan = plan_analysis()
    compute_matrices("tune", *paths, plan)
    render_score("tune", folder / "steps.parquet", folder / "score.abc", folder / "score.svg")
    meta = write_data(folder, plan, folder / "explorer", folder / "score.svg")
    write_explorer_page(folder / "explorer.html")
    return {"folder": folder, "plan": plan, "meta": meta}


def test_the_default_real_tune_reads_out_and_draws_as_its_tables(browser, default_site):
    folder, meta = default_site["folder"], default_site["meta"]
    page = open_page(browser, folder / "explorer.html")
    assert page.errors == [] and page.inner_text("#messages") == ""
    assert meta["n_steps"] == 165 and len(meta["matrices"]) == len(default_site["plan"].names)
    steps = pd.read_parquet(folder / "steps.parquet")
    summary = pd.read_parquet(folder / "summary.parquet").set_index("matrix")
    style, n = Style.from_config({}), meta["n_steps"]
    bar_steps = {k for k, line in enumerate(meta["bar_lines"]) if line}
    cells = [(s, t) for s in range(1, n, 9) for t in range(2, n, 11) if not {s, t} & bar_steps]
    with np.load(folder / "matrices.npz") as npz:
        for name in default_site["plan"].names:  # every matrix of the menu, drawn as the figures
            page.evaluate("(name) => FOLKRNN_EXPLORER.selectMatrix(name)", name)
            expected = band_colours(
                npz[name], next(m["kind"] for m in meta["matrices"] if m["name"] == name), style
            )
            assert page.evaluate(CELL_COLOURS, cells) == [expected[s, t].tolist() for s, t in cells], name
        page.evaluate("FOLKRNN_EXPLORER.selectMatrix('L2.h.abs')")
        for s, t in [(40, 100), (150, 7)]:
            at = page.evaluate(f"FOLKRNN_EXPLORER.locate.cell('a', {s}, {t})")
            page.mouse.move(at["x"], at["y"])
            page.wait_for_function(f"document.querySelector('#readout-left').dataset.s === '{s}'")
            read = page.evaluate("({...document.querySelector('#readout-left').dataset})")
            assert (read["columnToken"], int(read["rowBar"])) == (steps["input_token"][s], steps["bar"][t])
            assert float(read["value"]) == pytest.approx(float(npz["L2.h.abs"][s, t]), abs=2e-6)
    counts = page.evaluate("[...document.querySelectorAll('#counts [data-key]')].map((td) => td.textContent)")
    assert int(counts[1]) == summary.loc["L2.h.abs", "n_pairs"] == n * (n - 1) // 2
    h2 = load_activations(folder / "activations.parquet", {(2, "h")})[2, "h"]
    units = page.evaluate("FOLKRNN_EXPLORER.selectUnits(2, 'h', 40, 48, 0.3)")
    assert units == select_units(h2, 40, 48, 0.3).tolist()
    page.close()
