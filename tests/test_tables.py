import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from folkrnn_lens.activations.tables import (
    Provenance,
    load_activation,
    load_softmax,
    read_provenance,
    write_capture,
)
from folkrnn_lens.model.folkrnn import QUANTITIES
from folkrnn_lens.tokens.format import bar_indices


def provenance(model, **extra):
    return Provenance("m.safetensors", "0" * 64, model.vocab, "read", "t", **extra)


@pytest.fixture
def written(tmp_path, excerpt, model):
    capture = model.read([excerpt[3].tokens])[0]
    steps, acts = tmp_path / "steps.parquet", tmp_path / "activations.parquet"
    write_capture(capture, provenance(model), steps, acts)
    return capture, steps, acts


def test_steps_table_has_the_documented_columns_and_types(written, model):
    capture, steps, _ = written
    schema = pq.read_schema(steps)
    assert schema.field("step").type == pa.int32()
    assert schema.field("bar").type == pa.int32()
    assert schema.field("input_token").type == pa.string()
    assert schema.field("softmax").type == pa.list_(pa.float32(), model.config.vocab_size)
    frame = pd.read_parquet(steps)
    n = len(capture.input_tokens)
    assert frame["step"].tolist() == list(range(n))
    assert frame["input_token"].tolist() == capture.input_tokens
    assert frame["output_token"].tolist() == capture.output_tokens
    assert frame["bar"].tolist() == bar_indices(capture.input_tokens)
    np.testing.assert_array_equal(load_softmax(steps), capture.softmax)
    p_next = capture.softmax[np.arange(n), [model.token2idx[t] for t in capture.output_tokens]]
    np.testing.assert_allclose(frame["surprisal_nats"], -np.log(p_next), rtol=1e-5)


def test_activation_table_rows_and_types(written, model):
    capture, _, acts = written
    table = pq.read_table(acts)
    n = len(capture.input_tokens)
    assert table.num_rows == n * 3 * len(QUANTITIES)
    assert table.schema.field("step").type == pa.int32()
    assert table.schema.field("layer").type == pa.int8()
    assert table.schema.field("values").type == pa.list_(pa.float32(), 32)
    assert set(table["quantity"].to_pylist()) == set(QUANTITIES)
    assert sorted(set(table["layer"].to_pylist())) == [1, 2, 3]


@pytest.mark.parametrize("layer", [1, 2, 3])
@pytest.mark.parametrize("quantity", QUANTITIES)
def test_load_activation_returns_exactly_the_captured_array(written, layer, quantity):
    capture, _, acts = written
    array = load_activation(acts, layer, quantity)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, capture.activations[layer - 1, QUANTITIES.index(quantity)])


def test_chosen_layers_and_quantities_only(tmp_path, excerpt, model):
    capture = model.read([excerpt[0].tokens])[0]
    acts = tmp_path / "a.parquet"
    write_capture(capture, provenance(model), tmp_path / "s.parquet", acts, layers=[3], quantities=["h", "c"])
    table = pq.read_table(acts, columns=["layer", "quantity"])
    assert set(zip(table["layer"].to_pylist(), table["quantity"].to_pylist())) == {(3, "h"), (3, "c")}
    with pytest.raises(KeyError, match=r"no layer 1 quantity 'h'; the file holds \[\(3, 'c'\), \(3, 'h'\)\]"):
        load_activation(acts, 1, "h")


def test_a_layer_the_model_lacks_is_refused(tmp_path, excerpt, model):
    capture = model.read([excerpt[0].tokens])[0]
    with pytest.raises(ValueError, match="layer 4 does not exist"):
        write_capture(capture, provenance(model), tmp_path / "s", tmp_path / "a", layers=[4])


def test_metadata_records_model_vocab_mode_seed_and_temperature(tmp_path, model):
    capture = model.generate([5], 0.8, None, 30)[0]
    prov = Provenance("m.pkl", "ab" * 32, model.vocab, "generate", "g", seed=5, temperature=0.8)
    write_capture(capture, prov, tmp_path / "s.parquet", tmp_path / "a.parquet")
    for name in ("s.parquet", "a.parquet"):
        meta = read_provenance(tmp_path / name)
        assert meta["model_file"] == "m.pkl" and meta["model_sha256"] == "ab" * 32
        assert meta["vocab"] == model.vocab
        assert (meta["mode"], meta["seed"], meta["temperature"]) == ("generate", 5, 0.8)


def test_same_seed_gives_bit_identical_tables(tmp_path, model):
    paths = []
    for run in ("a", "b"):
        capture = model.generate([11], 1.0, None, 60)[0]
        prov = Provenance("m", "0" * 64, model.vocab, "generate", "g", seed=11, temperature=1.0)
        steps, acts = tmp_path / f"{run}_s.parquet", tmp_path / f"{run}_a.parquet"
        write_capture(capture, prov, steps, acts)
        paths.append((steps.read_bytes(), acts.read_bytes()))
    assert paths[0] == paths[1]
