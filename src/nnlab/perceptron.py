"""The perceptron rule on AND, OR and XOR; linear separability as a linear program; 2-2-1 XOR networks.

The rule (Rosenblatt 1958, as stated in seed 002): visit the samples in order; output
a = 1 if w.x + b >= 0 else 0; update w <- w + alpha (t - a) x, b <- b + alpha (t - a).
An epoch is one pass over the four samples.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linprog

from nnlab import backprop

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
TARGETS = {"AND": np.array([0, 0, 0, 1]), "OR": np.array([0, 1, 1, 1]), "XOR": np.array([0, 1, 1, 0])}


def predict(w: np.ndarray, b: float, X: np.ndarray) -> np.ndarray:
    """The threshold unit: 1 where w.x + b >= 0, else 0."""
    return (X @ w + b >= 0).astype(int)


class PerceptronRun(NamedTuple):
    status: str               # "converged" (an epoch without error), "cycle" (a state came back) or
                              # "max_epochs" (neither happened: only possible when the weights grow)
    w: np.ndarray             # final weights
    b: float                  # final bias
    epochs: int               # epochs run, the error-free one included
    steps: np.ndarray         # one row per visited sample: epoch, sample, t, a, w1, w2, b (after the update)
    cycle_start: int          # epoch at whose start the repeated state was first seen (0: no cycle)
    cycle_length: int         # period of the cycle in epochs (0: no cycle)


def perceptron_rule(X: np.ndarray, t: np.ndarray, alpha: float = 1.0, max_epochs: int = 1000) -> PerceptronRun:
    """Run the rule from w = 0, b = 0 until an epoch makes no error or the state (w, b) at the start of
    an epoch repeats: the rule is deterministic, so a repeated state means it cycles forever.

    With integer inputs and alpha = 1 every (w, b) is an integer vector, and the perceptron cycling
    theorem bounds the weights, so on non-separable data a repeat is certain to occur.
    """
    w, b = np.zeros(X.shape[1]), 0.0
    seen: dict[tuple, int] = {}
    steps = []
    for epoch in range(1, max_epochs + 1):
        state = (*w, b)
        if state in seen:
            return PerceptronRun("cycle", w, b, epoch - 1, np.array(steps), seen[state], epoch - seen[state])
        seen[state] = epoch
        errors = 0
        for i, (x, target) in enumerate(zip(X, t)):
            a = int(w @ x + b >= 0)
            w, b = w + alpha * (target - a) * x, b + alpha * (target - a)
            errors += int(a != target)
            steps.append((epoch, i, target, a, *w, b))
        if errors == 0:
            return PerceptronRun("converged", w, b, epoch, np.array(steps), 0, 0)
    return PerceptronRun("max_epochs", w, b, max_epochs, np.array(steps), 0, 0)


def separation_lp(X: np.ndarray, t: np.ndarray):
    """Solve the feasibility LP  (2 t_i - 1)(w.x_i + b) >= 1 for all i  in the unknowns (w, b).

    Margin 1 loses nothing: any strict separator can be rescaled to it. Returns scipy's result:
    status 0 means a separator exists (res.x = (w, b)), status 2 means the LP is infeasible.
    """
    signs = 2 * np.asarray(t) - 1
    A_ub = -signs[:, None] * np.hstack([X, np.ones((len(X), 1))])
    return linprog(c=np.zeros(X.shape[1] + 1), A_ub=A_ub, b_ub=-np.ones(len(X)),
                   bounds=[(None, None)] * (X.shape[1] + 1), method="highs")


def hand_set_xor_network(gain: float = 10.0) -> backprop.Params:
    """A sigmoid 2-2-1 network computing XOR = OR and not AND.

    Hidden unit 1 is OR (x1 + x2 - 0.5), hidden unit 2 is AND (x1 + x2 - 1.5), the output is
    h1 - h2 - 0.5; ``gain`` scales every weight so the sigmoids are close to 0/1 steps.
    """
    W2, b2 = np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([-0.5, -1.5])
    W3, b3 = np.array([[1.0, -1.0]]), np.array([-0.5])
    return [(gain * W2, gain * b2), (gain * W3, gain * b3)]


def train_xor_network(seed: int, epochs: int, lr: float, init_scale: float = 1.0):
    """Full-batch gradient descent on the quadratic cost of a sigmoid 2-2-1 network for XOR.

    Returns the final parameters and the cost after every epoch.
    """
    params = backprop.random_network((2, 2, 1), np.random.default_rng(seed), scale=init_scale)
    Y = TARGETS["XOR"][:, None].astype(float)
    costs = np.empty(epochs)
    for epoch in range(epochs):
        grads = backprop.cost_gradients(params, INPUTS, Y, "sigmoid")
        params = [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)]
        costs[epoch] = backprop.quadratic_cost(params, INPUTS, Y, "sigmoid")
    return params, costs


def hidden_representation(params: backprop.Params, X: np.ndarray = INPUTS) -> np.ndarray:
    """The hidden-layer activations a[2] of a 2-2-1 sigmoid network for each input row."""
    return backprop.forward(params, X, "sigmoid")[0][1]
