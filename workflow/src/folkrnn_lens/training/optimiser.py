"""The optimiser folk-rnn was trained with: Lasagne's RMSprop, and rebuilding its running
averages where a checkpoint (which does not keep them) is to be trained on."""

from __future__ import annotations

from collections.abc import Callable

import torch

RMSPROP_RHO = 0.9
"""Lasagne's rmsprop default, which folk-rnn kept: not a setting of config.yaml."""

RMSPROP_EPSILON = 1e-6
"""Lasagne's rmsprop default, which folk-rnn kept: not a setting of config.yaml."""


class LasagneRMSprop(torch.optim.Optimizer):
    """RMSprop as Lasagne's ``lasagne.updates.rmsprop``, which trained folk-rnn:
    ``a = rho a + (1 - rho) g**2``, ``p -= lr g / sqrt(a + epsilon)`` (epsilon inside
    the square root, unlike ``torch.optim.RMSprop``)."""

    def __init__(self, params, lr: float, rho: float = RMSPROP_RHO, epsilon: float = RMSPROP_EPSILON):
        super().__init__(params, {"lr": lr, "rho": rho, "epsilon": epsilon})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, rho, epsilon = group["lr"], group["rho"], group["epsilon"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if "accu" not in state:
                    state["accu"] = torch.zeros_like(param)
                accu = state["accu"]
                accu.mul_(rho).addcmul_(param.grad, param.grad, value=1 - rho)
                param.addcdiv_(param.grad, accu.add(epsilon).sqrt_(), value=-lr)


def rebuild_rmsprop(optimizer: LasagneRMSprop, replay: Callable[[], float], steps: int) -> float:
    """RMSprop's running averages of squared gradients rebuilt at the model's weights:
    ``replay`` runs ``steps`` optimiser steps (an epoch's batches) at learning rate 0,
    set here, so the weights do not move, and each average is divided by
    1 - rho**steps, as it started from zero. Over one epoch rho**steps is the share of
    all earlier epochs in the true average (0.9**45 < 1%), so the rebuilt one differs
    from it mainly in taking every gradient at the last weights. Returns what
    ``replay`` returns (its loss)."""
    optimizer.state.clear()
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    loss = replay()
    for group in optimizer.param_groups:
        for param in group["params"]:
            optimizer.state[param]["accu"].div_(1 - group["rho"] ** steps)
    return loss
