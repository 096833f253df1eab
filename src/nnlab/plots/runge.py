"""Figures of the Runge chapter, drawn from the cached ``runge`` result."""
from __future__ import annotations

import numpy as np

from nnlab.experiments.runge import runge

NETWORKS = {"network": ("the seed's recipe", "tab:blue"),
            "network_decay": ("+ learning-rate decay", "tab:green")}
POLYS = {"poly_equispaced": ("interpolant, training nodes (numpy)", "tab:red"),
         "poly_equispaced_exact": ("same, exact arithmetic", "tab:pink"),
         "poly_lsq": ("least squares, degree by validation", "tab:olive"),
         "poly_chebyshev": ("interpolant, Chebyshev points", "tab:purple")}
RHO = (1 + 26 ** 0.5) / 5    # Bernstein ellipse through the poles +-i/5 of f


def plot_fit(axs, res, seed_index: int = 0):
    """f, one network of each recipe and the training points; below, their errors."""
    x = res["x_plot"]
    axs[0].plot(x, runge(x), "k", lw=2, alpha=0.4, label="f")
    axs[0].plot(res["x_train"], runge(res["x_train"]), ".", color="gray", ms=4, label="training points")
    for key, (label, color) in NETWORKS.items():
        axs[0].plot(x, res[f"{key}_plot"][seed_index], color=color, lw=1, label=label)
        axs[1].plot(x, res[f"{key}_plot"][seed_index] - runge(x), color=color, lw=1, label=label)
    axs[1].plot(res["x_test"], 0 * res["x_test"], "kx", ms=4, label="test points")
    axs[0].set(ylabel="y")
    axs[0].legend(fontsize=7)
    axs[1].set(xlabel="x", ylabel="network - f")
    axs[1].legend(fontsize=7)


def plot_losses(ax, res):
    """Training (mean of batch losses) and validation MSE per epoch, every seed, both phases."""
    first = res["network_train_loss"].shape[1]
    for key, start in (("network", 0), ("network_decay", first)):
        color = NETWORKS[key][1]
        train, val = res[f"{key}_train_loss"], res[f"{key}_val_loss"]
        epochs = start + np.arange(1, train.shape[1] + 1)
        ax.semilogy(epochs, train.T, color=color, lw=0.5, alpha=0.35)
        ax.semilogy(epochs, val.T, color="tab:orange" if key == "network" else "tab:brown", lw=0.5, alpha=0.35)
        ax.semilogy(epochs, np.median(train, 0), color=color, lw=1.5, label=f"training, {NETWORKS[key][0]}")
        ax.semilogy(epochs, np.median(val, 0), color="tab:orange" if key == "network" else "tab:brown",
                    lw=1.5, label=f"validation, {NETWORKS[key][0]}")
    ax.axvline(first, color="k", lw=0.5, ls=":")
    ax.set(xlabel="epoch", ylabel="MSE")
    ax.legend(fontsize=7)


def plot_errors(ax, res):
    """|p - f| on the dense grid for the polynomials and the median network."""
    x = res["x_plot"]
    for key, (label, color) in {**POLYS, **NETWORKS}.items():
        pred = res[f"{key}_plot"]
        err = np.abs((np.median(pred, 0) if pred.ndim == 2 else pred) - runge(x))
        ax.semilogy(x, np.maximum(err, 1e-17), color=color, lw=0.8,
                    label=label + (" (median of seeds)" if pred.ndim == 2 else ""))
    ax.set(xlabel="x", ylabel="|error|", ylim=(1e-9, None))
    ax.legend(fontsize=6, ncol=2)


def plot_degree_sweep(ax, res, network_max_err: float):
    """Max error on the grid against the polynomial degree, with the network's level."""
    s = res["degree_sweep"]
    ax.semilogy(s["degree"], s["equispaced_exact"], "o-", color="tab:pink", ms=3,
                label="interpolant, equispaced points (exact)")
    ax.semilogy(s["degree"], s["lsq_train_nodes"], "s-", color="tab:olive", ms=3,
                label="least squares on the 70 training nodes")
    ax.semilogy(s["degree"], s["chebyshev"], "^-", color="tab:purple", ms=3, label="interpolant, Chebyshev points")
    n = np.asarray(s["degree"], dtype=float)
    ax.semilogy(n, RHO ** -n, "k--", lw=0.8, label=r"$\rho^{-n}$, $\rho = (1+\sqrt{26})/5$")
    ax.axhline(network_max_err, color="tab:blue", lw=1, label="network (mean over seeds)")
    ax.set(xlabel="degree n", ylabel="max |p - f| on the grid")
    ax.legend(fontsize=7)
