"""Interventions against exact identities and independent code: token influence (a plain
loop over torch.nn.LSTM, one re-read per ablated step) and direct logit attribution."""

import functools

import numpy as np
import pytest
import torch

from folkrnn_lens.interventions.ablation import ablate_units, sweep_rows
from folkrnn_lens.interventions.attribution import logit_attribution
from folkrnn_lens.interventions.influence import (
    Ablation,
    InterventionError,
    token_influence,
    top_states,
    tune_steps,
)
from folkrnn_lens.interventions.patching import activation_patching

from .conftest import small_model

TUNE = ["M:4/4", "K:Cmaj", *"C D E C | G A B c | C E G c | c B A G |".split()]
INPUTS, TARGETS = tune_steps(TUNE)


@pytest.fixture(scope="module")
def model():
    return small_model(n_units=16)


def loop_log_probs(model, tokens: list[str], ablated_step: int | None, ablated_input) -> np.ndarray:
    """log p_t(y_t) of every step by torch.nn.LSTM on one-hot inputs, with the input
    vector of one step replaced: independent of the batched code."""
    idx = model.encode([*tune_steps(tokens)[0], "</s>"])
    n, V = len(idx) - 1, len(model.vocab)
    x = torch.zeros(1, n, V)
    x[0, torch.arange(n), torch.tensor(idx[:-1])] = 1.0
    if ablated_step is not None:
        x[0, ablated_step] = torch.as_tensor(ablated_input, dtype=torch.float32)
    lstm = model.torch_lstm()
    L = model.config.n_layers
    h0 = torch.stack([p.detach() for p in model.h0])[:, None]
    c0 = torch.stack([p.detach() for p in model.c0])[:, None]
    with torch.no_grad():
        out, _ = lstm(x, (h0.expand(L, 1, -1).contiguous(), c0.expand(L, 1, -1).contiguous()))
        logits = out[0].double() @ model.W_out.detach().double() + model.b_out.detach().double()
        log_p = torch.log_softmax(logits, dim=-1)
    return log_p[torch.arange(n), torch.tensor(idx[1:])].numpy()


def ablated_vector(model, ablation: Ablation) -> np.ndarray:
    vector = np.zeros(len(model.vocab))
    if ablation.kind == "token":
        vector[model.token2idx[ablation.token]] = 1.0
    elif ablation.kind == "mean":
        for token in ablation.tokens:
            vector[model.token2idx[token]] += 1.0 / len(ablation.tokens)
    return vector


@pytest.mark.parametrize(
    "ablation",
    [Ablation("zero"), Ablation("token", token="z"), Ablation("mean", tokens=tuple(TUNE))],
    ids=["zero", "token", "mean"],
)
def test_influence_agrees_with_a_plain_loop_of_re_reads(model, ablation):
    result = token_influence(model, INPUTS, TARGETS, ablation)
    n = len(TUNE) + 1
    clean = loop_log_probs(model, TUNE, None, None)
    np.testing.assert_allclose(result.log_prob, clean, atol=1e-5)
    vector = ablated_vector(model, ablation)
    for s in range(n):
        expected = clean - loop_log_probs(model, TUNE, s, vector)
        np.testing.assert_allclose(result.influence[s, s:], expected[s:], atol=1e-5, err_msg=f"step {s}")
    assert np.abs(result.influence).max() > 1e-3  # something to agree on


def test_no_step_influences_an_earlier_one_exactly(model):
    result = token_influence(model, INPUTS, TARGETS, Ablation("zero"))
    s, t = np.tril_indices(len(TUNE) + 1, -1)  # t < s
    assert not result.influence[s, t].any()
    assert not result.delta_h[:, s, t].any() and not result.delta_c[:, s, t].any()
    assert (np.diagonal(result.delta_h[0]) > 0).all()  # ablating step s moves layer 1 at s


def test_an_ablation_that_changes_nothing_changes_nothing_bit_for_bit(model):
    """Steps that already read the replacement token: their rows equal the clean read."""
    result = token_influence(model, INPUTS, TARGETS, Ablation("token", token="C"))
    same = [s for s, token in enumerate(["<s>", *TUNE]) if token == "C"]
    assert len(same) == 3
    for s in same:
        assert not result.influence[s].any()
        assert not result.delta_h[:, s].any() and not result.delta_c[:, s].any()
    other = [s for s in range(len(TUNE) + 1) if s not in same]
    assert all(result.delta_h[0, s, s] > 0 for s in other)


