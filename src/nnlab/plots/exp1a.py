"""Figures of the Experiment 1A chapter, drawn from the cached ``exp1a`` result."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from nnlab import basic_net as bn
from nnlab.experiments.exp1a import VARIANTS, parse


def trajectory(res, run: str) -> SimpleNamespace:
    """The recorded curves of one run (label as the seed writes it), cut to its epochs."""
    spec = parse(run)
    key = res["trainings"][run]
    row = res["summary"].set_index("run")
    epochs = int(row.loc[run, "epochs"]) if run in row.index else len(res[f"{key}__test_error"]) - 1
    stored = res[f"{key}__params_epochs"]
    keep = stored <= epochs
    return SimpleNamespace(
        run=run, f=spec.f, h=spec.h, lr=spec.lr, epochs=epochs, key=key,
        test=res[f"{key}__test_error"][: epochs + 1], train=res[f"{key}__train_error"][: epochs + 1],
        params=res[f"{key}__params"][keep].astype(float), params_epochs=stored[keep],
        gradient_norm=res[f"{key}__gradient_norm"][:epochs], gradient_angle=res[f"{key}__gradient_angle"][: epochs - 1])


def plot_targets(axs):
    """f1 and f2 with the standard training and test inputs."""
    x_train, x_test = bn.data()
    grid = np.linspace(-5, 5, 400)
    for ax, (name, f) in zip(axs, bn.TARGETS.items()):
        ax.plot(grid, f(grid), "k", lw=1, label=name)
        ax.plot(x_train, f(x_train), ".", ms=2, color="tab:red", label="training set")
        ax.plot(x_test, f(x_test), "o", ms=3, mfc="none", color="tab:blue", label="test set")
        ax.set(xlabel="x", title=name)
        ax.legend(fontsize=7)


def plot_error(ax, res, run: str, train: bool = False, title: str | None = None):
    """Semi-log error curve with the last and the lowest test errors marked."""
    t = trajectory(res, run)
    ax.semilogy(t.test, lw=1, label="test error")
    if train:
        ax.semilogy(t.train, lw=1, label="training error")
    finite = np.isfinite(t.test)
    last = np.flatnonzero(finite)[-1]
    best = int(np.nanargmin(t.test))
    ax.plot(last, t.test[last], "o", color="tab:red", label=f"last: {t.test[last]:.4g}")
    ax.plot(best, t.test[best], "x", color="m", ms=8, label=f"lowest: {t.test[best]:.4g} (epoch {best})")
    ax.set(xlabel="epoch", ylabel="error", title=title or run)
    ax.legend(fontsize=7)


def plot_learned(ax, res, run: str, epoch: int | str = "last", title: str | None = None):
    """The function the network computes at ``epoch`` ("last", "best" or a number) against the target."""
    t = trajectory(res, run)
    epoch = {"last": t.params_epochs[-1], "best": int(np.nanargmin(t.test))}.get(epoch, epoch)
    i = int(np.searchsorted(t.params_epochs, epoch))
    U, V = bn.unflatten(t.params[i], t.h)
    grid = np.linspace(-5, 5, 400)
    ax.plot(grid, bn.TARGETS[t.f](grid), "k", lw=1, label="target")
    ax.plot(grid, bn.forward(U, V, grid)[1], color="tab:orange", label=f"network, epoch {t.params_epochs[i]}")
    ax.set(xlabel="x", title=title or run)
    ax.legend(fontsize=7)


def plot_weights(ax, res, run: str, part: str = "U", units=None, column: int | None = None,
                 until: int | None = None, title: str | None = None):
    """Evolution of U_{i,j} (``part="U"``, optionally one ``column`` j) or V_i, for hidden ``units`` i."""
    t = trajectory(res, run)
    U, V = bn.unflatten(t.params, t.h)
    stop = np.searchsorted(t.params_epochs, until, side="right") if until is not None else None
    ep = t.params_epochs[:stop]
    units = range(t.h - 1 if part == "U" else t.h) if units is None else units
    for i in units:
        if part == "V":
            ax.plot(ep, V[:stop, 0, i], lw=1, label=f"$V_{{{i}}}$")
        else:
            for j in (0, 1) if column is None else (column,):
                ax.plot(ep, U[:stop, i, j], lw=1, ls="-" if j == 0 else "--", label=f"$U_{{{i},{j}}}$")
    ax.set(xlabel="epoch", ylabel="weight value", title=title or f"{part} for {run}")
    ax.legend(fontsize=6, ncol=2)


def plot_gradient(ax_norm, ax_angle, res, run: str, window=None):
    """Norm of the gradient and angle between consecutive gradients (degrees) over ``window`` epochs."""
    t = trajectory(res, run)
    lo, hi = window or (0, t.epochs)
    ep = np.arange(lo, min(hi, t.epochs))
    ax_norm.semilogy(ep, t.gradient_norm[ep], lw=1)
    ax_norm.set(xlabel="epoch", ylabel="‖gradient‖", title=run)
    ep = ep[ep < t.epochs - 1]
    ax_angle.plot(ep + 1, t.gradient_angle[ep], ".", ms=2)
    ax_angle.set(xlabel="epoch", ylabel="angle (degrees)", ylim=(-5, 185), yticks=[0, 45, 90, 135, 180])


def plot_sharpness(ax, res, run: str):
    """Sharpness along a run against the stability limit 2/lr, episodes' crossing and onset marked."""
    t = trajectory(res, run)
    ax.plot(res[f"{t.key}__sharpness_epochs"], res[f"{t.key}__sharpness"], lw=1, label="sharpness λ")
    ax.axhline(2 / t.lr, color="k", ls="--", lw=1, label="2 / lr")
    episodes = res["episodes"]
    for _, e in episodes[episodes["run"] == run].iterrows():
        ax.axvline(e["crossing"], color="tab:green", lw=0.8)
        if e["onset"] >= 0:
            ax.axvline(e["onset"], color="tab:red", lw=0.8, ls=":")
    ax.plot([], [], color="tab:green", lw=0.8, label="λ reaches 2/lr")
    ax.plot([], [], color="tab:red", lw=0.8, ls=":", label="loss first rises")
    ax.set(xlabel="epoch", ylabel="sharpness", title=f"{run}, lr = {t.lr:g}")
    ax.legend(fontsize=6)


