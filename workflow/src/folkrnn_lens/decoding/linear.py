"""Linear probes (decoders) of a layer's states, and the controls that make their
accuracy mean something (docs/decoding.md).

A probe is multinomial logistic regression with an L2 penalty on its weights,

    p(y | x) = softmax(W^T z + b),  z = (x - mean) / scale,
    loss = mean_t -log p(y_t | x_t) + l2 * ||W||^2,

fitted by full-batch L-BFGS in torch (already the model's library; a probe of ~10^5
states of 512 units fits in seconds, deterministically for a given number of threads).
The inputs are standardised with the training states' mean and standard deviation, so
one ``l2`` suits every layer and quantity; a unit's deviation is floored at a thousandth
of the layer's typical one, so that a unit all but constant in training is not blown up
to the size of the others (a probe would then read its noise on held-out tunes).

Hewitt and Liang's control task (2019): every input token *type* (the token read, ``C``,
``2``, ``|``) gets a label drawn at random from the feature's empirical distribution of
labels, and every step reading that type carries that label. A probe that scores well on
the control task does so by memorising token identity, not by reading the feature; the
probe's *selectivity* is its accuracy minus its control accuracy.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Probe:
    """A fitted probe: the standardisation, the weights and the classes they score."""

    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    weights: np.ndarray  # (D, C)
    bias: np.ndarray  # (C,)
    classes: np.ndarray  # (C,) the labels seen in training, sorted

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable class of every row of ``x`` (N, D)."""
        scores = ((np.asarray(x, np.float32) - self.mean) / self.scale) @ self.weights + self.bias
        return self.classes[np.argmax(scores, axis=1)]

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """The share of rows predicted right; a label never seen in training counts wrong."""
        return float(np.mean(self.predict(x) == np.asarray(y))) if len(y) else np.nan


def fit_probe(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 200) -> Probe:
    """Fit a probe to states ``x`` (N, D) and labels ``y`` (N,) of any sortable kind."""
    x = np.asarray(x, np.float32)
    classes, targets = np.unique(np.asarray(y), return_inverse=True)
    mean, scale = standardisation(x)
    # Stored unit-major: the gradient z^T (p - y), the costly product, then reads memory in order.
    z = torch.from_numpy(np.ascontiguousarray(((x - mean) / scale).T)).T  # (N, D)
    target = torch.from_numpy(targets.astype(np.int64))
    weights = torch.zeros(x.shape[1], len(classes), requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    if len(classes) > 1:
        optimiser = torch.optim.LBFGS(
            [weights, bias],
            lr=1.0,
            max_iter=iterations,
            history_size=20,
            tolerance_grad=1e-7,
            tolerance_change=1e-10,
            line_search_fn="strong_wolfe",
        )

        def closure():
            optimiser.zero_grad()
            loss = F.cross_entropy(z @ weights + bias, target) + l2 * (weights * weights).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
    return Probe(mean, scale, weights.detach().numpy(), bias.detach().numpy(), classes)


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training states' mean and (floored, see above) deviation per unit."""
    deviation = x.std(axis=0, dtype=np.float64)
    typical = np.sqrt(np.mean(deviation**2))
    floor = 1e-3 * typical if typical > 0 else 1.0
    return x.mean(axis=0, dtype=np.float64).astype(x.dtype), np.maximum(deviation, floor).astype(x.dtype)


def control_labels(token_types: np.ndarray, labels: np.ndarray, seed: int, name: str) -> dict:
    """Hewitt and Liang's control task: each token type in ``token_types`` gets a label
    drawn independently from the empirical distribution of ``labels`` (the training
    steps' labels of the feature called ``name``), seeded by ``seed`` and the name."""
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    types = np.unique(np.asarray(token_types))
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    drawn = rng.choice(len(values), size=len(types), p=counts / counts.sum())
    return dict(zip(types.tolist(), values[drawn].tolist()))


def majority_accuracy(train: np.ndarray, test: np.ndarray) -> float:
    """The test accuracy of always answering the training labels' most common class."""
    values, counts = np.unique(np.asarray(train), return_counts=True)
    return float(np.mean(np.asarray(test) == values[np.argmax(counts)])) if len(test) else np.nan


def ridge_r2(x_train, y_train, x_test, y_test, l2: float) -> float:
    """Held-out R^2 (over every target column together) of a ridge regression of
    ``y`` (N, K) on ``x`` (N, D) scaled as the probes scale it, penalty ``l2`` per
    training step."""
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    mean, scale = standardisation(x_train)
    a, b = (x_train - mean) / scale, (x_test - mean) / scale
    centre = y_train.mean(axis=0)
    gram = a.T @ a + l2 * len(a) * np.eye(a.shape[1])
    beta = np.linalg.solve(gram, a.T @ (y_train - centre))
    residual = y_test - centre - b @ beta
    total = ((y_test - y_test.mean(axis=0)) ** 2).sum()
    return float(1 - (residual**2).sum() / total) if total > 0 else np.nan
