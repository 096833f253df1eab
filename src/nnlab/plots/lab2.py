"""Figures of the Lab 2 chapter, drawn from the cached ``lab2`` result."""
from __future__ import annotations

import numpy as np

EFFECTS = (("activation", "activation"), ("lr", "initial learning rate"), ("epochs", "epochs"),
           ("schedule", "schedule"), ("l1", "L1 λ"), ("shape", "(Nh1, Nh2)"))


def plot_data(ax, res):
    """The stand-in data set (the seed's Figure 1): target, training and test points."""
    ax.plot(res["x_dense"], res["f_dense"], "k", lw=1, label="target f")
    ax.plot(res["x_train"], res["y_train"], ".", color="tab:red", ms=4, label="training set")
    ax.plot(res["x_test"], res["y_test"], "o", mfc="none", color="tab:blue", ms=4, label="test set")
    ax.set(xlabel="x", ylabel="y")
    ax.legend(fontsize=7)


def _labels(grid):
    schedule = np.where(grid["decay"], "decay", "constant")
    shape = "(" + grid["nh1"].astype(str) + ", " + grid["nh2"].astype(str) + ")"
    return grid.assign(schedule=schedule, shape=shape)


def plot_effects(axs, res):
    """Mean validation MSE of every configuration, grouped by the value of one hyper-parameter."""
    grid = _labels(res["grid"])
    rng = np.random.default_rng(0)
    for ax, (column, title) in zip(axs, EFFECTS):
        values = sorted(grid[column].unique(), key=lambda v: (isinstance(v, str), v))
        for i, v in enumerate(values):
            y = grid.loc[grid[column] == v, "val_mean"]
            ax.plot(i + rng.uniform(-0.25, 0.25, len(y)), y, ".", ms=2, alpha=0.5)
            ax.plot([i - 0.35, i + 0.35], [y.min()] * 2, "k", lw=1.5)
        ax.axhline(res["noise_train_mse"], color="grey", ls=":", lw=1)
        ax.set_xticks(range(len(values)), [f"{v:g}" if not isinstance(v, str) else v for v in values],
                      fontsize=7, rotation=35, ha="right")
        ax.set(yscale="log", title=title)
    axs[0].set_ylabel("mean validation MSE")


def plot_ranking(axs, res, n=60):
    """The first n ranks: mean validation MSE with one standard error over the folds (left), and
    the paired difference to rank 1, fold by fold, with its standard error (right)."""
    grid = res["grid"].head(n)
    folds = sum(c.startswith("val_") and c[4:].isdigit() for c in grid.columns)
    axs[0].errorbar(grid["rank"], grid["val_mean"], yerr=grid["val_sd"] / np.sqrt(folds), fmt=".",
                    ms=3, lw=0.8)
    axs[0].axhline(res["noise_train_mse"], color="grey", ls=":", lw=1, label="the target f itself")
    axs[0].set(ylabel="mean validation MSE ± 1 s.e.")
    axs[1].errorbar(grid["rank"][1:], grid["gap_mean"][1:], yerr=grid["gap_se"][1:], fmt=".", ms=3,
                    lw=0.8)
    axs[1].axhline(0, color="k", lw=0.8)
    axs[1].set(ylabel="minus rank 1, paired ± 1 s.e.")
    for ax in axs:
        ax.axvline(len(res["summary"]) + 0.5, color="tab:red", lw=0.8, label="retrained")
        ax.set(xlabel="rank")
    axs[0].legend(fontsize=7)


def plot_test_vs_truth(ax, res):
    """For the retrained top configurations: test MSE against the error to the noiseless target."""
    s = res["summary"]
    best = res["best_by_test"]
    ax.plot(s["test_loss"], s["f_error"], "o", ms=4, mfc="none")
    for i, offset in ((0, (-12, 10)), (best, (8, -14))):
        ax.annotate(f"rank {s['rank'][i]}", (s["test_loss"][i], s["f_error"][i]), fontsize=7,
                    xytext=offset, textcoords="offset points", arrowprops={"arrowstyle": "-", "lw": 0.5})
    ax.set(xlabel=f"test MSE ({len(res['x_test'])} noisy points)",
           ylabel="MSE to the target f on a dense grid")


def plot_curves(ax, res, i):
    """Training and test MSE per epoch of retrained top configuration i (the seed's Figure 2)."""
    epochs = int(res["summary"]["epochs"][i])
    ax.semilogy(res["top_train_curve"][: epochs + 1, i], lw=1, label="training MSE")
    ax.semilogy(res["top_test_curve"][: epochs + 1, i], lw=1, label="test MSE")
    ax.axhline(res["noise_train_mse"], color="tab:blue", ls=":", lw=0.8, label="f on the training set")
    ax.axhline(res["noise_test_mse"], color="tab:orange", ls=":", lw=0.8, label="f on the test set")
    ax.set(xlabel="epoch", ylabel="MSE")
    ax.legend(fontsize=7)


def plot_fit(ax, res, i):
    """The function learnt by retrained top configuration i (the seed's Figure 3), the others faint."""
    x = res["x_dense"]
    for j in range(res["top_fitted"].shape[0]):
        ax.plot(x, res["top_fitted"][j], color="tab:green", lw=0.5, alpha=0.3)
    ax.plot(x, res["f_dense"], "k", lw=1, label="target f")
    ax.plot(x, res["top_fitted"][i], color="tab:green", lw=1.5, label="selected network")
    ax.plot(res["x_train"], res["y_train"], ".", color="tab:red", ms=3, label="training set")
    ax.plot(res["x_test"], res["y_test"], "o", mfc="none", color="tab:blue", ms=4, label="test set")
    ax.set(xlabel="x", ylabel="y")
    ax.legend(fontsize=7)


def plot_schedule(ax, res):
    """Rank 1 retrained with its own schedule and with the other one (constant <-> decaying)."""
    epochs = int(res["summary"]["epochs"][0])
    own = "decaying" if res["summary"]["decay"][0] else "constant"
    other = "decaying" if res["twin"]["decay"] else "constant"
    for curve, style in (("train", "-"), ("test", ":")):
        ax.semilogy(res[f"top_{curve}_curve"][: epochs + 1, 0], style, color="tab:green", lw=0.9,
                    label=f"{own} rate, {curve}")
        ax.semilogy(res[f"twin_{curve}_curve"][: epochs + 1], style, color="tab:purple", lw=0.9,
                    label=f"{other} rate, {curve}")
    ax.set(xlabel="epoch", ylabel="MSE")
    ax.legend(fontsize=7)
