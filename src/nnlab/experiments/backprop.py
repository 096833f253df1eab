"""Backpropagation checks: seed 001's eqs. 1-2 (``nnlab.basic_net``) against autograd; matrix-form gradients of the quadratic cost and the input gradient of
seed 004 against torch autograd and central differences (sigmoid, tanh, ReLU; several depths; an
activation or a linear output layer), and the cost of reverse mode against finite differences.

The timings are wall-clock on whatever machine ran the experiment, with numpy limited to one BLAS
thread: the best of a few repeats.
"""
from __future__ import annotations

import timeit
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from nnlab import backprop as bp
from nnlab import basic_net
from nnlab.config import param
from nnlab.progress import bar
from nnlab.train import num_threads

CHAPTER = "chapters/backpropagation.qmd"
OUTPUTS = ("activation", "linear")  # output layer sigma(z[L]) as in Higham & Higham, or z[L]


@dataclass(frozen=True)
class Config:
    seed: int = param(0, ge=0)
    activations: tuple[str, ...] = param(("sigmoid", "tanh", "relu"),
                                         choices=("sigmoid", "tanh", "relu"), each=True)
    depths: tuple[int, ...] = param((2, 3, 5, 8), ge=2, each=True)   # L, the input layer counted
    n_input: int = param(10, ge=1)
    width: int = param(16, ge=1)
    batch: int = param(8, ge=1)                                      # samples in the cost
    trials: int = param(5, ge=1)                                     # random (network, x) per case
    fd_step: float = param(1e-6, gt=0)
    timing_dims: tuple[int, ...] = param((10, 30, 100, 300, 1000, 3000, 10000), ge=1, each=True)
    timing_width: int = param(64, ge=1)
    timing_depth: int = param(4, ge=2)
    timing_repeats: int = param(3, ge=1)
    timing_budget: float = param(0.05, gt=0)                         # seconds per timed repeat
    two_layer_h: tuple[int, ...] = param((2, 3, 8, 32), ge=2, each=True)  # seed 001's h, bias unit counted
    two_layer_n: int = param(1000, ge=1)                             # samples averaged over


PROFILES = {
    "full": Config(),
    "smoke": Config(depths=(2, 3), trials=2, timing_dims=(10, 30, 100), timing_repeats=2,
                    timing_budget=0.005, two_layer_h=(2, 8), two_layer_n=50),
}


def activations_for(name: str, depth: int, output: str):
    """The per-layer activation names of a network with L = depth layers."""
    return name if output == "activation" else [name] * (depth - 2) + ["identity"]


def check_network(params, x, X, Y, act, fd_step: float) -> dict:
    """Max abs errors of input_gradient and cost_gradients against autograd and finite differences."""
    g = bp.input_gradient(params, x, act)
    g_fd = bp.central_difference(lambda v: bp.output(params, v[None, :], act)[0, 0], x, fd_step)
    grads = bp.cost_gradients(params, X, Y, act)
    ref = bp.autograd_cost_gradients(params, X, Y, act)
    return {"max_abs_grad": float(np.abs(g).max()),
            "err_input_autograd": float(np.abs(g - bp.autograd_input_gradient(params, x, act)).max()),
            "err_input_fd": float(np.abs(g - g_fd).max()),
            "max_abs_param_grad": max(float(np.abs(d).max()) for pair in grads for d in pair),
            "err_params_autograd": max(float(np.abs(d - r).max())
                                       for pair, rpair in zip(grads, ref) for d, r in zip(pair, rpair))}


def gradient_checks(config: Config) -> pd.DataFrame:
    """One row per (activation, depth, output kind, trial)."""
    rng = np.random.default_rng(config.seed)
    rows = []
    cases = [(a, d, o) for a in config.activations for d in config.depths for o in OUTPUTS]
    for name, depth, out in bar(cases, desc="gradient checks"):
        sizes = (config.n_input,) + (config.width,) * (depth - 2) + (1,)
        act = activations_for(name, depth, out)
        for trial in range(config.trials):
            params = bp.random_network(sizes, rng)
            x = rng.normal(size=config.n_input)
            X, Y = rng.normal(size=(config.batch, config.n_input)), rng.normal(size=(config.batch, 1))
            rows.append({"activation": name, "L": depth, "output": out, "trial": trial,
                         **check_network(params, x, X, Y, act, config.fd_step)})
    return pd.DataFrame(rows)


