"""Softmax Jacobian checks: the analytic J = diag(s) - s s^T against torch autograd and central
differences, its properties (symmetry, zero row sums, rank K-1, positive semi-definiteness), the
cross-entropy gradient s - y, and the naive softmax overflowing where the stable one does not.

Logits are z = offset + spread * N(0, I_K); an offset of 1000 is far beyond exp's range (~709.8).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from nnlab import softmax as sm
from nnlab.backprop import central_difference
from nnlab.config import param
from nnlab.train import num_threads

CHAPTER = "chapters/softmax-jacobian.qmd"


@dataclass(frozen=True)
class Config:
    seed: int = param(0, ge=0)
    sizes: tuple[int, ...] = param((3, 10, 100), ge=2, each=True)        # K, number of classes
    spreads: tuple[float, ...] = param((1.0, 10.0), gt=0, each=True)    # std of the logits
    offsets: tuple[float, ...] = param((0.0, 1000.0), ge=0, each=True)  # constant added to all logits
    trials: int = param(5, ge=1)                                        # random z per case
    fd_step: float = param(1e-6, gt=0)
    example: tuple[float, ...] = param((2.0, 1.0, 0.1, -1.0, 0.5))      # z drawn as a heat map
    shifts: int = param(401, ge=11)                                     # grid of c in softmax(z + c)
    max_shift: float = param(1000.0, gt=0)


PROFILES = {"full": Config(), "smoke": Config(sizes=(3, 10), trials=2, shifts=41)}


def autograd_jacobian(z: np.ndarray) -> np.ndarray:
    """The Jacobian of torch.softmax at z by reverse-mode autodiff, in float64."""
    return torch.autograd.functional.jacobian(lambda v: torch.softmax(v, dim=-1),
                                              torch.from_numpy(z)).numpy()


def autograd_cross_entropy_gradient(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/dz of -sum y log softmax(z) by torch autograd."""
    zt = torch.tensor(z, requires_grad=True)
    (-(torch.from_numpy(y) * torch.log_softmax(zt, dim=-1)).sum()).backward()
    return zt.grad.numpy()


def jacobian_properties(J: np.ndarray) -> dict:
    """The numbers that certify symmetry, zero row sums, rank and semi-definiteness of J."""
    eig = np.linalg.eigvalsh(J)
    return {"asymmetry": float(np.abs(J - J.T).max()), "max_row_sum": float(np.abs(J.sum(axis=1)).max()),
            "rank": int(np.linalg.matrix_rank(J)), "min_eig": float(eig[0]), "max_eig": float(eig[-1])}


def check_case(z: np.ndarray, y: np.ndarray, fd_step: float) -> dict:
    """Compare the analytic Jacobian and cross-entropy gradient with autograd and finite differences."""
    J = sm.jacobian(z)
    J_fd = central_difference(sm.softmax, z, fd_step)
    ce = sm.cross_entropy_gradient(z, y)
    ce_fd = central_difference(lambda v: sm.cross_entropy(v, y), z, fd_step)
    with np.errstate(over="ignore", invalid="ignore"):
        naive_ok = bool(np.isfinite(sm.softmax_naive(z)).all())
    return {"max_abs_J": float(np.abs(J).max()),
            "err_autograd": float(np.abs(J - autograd_jacobian(z)).max()),
            "err_fd": float(np.abs(J - J_fd).max()),
            "err_ce_autograd": float(np.abs(ce - autograd_cross_entropy_gradient(z, y)).max()),
            "err_ce_fd": float(np.abs(ce - ce_fd).max()),
            "naive_finite": naive_ok, **jacobian_properties(J)}


def shift_sweep(z: np.ndarray, shifts: np.ndarray) -> pd.DataFrame:
    """softmax(z + c) should equal softmax(z) for every c: the error of each formula against it."""
    exact = sm.softmax(z)
    rows = []
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for c in shifts:
            naive = sm.softmax_naive(z + c)
            rows.append({"c": float(c),
                         "err_naive": float(np.abs(naive - exact).max()),  # nan once exp overflows
                         "err_stable": float(np.abs(sm.softmax(z + c) - exact).max())})
    return pd.DataFrame(rows)


def run(config: Config) -> dict:
    with num_threads(1):      # tiny tensors: more threads only add overhead
        return _run(config)


def _run(config: Config) -> dict:
    rng = np.random.default_rng(config.seed)
    rows = []
    for K in config.sizes:
        for spread in config.spreads:
            for offset in config.offsets:
                for trial in range(config.trials):
                    z = offset + spread * rng.normal(size=K)
                    y = np.eye(K)[rng.integers(K)]
                    rows.append({"K": K, "spread": spread, "offset": offset, "trial": trial,
                                 **check_case(z, y, config.fd_step)})
    trials = pd.DataFrame(rows)
    summary = (trials.groupby(["K", "spread", "offset"], as_index=False)
               .agg(max_abs_J=("max_abs_J", "max"), err_autograd=("err_autograd", "max"),
                    err_fd=("err_fd", "max"), err_ce_autograd=("err_ce_autograd", "max"),
                    err_ce_fd=("err_ce_fd", "max"), naive_finite=("naive_finite", "all"),
                    asymmetry=("asymmetry", "max"), max_row_sum=("max_row_sum", "max"),
                    min_rank=("rank", "min"), min_eig=("min_eig", "min")))
    summary["rel_err_autograd"] = summary["err_autograd"] / summary["max_abs_J"]
    example = np.array(config.example)
    s, total = sm.softmax(example), np.exp(example).sum()
    return {"summary": summary, "trials": trials,
            "example_s": s,
            # seed 002's middle step for i = j, (e^{z_i}/sum) (1 - e^{z_j})/sum, against the true s_i (1 - s_i)
            "seed_middle_step": s * (1.0 - np.exp(example)) / total, "diagonal": s * (1.0 - s),
            "shifts": shift_sweep(example, np.linspace(-config.max_shift, config.max_shift, config.shifts)),
            "example_z": example, "example_J": sm.jacobian(example),
            "overflow_threshold": float(np.log(np.finfo(float).max)),
            # below this, exp(x) rounds to 0: half the smallest subnormal number
            "underflow_threshold": float(np.log(np.finfo(float).smallest_subnormal) - np.log(2.0))}
