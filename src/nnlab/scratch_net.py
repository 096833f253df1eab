"""A two-hidden-layer regression network written from scratch in numpy, batched along a model axis.

Every array carries a leading model axis of length M: M networks of one shape (Nh1, Nh2) train at
once, each with its own data (its cross-validation fold), learning rate and schedule, L1 strength
and number of epochs. Model m of a batch follows exactly the arithmetic it would follow alone.

Training is full-batch gradient descent on the mean squared error (MSE). The L1 penalty
lambda * sum|w| acts on the weight matrices only, not on the biases; the gradient, penalty included,
is clipped to a global norm per model before the update.

The curvature of the MSE (Hessian-vector products and the largest Hessian eigenvalue, the
*sharpness* that decides whether full-batch gradient descent is stable) is computed by torch's double
backward through the same formulas, :func:`torch_mse`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch

from nnlab.train import num_threads

LEAKY_SLOPE = 0.01
WEIGHTS = ("W1", "W2", "W3")
PARAMS = ("W1", "b1", "W2", "b2", "W3", "b3")


class Activation(NamedTuple):
    """An activation f and its derivative df(z, a) = f'(z), given z and a = f(z) (whichever is cheaper)."""
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray, np.ndarray], np.ndarray]


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))       # = 1 / (1 + exp(-z)), without overflow


def relu(z):
    return np.maximum(z, 0.0)


def leaky_relu(z):
    return np.maximum(z, LEAKY_SLOPE * z)       # = z if z > 0 else slope * z, as 0 < slope < 1


def leaky_relu_der(z, a):
    der = (z > 0).astype(z.dtype)
    der *= 1.0 - LEAKY_SLOPE
    der += LEAKY_SLOPE
    return der


ACTIVATIONS = {
    "sigmoid": Activation(sigmoid, lambda z, a: a * (1.0 - a)),
    "relu": Activation(relu, lambda z, a: (z > 0).astype(z.dtype)),
    "leaky_relu": Activation(leaky_relu, leaky_relu_der),
}


def activation(name: str) -> Activation:
    """The activation registered under ``name``; ValueError lists the known names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known activations: "
                         f"{', '.join(ACTIVATIONS)}") from None


def init_params(rng: np.random.Generator, m: int, nh1: int, nh2: int) -> dict[str, np.ndarray]:
    """M independent networks 1 -> nh1 -> nh2 -> 1, weights and biases ~ U(-1/sqrt(fan_in), +)
    (the default of torch.nn.Linear)."""
    params = {}
    for i, (fan_in, fan_out) in enumerate(((1, nh1), (nh1, nh2), (nh2, 1)), start=1):
        bound = 1.0 / np.sqrt(fan_in)
        params[f"W{i}"] = rng.uniform(-bound, bound, (m, fan_in, fan_out))
        params[f"b{i}"] = rng.uniform(-bound, bound, (m, 1, fan_out))
    return params


def forward(params, x, act: Activation):
    """Outputs (M, N, 1) for inputs x (M, N, 1), and what backward needs."""
    x1 = np.concatenate((x, np.ones_like(x)), axis=2)      # [x, 1]: weight and bias in one product
    z1 = x1 @ np.concatenate((params["W1"], params["b1"]), axis=1)
    h1 = act.f(z1)
    z2 = h1 @ params["W2"]
    z2 += params["b2"]
    h2 = act.f(z2)
    y = h2 @ params["W3"]
    y += params["b3"]
    return y, (x1, z1, h1, z2, h2)


def mse(y, t):
    """Mean squared error per model, shape (M,)."""
    return ((y - t) ** 2).mean(axis=(1, 2))


def l1_penalty(params, l1):
    """lambda * sum of |w| over the weight matrices, per model."""
    return np.asarray(l1) * sum(np.abs(params[k]).sum(axis=(1, 2)) for k in WEIGHTS)


def objective(params, x, t, act: Activation, l1=0.0):
    """The training objective per model: MSE + L1 penalty."""
    return mse(forward(params, x, act)[0], t) + l1_penalty(params, l1)


def backward(params, y, t, cache, act: Activation, l1=0.0):
    """Gradient of ``objective`` with respect to every parameter, per model."""
    x1, z1, h1, z2, h2 = cache
    l1 = np.broadcast_to(np.asarray(l1, dtype=y.dtype), (y.shape[0],))[:, None, None]
    ones = np.ones((1, 1, y.shape[1]), dtype=y.dtype)        # ones @ delta: sums over the points
    dy = 2.0 * (y - t) / y.shape[1]
    dz2 = (dy * params["W3"].transpose(0, 2, 1)) * act.df(z2, h2)    # = dy @ W3^T, one output
    dz1 = (dz2 @ params["W2"].transpose(0, 2, 1)) * act.df(z1, h1)
    first = x1.transpose(0, 2, 1) @ dz1                               # rows: W1, b1
    grads = {"W1": first[:, :1], "b1": first[:, 1:],
             "W2": h1.transpose(0, 2, 1) @ dz2, "b2": ones @ dz2,
             "W3": h2.transpose(0, 2, 1) @ dy, "b3": ones @ dy}
    for k in WEIGHTS:
        grads[k] = grads[k] + l1 * np.sign(params[k])
    return grads


def global_norm(grads):
    """The norm of all of a model's gradients taken together, shape (M,)."""
    return np.sqrt(sum((g ** 2).sum(axis=(1, 2)) for g in grads.values()))