def autograd_two_layer(U, V, x, y):
    """Reference gradients for seed 001's network, by torch autograd of the mean of 1/2 (o - y)^2."""
    Ut, Vt = torch.tensor(U, requires_grad=True), torch.tensor(V, requires_grad=True)
    X = torch.stack([torch.from_numpy(x), torch.ones(len(x), dtype=torch.float64)], dim=1)
    H = torch.cat([torch.sigmoid(X @ Ut.T), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    (0.5 * ((H @ Vt[0] - torch.from_numpy(y)) ** 2).mean()).backward()
    return Ut.grad.numpy(), Vt.grad.numpy()


def as_layers(U, V) -> bp.Params:
    """Seed 001's (U, V) as the general network's [(W[2], b[2]), (W[3], b[3])]: bias columns split off."""
    return [(U[:, :1], U[:, 1]), (V[:, :-1], V[:, -1])]


def two_layer_checks(config: Config) -> pd.DataFrame:
    """basic_net.gradients (eqs. 1-2, averaged) against autograd and against the general backward pass."""
    rng = np.random.default_rng(config.seed + 2)
    rows = []
    for h in config.two_layer_h:
        U, V = rng.normal(size=(h - 1, 2)), rng.normal(size=(1, h))
        x = rng.uniform(-5, 5, config.two_layer_n)
        y = basic_net.f2(x)
        dU, dV = basic_net.gradients(U, V, x, y)
        rU, rV = autograd_two_layer(U, V, x, y)
        (dW2, db2), (dW3, db3) = bp.cost_gradients(as_layers(U, V), x[:, None], y[:, None],
                                                   ("sigmoid", "identity"))
        scale = max(np.abs(rU).max(), np.abs(rV).max())
        err_autograd = max(np.abs(dU - rU).max(), np.abs(dV - rV).max())
        rows.append({"h": h, "N": config.two_layer_n, "max_abs_grad": scale, "err_autograd": err_autograd,
                     "rel_err_autograd": err_autograd / scale,
                     "err_general": max(np.abs(dU - np.column_stack([dW2, db2])).max(),
                                        np.abs(dV - np.append(dW3, db3)[None, :]).max())})
    return pd.DataFrame(rows)


def best_time(fn, repeats: int, budget: float) -> float:
    """Seconds per call of fn: the best of ``repeats`` timings, each of enough calls to last ~budget."""
    timer = timeit.Timer(fn)
    once = timer.timeit(1)
    number = max(1, int(budget / max(once, 1e-9)))
    return min(timer.repeat(repeats, number)) / number


def timing(config: Config) -> pd.DataFrame:
    """Forward pass, reverse-mode input gradient and n+1-pass forward differences, for growing n."""
    rng = np.random.default_rng(config.seed + 1)
    rows = []
    for n in bar(config.timing_dims, desc="timing"):
        sizes = (n,) + (config.timing_width,) * (config.timing_depth - 2) + (1,)
        params, x = bp.random_network(sizes, rng), rng.normal(size=n)
        f = lambda v: bp.output(params, v[None, :], "tanh")[0, 0]  # noqa: E731
        g = bp.input_gradient(params, x, "tanh")
        rows.append({"n": n,
                     "t_forward": best_time(lambda: f(x), config.timing_repeats, config.timing_budget),
                     "t_reverse": best_time(lambda: bp.input_gradient(params, x, "tanh"),
                                            config.timing_repeats, config.timing_budget),
                     "t_fd": best_time(lambda: bp.forward_difference_gradient(f, x),
                                       config.timing_repeats, config.timing_budget),
                     "rel_err_fd": float(np.abs(bp.forward_difference_gradient(f, x) - g).max()
                                         / np.abs(g).max())})
    table = pd.DataFrame(rows)
    table["fd_over_reverse"] = table["t_fd"] / table["t_reverse"]
    table["reverse_over_forward"] = table["t_reverse"] / table["t_forward"]
    table["fd_over_forward"] = table["t_fd"] / table["t_forward"]  # about n + 1 if the claim holds
    return table


def run(config: Config) -> dict:
    with num_threads(1), threadpool_limits(limits=1):  # one thread: timings comparable on a shared machine
        return _run(config)


def _run(config: Config) -> dict:
    checks = gradient_checks(config)
    summary = (checks.groupby(["activation", "L", "output"], as_index=False, sort=False)
               .agg(max_abs_grad=("max_abs_grad", "max"), err_input_autograd=("err_input_autograd", "max"),
                    err_input_fd=("err_input_fd", "max"), max_abs_param_grad=("max_abs_param_grad", "max"),
                    err_params_autograd=("err_params_autograd", "max"),
                    zero_gradients=("max_abs_grad", lambda g: int((g == 0).sum()))))
    return {"summary": summary, "checks": checks, "two_layer": two_layer_checks(config),
            "timing": timing(config)}
