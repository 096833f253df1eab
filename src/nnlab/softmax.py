"""Softmax, its Jacobian and the cross-entropy gradient, in numpy.

``softmax`` subtracts max(z) before exponentiating, which changes nothing mathematically (softmax is
invariant to adding a constant to every logit) but keeps every exponent <= 0, so nothing overflows.
``softmax_naive`` is the textbook formula, kept to show how it fails for large logits.
"""
from __future__ import annotations

import numpy as np


def softmax_naive(z: np.ndarray) -> np.ndarray:
    """exp(z_i) / sum_k exp(z_k) as written: overflows once some z_i exceeds log(float max) ~ 709.8."""
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis: the naive formula applied to z - max(z)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax(z) = z - logsumexp(z), computed without forming exp(z)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def jacobian(z: np.ndarray) -> np.ndarray:
    """The K x K Jacobian ds_i/dz_j = s_i (delta_ij - s_j), i.e. diag(s) - s s^T, of a logit vector z."""
    s = softmax(z)
    return np.diag(s) - np.outer(s, s)


def cross_entropy(z: np.ndarray, y: np.ndarray) -> float:
    """-sum_i y_i log softmax(z)_i for a target distribution y (one-hot or soft)."""
    return float(-(y * log_softmax(z)).sum())


def cross_entropy_gradient(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of cross_entropy(z, y) with respect to z: s - y, which needs sum(y) = 1.

    (For a general y the gradient is s * sum(y) - y; the simplification is where sum(y) = 1 enters.)
    """
    if not np.isclose(y.sum(), 1.0):
        raise ValueError(f"target y must sum to 1 (a probability distribution); it sums to {y.sum():.6g}")
    return softmax(z) - y