def plot_separation(ax, res, run: str):
    """Distance of the numerical variants from the notebook trajectory, with the growth that the
    sharpness predicts for a perturbation of one rounding error (float64 and float32)."""
    t = trajectory(res, run)
    for name in VARIANTS:
        ax.semilogy(res[f"{t.key}__{name}__separation"], lw=1, label=name)
    amp = res.get(f"{t.key}__amplification")
    if amp is not None:
        for eps, name in ((np.finfo(np.float64).eps, "float64"), (np.finfo(np.float32).eps, "float32")):
            ax.semilogy(eps * 10 ** amp[: t.epochs + 1], "k", ls="--" if name == "float64" else ":", lw=1,
                        label=f"ε({name}) · ∏|1 − lr λ|")
    ax.set(xlabel="epoch", ylabel="‖θ_variant − θ‖ / ‖θ‖", ylim=(1e-18, 10), title=run)
    ax.legend(fontsize=6)


def plot_grid(ax, res, key: str = "grid_final_test_error"):
    """Final test error for every (data seed, weight seed) pair; row and column 0 are the standard ones."""
    grid = res[key]
    n = grid.shape[0]
    image = ax.imshow(np.log10(grid), cmap="viridis")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", fontsize=7, color="w")
    labels = ["standard"] + [str(i) for i in range(1, n)]
    ax.set(xticks=range(n), yticks=range(n), xticklabels=labels, yticklabels=labels,
           xlabel="initial weights", ylabel="dataset")
    return image