def test_a_window_measures_its_own_steps_as_the_whole_tune_does(model):
    whole = token_influence(model, INPUTS, TARGETS, Ablation("zero"))
    part = token_influence(model, INPUTS, TARGETS, Ablation("zero"), window=(5, 15))
    assert part.start == 5 and part.input_tokens == (["<s>", *TUNE])[5:15]
    np.testing.assert_allclose(part.influence, whole.influence[5:15, 5:15], atol=1e-6)
    np.testing.assert_allclose(part.delta_c, whole.delta_c[:, 5:15, 5:15], atol=1e-6)
    with pytest.raises(InterventionError, match="window of steps 10..29 does not fit a tune of 23 steps"):
        token_influence(model, INPUTS, TARGETS, Ablation("zero"), window=(10, 30))


def test_bad_ablations_are_refused_by_name(model):
    with pytest.raises(InterventionError, match="ablation 'fuzz' is not one of"):
        Ablation("fuzz")
    with pytest.raises(InterventionError, match="needs the token"):
        Ablation("token")
    with pytest.raises(InterventionError, match=r"ablation token '\^\^\^C' is not in the model's"):
        token_influence(model, INPUTS, TARGETS, Ablation("token", token="^^^C"))
    with pytest.raises(InterventionError, match="none of its tokens is in the model's vocabulary"):
        token_influence(model, INPUTS, TARGETS, Ablation("mean", tokens=("nothing",)))


# ---- direct logit attribution ---------------------------------------------------------------


def test_attributions_and_the_bias_sum_to_the_logits(model):
    capture = model.read([TUNE])[0]
    states = top_states(model, INPUTS)
    np.testing.assert_array_equal(states, capture.quantity(3, "h"))  # the step function read records
    result = logit_attribution(model, states, TARGETS, top=4)
    h3 = capture.quantity(3, "h").astype(np.float64)
    logits = h3 @ model.W_out.detach().double().numpy() + model.b_out.detach().double().numpy()
    steps = np.arange(len(h3))
    np.testing.assert_allclose(result.target_logit, logits[steps, result.target], atol=1e-4)
    contributions = h3 * model.W_out.detach().double().numpy()[:, result.target].T  # (n, H)
    np.testing.assert_allclose(
        contributions.sum(axis=1) + model.b_out.detach().double().numpy()[result.target],
        result.target_logit,
        atol=1e-4,
    )
    top = result.units.query("rank == 0 and of == 'target'").set_index("step")["contribution"]
    np.testing.assert_allclose(top.to_numpy(), contributions.max(axis=1), atol=1e-6)
    assert (result.units.groupby(["step", "of"]).size() == 4).all()


# ---- activation patching ------------------------------------------------------------------------


def probed(tokens: list[str], step: int, token: str) -> list[str]:
    """The inputs of a tune with the input of one step replaced."""
    inputs = tune_steps(tokens)[0]
    return [*inputs[:step], token, *inputs[step + 1 :]]


def test_patching_a_read_with_its_own_states_changes_nothing_bit_for_bit(model):
    result = activation_patching(model, INPUTS, INPUTS, TARGETS)
    n = len(INPUTS)
    for row, step in enumerate(result.steps):
        assert (result.patched[row, step:] == result.corrupted[step:]).all(), (result.layers[row], step)
        assert np.isnan(result.patched[row, :step]).all()
    np.testing.assert_array_equal(result.clean, result.corrupted)
    assert len(result.layers) == 4 * n and result.layers[:4] == [1, 2, 3, 0]


def test_patching_every_layer_at_a_step_reproduces_the_clean_read_after_it(model):
    s = 6
    corrupted = probed(TUNE, s, "A")
    result = activation_patching(model, INPUTS, corrupted, TARGETS)
    assert np.abs(result.clean - result.corrupted)[s:].max() > 1e-3
    every = [row for row, (layer, step) in enumerate(zip(result.layers, result.steps)) if layer == 0]
    for row in every:
        step = result.steps[row]
        if step >= s:  # the inputs after it are the clean ones
            np.testing.assert_allclose(result.patched[row, step:], result.clean[step:], atol=1e-6)
    before = every[s - 1]  # patched before the change: the change still comes
    assert np.abs(result.patched[before, s:] - result.clean[s:]).max() > 1e-3
    restored = result.restored()
    assert np.nanmax(np.abs(restored[every[s], s:] - 1)) < 1e-3