def clip_by_global_norm(grads, clip_norm):
    """Rescale each model's gradients together so that their global norm is at most ``clip_norm``;
    also return which models were clipped."""
    norm = global_norm(grads)
    clipped = norm > clip_norm
    scale = np.ones_like(norm)
    scale[clipped] = clip_norm / norm[clipped]
    return {k: g * scale[:, None, None] for k, g in grads.items()}, clipped


def learning_rate(epoch, epochs, lr, lr_final, decay):
    """The learning rate of update ``epoch`` (0-based): constant, or linear from lr at the first
    update to lr_final at the last (update epochs - 1)."""
    frac = epoch / np.maximum(epochs - 1, 1)
    return np.where(decay, lr + (lr_final - lr) * frac, lr)


class Trained(NamedTuple):
    params: dict[str, np.ndarray]     # each model's parameters after its own number of epochs
    train_loss: np.ndarray            # (max epochs + 1, M): MSE after e updates; NaN after the end
    test_loss: np.ndarray             # same on the test (validation) data
    clipped: np.ndarray               # (M,): how many of a model's updates had a clipped gradient
    snapshots: dict | None = None     # snapshot_every > 0: parameters (K, M, ...) before updates 0, k, 2k, ...


def _per_model(value, m, dtype):
    return np.broadcast_to(np.asarray(value, dtype=dtype), (m,)).copy()


def _per_model_data(a, m, dtype):
    a = np.asarray(a, dtype=dtype)
    a = a.reshape(a.shape[:-1] + (-1, 1)) if a.ndim >= 2 else a.reshape(1, -1, 1)
    return np.broadcast_to(a, (m,) + a.shape[-2:]).copy()


def train(params, x_train, y_train, x_test, y_test, *, activation_name, epochs, lr,
          decay=False, lr_final=0.0, l1=0.0, clip_norm=np.inf, dtype=np.float64,
          test_every=1, snapshot_every=0) -> Trained:
    """Full-batch gradient descent for the M networks in ``params``.

    Data are (N,) shared by all models or (M, N) one set per model (e.g. per fold). epochs, lr,
    decay, lr_final and l1 are scalars or one value per model. All models run to the largest
    epoch count; a model leaves the batch when its own count is reached, so its losses and final
    parameters are those of training it alone. Arithmetic is in ``dtype``; losses are float64.
    The test loss is computed every ``test_every`` epochs and at each model's last epoch.
    ``snapshot_every=k > 0`` keeps the parameters after 0, k, 2k, ... updates (all models must then
    share one number of epochs).
    """
    if test_every < 1:
        raise ValueError(f"test_every = {test_every}: must be >= 1")
    act = activation(activation_name)
    m = next(iter(params.values())).shape[0]
    p = {k: np.array(v, dtype=dtype) for k, v in params.items()}
    hyper = {"epochs": _per_model(epochs, m, int), "lr": _per_model(lr, m, float),
             "decay": _per_model(decay, m, bool), "lr_final": _per_model(lr_final, m, float),
             "l1": _per_model(l1, m, dtype)}
    data = [_per_model_data(a, m, dtype) for a in (x_train, y_train, x_test, y_test)]
    final = {k: np.empty_like(v) for k, v in p.items()}
    n_epochs = int(hyper["epochs"].max())
    train_loss = np.full((n_epochs + 1, m), np.nan)
    test_loss = np.full((n_epochs + 1, m), np.nan)
    clipped = np.zeros(m, dtype=int)
    alive = np.arange(m)                     # which of the M models are still in the batch
    if snapshot_every and len(set(hyper["epochs"])) > 1:
        raise ValueError("snapshot_every needs one number of epochs for all models")
    snapshots = {k: [] for k in p} if snapshot_every else None
    for epoch in range(n_epochs + 1):
        if snapshot_every and epoch % snapshot_every == 0:
            for k in p:
                snapshots[k].append(p[k].copy())
        y, cache = forward(p, data[0], act)
        train_loss[epoch, alive] = mse(y, data[1])
        ended = hyper["epochs"] == epoch
        if epoch % test_every == 0 or ended.any():
            test_loss[epoch, alive] = mse(forward(p, data[2], act)[0], data[3])
        if ended.any():
            for k in p:
                final[k][alive[ended]] = p[k][ended]
            keep = ~ended
            if not keep.any():
                break
            alive = alive[keep]
            p = {k: v[keep] for k, v in p.items()}
            hyper = {k: v[keep] for k, v in hyper.items()}
            data = [a[keep] for a in data]
            y, cache = y[keep], tuple(c[keep] for c in cache)
        grads, was_clipped = clip_by_global_norm(backward(p, y, data[1], cache, act, hyper["l1"]),
                                                 clip_norm)
        clipped[alive] += was_clipped
        rate = learning_rate(epoch, hyper["epochs"], hyper["lr"], hyper["lr_final"],
                             hyper["decay"]).astype(dtype)[:, None, None]
        for k in p:
            p[k] -= rate * grads[k]
    if snapshots is not None:
        snapshots = {k: np.stack(v) for k, v in snapshots.items()}
    return Trained(final, train_loss, test_loss, clipped, snapshots)


