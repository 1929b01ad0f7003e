"""Interventions against exact identities and independent code: token influence (a plain
loop over torch.nn.LSTM, one re-read per ablated step) and direct logit attribution."""

import numpy as np
import pytest
import torch

from folkrnn_lens.interventions.attribution import logit_attribution
from folkrnn_lens.interventions.influence import (
    Ablation,
    InterventionError,
    token_influence,
    top_states,
    tune_steps,
)

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
