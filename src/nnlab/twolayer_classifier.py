"""A two-layer softmax classifier, inputs -> hidden -> classes, with forward and backward by hand.

Every array carries a leading *model* axis M, so many networks (seeds, learning rates, penalties)
train in one set of matrix products; model m sees only its own weights, data order and step size,
so training M models together gives what training each alone would.

    scores = act(X W1 + b1) W2 + b2,     s = softmax(scores)
    loss   = mean_n CE(s_n, y_n) + reg/2 (||W1||^2 + ||W2||^2)        (biases are not penalised)

The gradient of the mean cross-entropy with respect to the scores is (s - Y) / B (Y one-hot), the
s - y of the softmax chapter; the penalty adds reg * W to each weight gradient.
"""
from __future__ import annotations

import numpy as np

from nnlab.softmax import log_softmax, softmax

ACTIVATIONS = ("relu", "sigmoid")


def _activate(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(z, 0.0)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _activation_slope(z: np.ndarray, h: np.ndarray, activation: str) -> np.ndarray:
    """d act(z) / dz, from the pre-activation z and the activation h = act(z)."""
    return (z > 0).astype(z.dtype) if activation == "relu" else h * (1.0 - h)


def init_params(rngs: list[np.random.Generator], n_in: int, n_hidden: int, n_out: int,
                init_scale: float, dtype=np.float64) -> dict[str, np.ndarray]:
    """Weights ~ N(0, init_scale^2) and zero biases, one network per generator (leading axis)."""
    def stack(shape):
        return np.stack([init_scale * rng.standard_normal(shape) for rng in rngs]).astype(dtype)

    m = len(rngs)
    return {"W1": stack((n_in, n_hidden)), "b1": np.zeros((m, 1, n_hidden), dtype),
            "W2": stack((n_hidden, n_out)), "b2": np.zeros((m, 1, n_out), dtype)}


def hidden(params: dict, X: np.ndarray, activation: str = "relu") -> np.ndarray:
    """Hidden-unit outputs act(X W1 + b1), shape (M, N, hidden)."""
    return _activate(X @ params["W1"] + params["b1"], activation)


def scores(params: dict, X: np.ndarray, activation: str = "relu") -> np.ndarray:
    """Class scores (logits), shape (M, N, classes); X is (N, D) shared or (M, N, D) per model."""
    return hidden(params, X, activation) @ params["W2"] + params["b2"]


def predict(params: dict, X: np.ndarray, activation: str = "relu") -> np.ndarray:
    """Predicted class of every example for every model, shape (M, N)."""
    return scores(params, X, activation).argmax(-1)


def penalty(params: dict, reg: np.ndarray) -> np.ndarray:
    """reg/2 (||W1||^2 + ||W2||^2) per model."""
    return 0.5 * reg * ((params["W1"] ** 2).sum((1, 2)) + (params["W2"] ** 2).sum((1, 2)))


def loss_and_grads(params: dict, X: np.ndarray, y: np.ndarray, reg: np.ndarray,
                   activation: str = "relu") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-model objective (mean cross-entropy + penalty) and its gradients, by the chain rule.

    X is (M, B, D), y is (M, B) integer labels, reg is (M,) of X's dtype.
    """
    z1 = X @ params["W1"] + params["b1"]
    h = _activate(z1, activation)
    logits = h @ params["W2"] + params["b2"]
    batch = X.shape[1]
    one_hot = np.eye(logits.shape[-1], dtype=logits.dtype)[y]
    data_loss = -(one_hot * log_softmax(logits)).sum(-1).mean(-1)

    d_logits = (softmax(logits) - one_hot) / batch            # s - y, averaged over the batch
    d_h = d_logits @ params["W2"].transpose(0, 2, 1)
    d_z1 = d_h * _activation_slope(z1, h, activation)
    r = reg[:, None, None]
    grads = {"W2": h.transpose(0, 2, 1) @ d_logits + r * params["W2"],
             "b2": d_logits.sum(1, keepdims=True),
             "W1": X.transpose(0, 2, 1) @ d_z1 + r * params["W1"],
             "b1": d_z1.sum(1, keepdims=True)}
    return data_loss + penalty(params, reg), grads


def evaluate(params: dict, X: np.ndarray, y: np.ndarray,
             activation: str = "relu") -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy (no penalty) and accuracy of every model on a whole set: two (M,) arrays."""
    logits = scores(params, X, activation)
    log_p = log_softmax(logits)
    loss = -np.take_along_axis(log_p, np.broadcast_to(y, logits.shape[:2])[..., None], -1).mean((1, 2))
    accuracy = (logits.argmax(-1) == y).mean(-1)
    return loss, accuracy


def train(X: np.ndarray, y: np.ndarray, *, seeds, lr, reg, batch_size: int, epochs: int,
          n_hidden: int, init_scale: float, activation: str = "relu",
          monitor: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
          every_epoch: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """Mini-batch SGD on M = len(seeds) networks at once; model m uses lr[m], reg[m] and seeds[m].

    A model's seed fixes its initial weights and its shuffling of the training set in every epoch
    (the last mini-batch of an epoch is the remainder, smaller than ``batch_size``). ``monitor``
    maps set names to (X, y): the mean cross-entropy and accuracy on each whole set are recorded
    before training and after every epoch (``every_epoch``) or only at the end, as
    history["<set>_loss"] and history["<set>_acc"] of shape (M, records). history["last_batch_acc"]
    (M,) is the accuracy on the final mini-batch, measured in its forward pass before the update;
    history["diverged"] (M,) is True where the weights are no longer finite.
    Arithmetic is in X's dtype (float32 halves the time of the experiments; tests use float64).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs = {epochs}, batch_size = {batch_size}: both must be >= 1")
    rngs = [np.random.default_rng(s) for s in seeds]
    m, n = len(rngs), len(y)
    lr = np.broadcast_to(np.asarray(lr, X.dtype), (m,))[:, None, None]
    reg = np.broadcast_to(np.asarray(reg, X.dtype), (m,))
    params = init_params(rngs, X.shape[1], n_hidden, int(y.max()) + 1, init_scale, X.dtype)
    monitor = monitor or {}
    history = {f"{name}_{k}": [] for name in monitor for k in ("loss", "acc")}

    def record():
        for name, (Xs, ys) in monitor.items():
            loss, acc = evaluate(params, Xs, ys, activation)
            history[f"{name}_loss"].append(loss)
            history[f"{name}_acc"].append(acc)

    # A too-large step makes the weights overflow to inf/nan; that model has diverged, which
    # history["diverged"] records, and the others carry on unaffected.
    with np.errstate(over="ignore", invalid="ignore"):
        record()
        for epoch in range(epochs):
            order = np.stack([rng.permutation(n) for rng in rngs])
            for start in range(0, n, batch_size):
                idx = order[:, start:start + batch_size]
                if epoch == epochs - 1 and start + batch_size >= n:
                    last_batch_acc = evaluate(params, X[idx], y[idx], activation)[1]
                _, grads = loss_and_grads(params, X[idx], y[idx], reg, activation)
                for key in params:
                    params[key] -= lr * grads[key]
            if every_epoch or epoch == epochs - 1:
                record()
    history = {k: np.stack(v, axis=1) for k, v in history.items()}
    history["last_batch_acc"] = last_batch_acc
    history["diverged"] = ~np.all([np.isfinite(p).all((1, 2)) for p in params.values()], axis=0)
    return params, history