# ----------------------------------------------------------------------------- curvature

TORCH_ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu,
                     "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, LEAKY_SLOPE)}


def torch_mse(params: dict, x: torch.Tensor, t: torch.Tensor, activation_name: str) -> torch.Tensor:
    """:func:`mse` of :func:`forward` written in torch (differentiable twice), per model (M,)."""
    activation(activation_name)                 # an unknown name gets the registry's error
    act = TORCH_ACTIVATIONS[activation_name]
    h1 = act(x @ params["W1"] + params["b1"])
    h2 = act(h1 @ params["W2"] + params["b2"])
    return ((h2 @ params["W3"] + params["b3"] - t) ** 2).mean(dim=(1, 2))


def hessian_vector_products(params: dict, x, t, activation_name: str):
    """A function v -> H v for the M models of ``params`` (H: Hessian of the MSE, penalty and clipping
    left out; the L1 term has zero curvature wherever it is differentiable). v and H v are (M, P),
    P in the order of PARAMS. Double precision; x, t are (N,) shared or (M, N)."""
    m = next(iter(params.values())).shape[0]
    leaves = {k: torch.tensor(np.asarray(params[k]), dtype=torch.float64, requires_grad=True) for k in PARAMS}
    xs, ts = (torch.tensor(_per_model_data(a, m, np.float64)) for a in (x, t))
    grads = torch.autograd.grad(torch_mse(leaves, xs, ts, activation_name).sum(), list(leaves.values()),
                                create_graph=True)
    flat_grad = torch.cat([g.reshape(m, -1) for g in grads], dim=1)

    def hvp(v: np.ndarray) -> np.ndarray:
        dot = (flat_grad * torch.as_tensor(v, dtype=torch.float64)).sum()
        parts = torch.autograd.grad(dot, list(leaves.values()), retain_graph=True)
        return torch.cat([p.reshape(m, -1) for p in parts], dim=1).numpy()

    return hvp


def power_iteration(matvec, shape: tuple[int, int], iters: int = 300, tol: float = 1e-7,
                    seed: int = 0) -> np.ndarray:
    """The eigenvalue of largest modulus of each of M symmetric operators, ``matvec: (M, P) -> (M, P)``,
    by power iteration from a random start (Rayleigh quotient; stops when every model's estimate
    changes by less than ``tol`` relative)."""
    v = np.random.default_rng(seed).standard_normal(shape)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    estimate = np.full(shape[0], np.inf)
    for _ in range(iters):
        w = matvec(v)
        new = (v * w).sum(1)
        norm = np.linalg.norm(w, axis=1, keepdims=True)
        v = w / np.where(norm > 0, norm, 1.0)
        done = np.all(np.abs(new - estimate) <= tol * np.abs(new))
        estimate = new
        if done:
            break
    return estimate


def largest_eigenvalue(matvec, shape: tuple[int, int], **kw) -> np.ndarray:
    """The largest (not largest-modulus) eigenvalue of each of M symmetric operators.

    Power iteration finds the eigenvalue of largest modulus; where that is negative, a second power
    iteration on A - lambda I, whose eigenvalues are >= 0 with the top one shifted, is run.
    """
    top = power_iteration(matvec, shape, **kw)
    shift = np.minimum(top, 0.0)[:, None]
    if np.any(shift < 0):
        top = power_iteration(lambda v: matvec(v) - shift * v, shape, **kw) + shift[:, 0]
    return top


def sharpness(params: dict, x, t, activation_name: str, **kw) -> np.ndarray:
    """The largest eigenvalue of the Hessian of the MSE for each of the M models of ``params``
    (``kw``: iters and tol of :func:`power_iteration`)."""
    m = next(iter(params.values())).shape[0]
    shape = (m, sum(int(np.prod(params[k].shape[1:])) for k in PARAMS))
    with num_threads(1):            # small matrices: more threads only contend
        return largest_eigenvalue(hessian_vector_products(params, x, t, activation_name), shape, **kw)