def test_patching_agrees_with_a_plain_loop_for_one_layer(model):
    s, layer = 6, 2
    corrupted = probed(TUNE, s, "A")
    result = activation_patching(model, INPUTS, corrupted, TARGETS, states=("h",))
    row = next(r for r, at in enumerate(zip(result.layers, result.steps)) if at == (layer, s))
    expected = plain_patch(model, INPUTS, corrupted, TARGETS, layer, s)
    np.testing.assert_allclose(result.patched[row, s:], expected[s:], atol=1e-5)


def plain_patch(model, clean, corrupted, targets, layer, step) -> np.ndarray:
    """One patched read with torch.nn.LSTMCell per layer, h of ``layer`` at ``step`` from
    the clean read: independent of the batched code."""
    L = model.config.n_layers
    cells = []
    for k in range(L):
        cell = torch.nn.LSTMCell(model.W_x[k].shape[0], model.config.n_units)
        with torch.no_grad():
            cell.weight_ih.copy_(model.W_x[k].T)
            cell.weight_hh.copy_(model.W_h[k].T)
            cell.bias_ih.copy_(model.b[k])
            cell.bias_hh.zero_()
        cells.append(cell)

    def run(tokens, patch=None):
        states = [(model.h0[k].detach()[None], model.c0[k].detach()[None]) for k in range(L)]
        out, seen = [], []
        with torch.no_grad():
            for t, token in enumerate(tokens):
                x = torch.zeros(1, len(model.vocab))
                x[0, model.token2idx[token]] = 1.0
                for k in range(L):
                    h, c = cells[k](x, states[k])
                    if patch is not None and (k + 1, t) == (layer, step):
                        h = patch[t][k]
                    states[k] = (h, c)
                    x = h
                seen.append([states[k][0] for k in range(L)])
                logits = x.double() @ model.W_out.detach().double() + model.b_out.detach().double()
                out.append(float(torch.log_softmax(logits, -1)[0, model.token2idx[targets[t]]]))
        return np.array(out), seen

    _, clean_states = run(clean)
    patched, _ = run(corrupted, clean_states)
    return patched


def test_patching_two_tunes_of_different_lengths_is_refused(model):
    with pytest.raises(InterventionError, match="the clean one has 23 steps, the corrupted one 22"):
        activation_patching(model, INPUTS, INPUTS[:-1], TARGETS)
    with pytest.raises(InterventionError, match="states to patch must be some of"):
        activation_patching(model, INPUTS, INPUTS, TARGETS, states=("o",))


# ---- unit ablation ------------------------------------------------------------------------------


def test_ablating_no_unit_changes_nothing_and_a_sweep_matches_ablating_each_unit_alone(model):
    nothing = ablate_units(model, INPUTS, TARGETS, 2, "h", [[]])
    assert not nothing.importance.any()
    sweep = ablate_units(model, INPUTS, TARGETS, 2, "h", sweep_rows(16), chunk=5)
    assert sweep.importance.shape == (16, len(INPUTS)) and np.abs(sweep.importance).max() > 1e-3
    alone = ablate_units(model, INPUTS, TARGETS, 2, "h", [[7]])
    np.testing.assert_allclose(sweep.importance[7], alone.importance[0], atol=1e-6)


@pytest.mark.parametrize("quantity", ["h", "c", "o", "g"])
def test_unit_ablation_agrees_with_a_plain_loop(model, quantity):
    units, start = [3, 11], 5
    result = ablate_units(model, INPUTS, TARGETS, 1, quantity, [units], start=start, value="mean")
    capture = model.read([TUNE])[0]
    mean = capture.quantity(1, quantity).astype(np.float64).mean(axis=0)
    expected = clean_minus_plain_ablation(model, quantity, units, start, mean[units])
    assert not result.importance[0, :start].any()
    np.testing.assert_allclose(result.importance[0], expected, atol=1e-5)


def test_units_are_held_at_given_corpus_means(model):
    means = np.linspace(-0.5, 0.5, model.config.n_units)
    result = ablate_units(model, INPUTS, TARGETS, 1, "c", [[2, 9]], start=3, value="mean", mean=means)
    expected = clean_minus_plain_ablation(model, "c", [2, 9], 3, means[[2, 9]])
    np.testing.assert_allclose(result.importance[0], expected, atol=1e-5)
    with pytest.raises(InterventionError, match=r"\(15,\) unit means: layer 1 has 16 units"):
        ablate_units(model, INPUTS, TARGETS, 1, "c", [[2]], value="mean", mean=means[:-1])


