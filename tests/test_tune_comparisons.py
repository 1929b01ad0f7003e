"""Per transcription beyond part 9: the resemblance and saturation tables with their
figures (tune_resemblance, comparison_figures), and invariance probes (probes)."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from folkrnn_lens.activations.tables import Provenance, read_provenance, write_capture
from folkrnn_lens.config import resolve_section
from folkrnn_lens.model.checkpoint import save_checkpoint
from folkrnn_lens.names import gramian_layer_quantity
from folkrnn_lens.palette import GATE_COLOURS
from folkrnn_lens.resemblance.figures import attainability_note
from folkrnn_lens.resemblance.probes import (
    Probe,
    ProbeError,
    changed_steps,
    probe_tune,
    probed_tokens,
    read_probe_metadata,
    run_probe,
)
from folkrnn_lens.resemblance.settings import Settings, gramians_of
from folkrnn_lens.resemblance.transcription import measure_resemblance, read_settings
from folkrnn_lens.tokens.format import read_token_file

from .conftest import small_model

RECORDED = ["i", "f", "o", "h"]


@pytest.fixture(scope="module")
def tune(excerpt):
    return excerpt[1].tokens[:48]  # M:4/4 K:Cmin and 46 body tokens


@pytest.fixture(scope="module")
def capture_files(tmp_path_factory, tune):
    """steps.parquet and activations.parquet of a tiny model reading the tune."""
    folder = tmp_path_factory.mktemp("capture")
    model = small_model(n_units=16)
    capture = model.read([tune])[0]
    provenance = Provenance("tiny.safetensors", "0" * 64, model.vocab, "read", "tune")
    steps, activations = folder / "steps.parquet", folder / "activations.parquet"
    write_capture(capture, provenance, steps, activations, [1, 2, 3], RECORDED)
    return steps, activations


@pytest.fixture(scope="module")
def analysed(capture_files, tmp_path_factory):
    folder = tmp_path_factory.mktemp("resemblance")
    section = {"layers": [1, 2], "quantities": ["f", "h"], "bar_permutations": 19, "saturation": {"low": 0.2}}
    paths = {
        key: folder / name
        for key, name in [
            ("table", "resemblance.parquet"),
            ("saturation", "saturation.parquet"),
            ("figure", "resemblance.png"),
            ("saturation_figure", "saturation.png"),
        ]
    }
    measure_resemblance(
        "tune",
        *capture_files,
        paths["table"],
        paths["saturation"],
        paths["figure"],
        paths["saturation_figure"],
        Settings.from_config(section, [1, 2, 3], RECORDED),
        RECORDED,
        dpi=60,
    )
    return paths, section


def test_gramian_names_parse_into_layer_and_quantity():
    assert gramian_layer_quantity("L2.h.abs") == (2, "h")
    assert gramian_layer_quantity("L3.g_pre.signed") == (3, "g_pre")
    assert gramian_layer_quantity("onehot") == (None, None)
    with pytest.raises(ValueError, match="not a Gramian"):
        gramian_layer_quantity("softmax_l1")


def test_resemblance_table_has_the_parts_types_and_settings(analysed, capture_files, tune):
    paths, section = analysed
    table = pd.read_parquet(paths["table"])
    assert list(table.columns[:10]) == [
        "transcription", "family", "a", "b", "a_layer", "a_quantity", "b_layer", "b_quantity",
        "shift", "n_steps",
    ]  # fmt: skip
    for statistic in ("pearson", "spearman", "cka"):
        assert {
            statistic,
            f"{statistic}_p_circular_holm",
            f"{statistic}_p_bars",
            f"{statistic}_n_bars",
        } <= set(table.columns)
    # onehot: 2 layers x 2 quantities x 2 shifts; layers: 2 quantities x 1 pair; quantities: 2 layers x 1 pair
    assert table["family"].value_counts().to_dict() == {"onehot": 8, "layers": 2, "quantities": 2}
    assert (table["transcription"] == "tune").all()
    assert str(table["a_layer"].dtype) == str(table["b_layer"].dtype) == "Int8"
    onehot = table["family"] == "onehot"
    assert table.loc[onehot, "b_layer"].isna().all() and table.loc[onehot, "b_quantity"].isna().all()
    assert table.loc[~onehot, "b_layer"].notna().all()
    for row in table.itertuples():
        assert row.a == f"L{row.a_layer}.{row.a_quantity}.abs"
        if row.b != "onehot":
            assert row.b == f"L{row.b_layer}.{row.b_quantity}.abs"
    assert (table["n_steps"] == len(tune) + 1 - table["shift"]).all()
    assert (table["pearson_n_bars"] == 19).all()

    # the same numbers as the library's table, from the same activations
    settings = Settings.from_config(section, [1, 2, 3], RECORDED)
    steps = pd.read_parquet(capture_files[0])
    from folkrnn_lens.activations.tables import load_activation

    matrices = gramians_of(
        lambda layer, q: load_activation(capture_files[1], layer, q), steps["input_token"].tolist(), settings
    )
    direct = settings.table(matrices, steps["bar"].to_numpy())
    np.testing.assert_allclose(table["cka"], direct["cka"])
    np.testing.assert_allclose(table["spearman_p_bars"], direct["spearman_p_bars"])

    recorded = read_settings(paths["table"])
    assert recorded["bar_permutations"] == 19 and recorded["layers"] == [1, 2]
    assert recorded["saturation"] == {"low": 0.2, "high": 0.9}
    assert read_provenance(paths["table"])["transcription"] == "tune"


def test_saturation_table_covers_each_gate_of_the_compared_layers(analysed, tune):
    paths, _ = analysed
    table = pd.read_parquet(paths["saturation"])
    assert list(table.columns) == [
        "transcription", "layer", "gate", "unit", "n_steps", "frac_below", "frac_above",
    ]  # fmt: skip
    assert sorted(set(zip(table["layer"], table["gate"]))) == [(1, g) for g in "fio"] + [
        (2, g) for g in "fio"
    ]
    assert len(table) == 2 * 3 * 16
    assert (table["n_steps"] == len(tune) + 1).all()
    total = table["frac_below"] + table["frac_above"]
    assert ((table["frac_below"] >= 0) & (total <= 1 + 1e-6)).all()
    assert read_settings(paths["saturation"])["saturation"]["low"] == 0.2


def _colours(path):
    with Image.open(path) as image:
        size = image.size
        pixels = np.asarray(image.convert("RGB")).astype(np.int32)
    return size, pixels


def test_the_figures_are_drawn(analysed):
    paths, _ = analysed
    size, pixels = _colours(paths["figure"])
    assert size[0] == round((3 * 2.4 + 1.6) * 60)  # 3 statistics, each at least 2.4 inches
    assert 300 < size[1] < 450  # 3 sections of 2, 2 and 1 rows, under the titles
    flat = pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2]
    assert len(np.unique(flat)) > 50  # text, a colour scale, cells: not blank
    assert (pixels.sum(axis=2) < 600).mean() > 0.05  # the cells are coloured, not white

    size, pixels = _colours(paths["saturation_figure"])
    assert size[0] == round(9.2 * 60) and 300 < size[1] < 400  # two square panels: two layers
    for gate, colour in GATE_COLOURS.items():  # every gate has its colour (blended by alpha)
        rgb = np.array([int(colour[k : k + 2], 16) for k in (1, 3, 5)])
        blended = 0.55 * rgb + 0.45 * 255
        assert (np.abs(pixels - blended).max(axis=2) < 12).any(), gate


def test_a_note_says_when_holm_cannot_reach_alpha():
    settings = Settings.from_config({"statistics": ["cka"], "bar_permutations": 0}, [1], ["h"])
    table = pd.DataFrame({"cka_p_circular": [0.01] * 10, "cka_n_circular": [99] * 10})
    assert "no cell can be starred" in attainability_note(table, settings)  # 10 / 100 >= 0.05
    assert attainability_note(table.iloc[:4], settings) == ""  # 4 / 100 < 0.05


# ---- probes ---------------------------------------------------------------------------


def test_a_mode_probe_changes_exactly_the_k_token(tune):
    probe = Probe.from_config("dorian", {"of": "tune", "mode": "dor"})
    probed = probed_tokens(tune, probe)
    assert probed[1] == "K:Cdor" and tune[1] == "K:Cmin"
    assert changed_steps(tune, probed) == [2]  # step 2 reads the mode
    assert probed[:1] + probed[2:] == tune[:1] + tune[2:]


def test_replace_counts_steps_after_the_start_token(tune):
    probe = Probe.from_config("p", {"of": "tune", "replace": {"step": 3, "token": "z"}})
    probed = probed_tokens(tune, probe)
    assert probed[2] == "z" and changed_steps(tune, probed) == [3]  # step 3: the first body token
    with pytest.raises(ProbeError, match=r"probe 'far': replace.step 49 is not a step"):
        probed_tokens(tune, Probe.from_config("far", {"of": "tune", "replace": {"step": 49, "token": "z"}}))
    with pytest.raises(ProbeError, match="probe 'meter': step 5 reading 'M:3/4' does not make a tune"):
        probed_tokens(
            tune, Probe.from_config("meter", {"of": "tune", "replace": {"step": 5, "token": "M:3/4"}})
        )
    with pytest.raises(ProbeError, match="exactly one of"):
        Probe.from_config("both", {"of": "tune", "mode": "maj", "replace": {"step": 3, "token": "z"}})


def test_a_token_outside_the_vocabulary_names_the_probe_token_and_step(tune):
    probe = Probe.from_config("odd", {"of": "tune", "replace": {"step": 7, "token": "^^^C"}})
    with pytest.raises(ProbeError, match=r"probe 'odd': token '\^\^\^C' \(step 7\) is not in the model's"):
        run_probe(small_model(n_units=8), tune, probe, "abs")


def test_a_probe_identical_to_the_original_changes_nothing(tune):
    probe = Probe.from_config(
        "same", {"of": "tune", "replace": {"step": 6, "token": tune[5]}, "quantities": ["h", "c"]}
    )
    result = run_probe(small_model(n_units=16), tune, probe, "abs")
    table = result.table
    assert len(table) == 3 * 2 and set(table["quantity"]) == {"h", "c"}
    assert (table["relative_frobenius"] == 0).all() and (table["max_abs_difference"] == 0).all()
    np.testing.assert_allclose(table["cka"], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(table["pearson"], 1.0, rtol=0, atol=1e-12)
    assert table["first_changed_step"].isna().all() and table["first_moved_step"].isna().all()
    assert (result.steps["distance"] == 0).all()
    assert result.changed == []


def test_a_changed_token_moves_no_step_before_it(tune):
    s = 12
    token = "B" if tune[s - 1] != "B" else "c"
    probe = Probe.from_config("one_note", {"of": "tune", "replace": {"step": s, "token": token}})
    result = run_probe(small_model(n_units=16), tune, probe, "abs")
    assert result.changed == [s] and result.tokens[s] == token
    for layer in (1, 2, 3):
        rows = result.steps[result.steps["layer"] == layer].sort_values("step")
        distance = rows["distance"].to_numpy()
        assert (distance[:s] == 0).all(), layer  # exactly: both read in one batch
        assert distance[s] > 0, layer
    table = result.table
    assert (table["first_changed_step"] == s).all() and (table["first_moved_step"] == s).all()
    assert (table["relative_frobenius"] > 0).all() and (table["cka"] < 1).all()
    difference = result.differences[1, "h"]
    assert np.abs(difference[:s, :s]).max() == 0  # pairs of earlier steps are untouched


def test_the_probe_job_writes_the_tune_tables_and_figure(tmp_path, tune):
    model = small_model(n_units=16)
    save_checkpoint(model, tmp_path / "tiny.safetensors")
    source = tmp_path / "tokens.txt"
    source.write_text(f"{tune[0]}\n{tune[1]}\n{' '.join(tune[2:])}\n")
    out = {
        name: tmp_path / "probe" / name for name in ("tokens.txt", "probe.parquet", "steps.parquet", "d.png")
    }
    probe_tune(
        "major",
        {"of": "tune", "mode": "maj"},
        tmp_path / "tiny.safetensors",
        source,
        *out.values(),
        colours=resolve_section("analysis")["colours"],
        gramian="abs",
        dpi=50,
    )
    [probed] = read_token_file(out["tokens.txt"])
    assert probed.mode == "K:Cmaj" and list(probed.body) == tune[2:]
    table = pd.read_parquet(out["probe.parquet"])
    assert table[["layer", "quantity"]].values.tolist() == [[1, "h"], [2, "h"], [3, "h"]]
    assert table["layer"].dtype == np.int8
    steps = pd.read_parquet(out["steps.parquet"])
    assert len(steps) == 3 * (len(tune) + 1)
    assert (steps.loc[steps["step"] < 2, "distance"] == 0).all()
    metadata = read_probe_metadata(out["probe.parquet"])
    assert metadata["probe"]["mode"] == "maj" and json.dumps(metadata)
    assert pq.read_schema(out["steps.parquet"]).field("distance").type == "double"
    size, pixels = _colours(out["d.png"])
    assert min(size) > 300
    assert len(np.unique(pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2])) > 50