def clean_minus_plain_ablation(model, quantity, units, start, values) -> np.ndarray:
    """log p_t(y_t) clean minus with layer 1's units held, by a numpy loop of the
    equations (docs/specification.md): independent of the batched code."""
    weights = [[p[k].detach().double().numpy() for p in (model.W_x, model.W_h, model.b)] for k in range(3)]
    W_out, b_out = model.W_out.detach().double().numpy(), model.b_out.detach().double().numpy()
    H = model.config.n_units
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731

    def run(hold: bool) -> np.ndarray:
        h = [p.detach().double().numpy() for p in model.h0]
        c = [p.detach().double().numpy() for p in model.c0]
        out = []
        for t, token in enumerate(INPUTS):
            held = hold and t >= start
            for k, (W_x, W_h, b) in enumerate(weights):
                x = W_x[model.token2idx[token]] if k == 0 else h[k - 1] @ W_x
                z = x + h[k] @ W_h + b
                gate = {"i": sigmoid(z[:H]), "f": sigmoid(z[H : 2 * H]), "g": np.tanh(z[2 * H : 3 * H]),
                        "o": sigmoid(z[3 * H :])}  # fmt: skip
                if held and k == 0 and quantity in gate:
                    gate[quantity][units] = values
                c[k] = gate["f"] * c[k] + gate["i"] * gate["g"]
                if held and k == 0 and quantity == "c":
                    c[k][units] = values
                h[k] = gate["o"] * np.tanh(c[k])
                if held and k == 0 and quantity == "h":
                    h[k][units] = values
            logits = h[-1] @ W_out + b_out
            log_p = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
            out.append(log_p[model.token2idx[TARGETS[t]]])
        return np.array(out)

    return run(False) - run(True)


def test_ablating_what_the_model_lacks_is_refused_before_any_computation(model):
    with pytest.raises(InterventionError, match="layer 4 does not exist: the model has layers 1..3"):
        ablate_units(model, INPUTS, TARGETS, 4, "h", [[0]])
    with pytest.raises(InterventionError, match="unit 16 does not exist: layer 2 has units 0..15"):
        ablate_units(model, INPUTS, TARGETS, 2, "h", [[3, 16]])
    with pytest.raises(InterventionError, match="ablation from step 30: the tune has steps 0..22"):
        ablate_units(model, INPUTS, TARGETS, 2, "h", [[3]], start=30)
    with pytest.raises(InterventionError, match="quantity 'g_pre' cannot be ablated"):
        ablate_units(model, INPUTS, TARGETS, 2, "g_pre", [[3]])


def test_a_pair_s_patching_job_writes_its_tables_and_refuses_two_lengths_by_name(model, tmp_path):
    """The job behind patch_probe and patch_pair: the tables hold the patches of every
    layer and step with provenance naming both tunes; tunes of two lengths are refused,
    naming both files, before the model loads."""
    import json

    import pandas as pd
    import pyarrow.parquet as pq

    from folkrnn_lens.config import resolve_section
    from folkrnn_lens.interventions.transcription import METADATA_KEY, patch_transcriptions
    from folkrnn_lens.model.checkpoint import save_checkpoint

    colours = resolve_section("analysis")["colours"]
    save_checkpoint(model, tmp_path / "model.safetensors")
    changed = [*TUNE[:5], "B", *TUNE[6:]]
    for name, tokens in (("clean", TUNE), ("corrupted", changed), ("short", TUNE[:-1])):
        inputs, targets = tune_steps(tokens)
        pd.DataFrame({"input_token": inputs, "output_token": targets}).to_parquet(
            tmp_path / f"{name}.parquet"
        )
    outputs = [tmp_path / name for name in ("patching.parquet", "summary.parquet", "patching.png")]
    patch = functools.partial(
        patch_transcriptions, "pair p", tmp_path / "model.safetensors", tmp_path / "clean.parquet"
    )
    patch(tmp_path / "corrupted.parquet", *outputs, ["h", "c"], colours, 40, names=("clean", "corrupted"))
    summary = pd.read_parquet(outputs[1])
    n, L = len(INPUTS), model.config.n_layers
    assert len(summary) == (L + 1) * n and outputs[2].stat().st_size > 0
    facts = json.loads(pq.read_schema(outputs[0]).metadata[METADATA_KEY])
    assert facts["patching"] == {
        "states": ["h", "c"],
        "clean": "clean",
        "corrupted": "corrupted",
        "job": "pair p",
    }
    refusal = r"pair p: the clean 'clean' \(.*clean.parquet\) has 23 steps and the corrupted 'short' .* 22"
    with pytest.raises(ValueError, match=refusal):
        patch(tmp_path / "short.parquet", *outputs, ["h"], colours, 40, names=("clean", "short"))
