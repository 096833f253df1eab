"""Figures and table helpers of the Lab 2 chapter, drawn from the cached ``lab2`` result at the size
they are shown (``nnlab.plots.style``)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from nnlab.plots import style

EFFECTS = (("activation", "activation"), ("lr", "initial learning rate η"), ("epochs", "epochs"),
           ("schedule", "schedule"), ("l1", "L1 strength λ"), ("shape", "($N_{h1}$, $N_{h2}$)"))
TRACKED = {"rank1": "rank 1, decaying rate", "rank1_twin": "rank 1, constant rate",
           "seed_best": "the seed's configuration"}
ACTIVATION_NAMES = {"sigmoid": "sigmoid", "relu": "ReLU", "leaky_relu": "leaky ReLU"}
EDGE_BAND = 0.15      # "at the edge": sharpness within 15 % of 2/lr


# ------------------------------------------------------------------------------ rows and text

def top(res) -> pd.DataFrame:
    """The retrained top configurations (the summary without the seed's reference row)."""
    s = res["summary"]
    return s[s["entry"] == "top"].reset_index(drop=True)


def seed_best(res) -> pd.Series:
    """The seed's own configuration, cross-validated and retrained like the top ones."""
    s = res["summary"]
    return s[s["entry"] == "seed_best"].iloc[0]


def config_text(row) -> str:
    """A configuration as the seed writes it: (Nh1, Nh2, act, λ, epochs, lr, decay, lr_final)."""
    final = "–" if pd.isna(row["lr_final"]) or not row["decay"] else f"{row['lr_final']:g}"
    return (f"({row['nh1']}, {row['nh2']}, {row['activation']}, {row['l1']:g}, {row['epochs']}, "
            f"{row['lr']:g}, {bool(row['decay'])}, {final})")


def schedule_text(row) -> str:
    """'0.1 → 0.001' for a decaying rate, '0.1' for a constant one."""
    return f"{row['lr']:g} → {row['lr_final']:g}" if row["decay"] else f"{row['lr']:g}"


def effect(effects: pd.DataFrame, parameter: str, value, column: str = "best_val") -> float:
    """A cell of the effects table (NaN when the grid has no such value)."""
    hit = effects[(effects["parameter"] == parameter) & (effects["value"] == str(value))]
    return hit[column].iloc[0] if len(hit) else np.nan


def edge_stretch(track: pd.DataFrame, run: str, band: float = EDGE_BAND) -> dict:
    """Where a tracked run sits at the edge of stability: the first and last measured epochs with
    the sharpness within ``band`` (relative) of 2/lr, and the share of the measurements between them
    that are."""
    t = track[track["run"] == run]
    at_edge = (np.abs(t["sharpness"] / t["two_over_lr"] - 1) <= band).to_numpy()
    if not at_edge.any():
        return {"first": -1, "last": -1, "share": 0.0}
    i, j = np.flatnonzero(at_edge)[[0, -1]]
    epochs = t["epoch"].to_numpy()
    return {"first": int(epochs[i]), "last": int(epochs[j]), "share": float(at_edge[i: j + 1].mean())}


def ranking_table(res, n: int) -> pd.DataFrame:
    """The first ``n`` of the retrained top configurations and the seed's row, as table columns."""
    rows = pd.concat([top(res).head(n), seed_best(res).to_frame().T], ignore_index=True)
    return pd.DataFrame({
        "rank": [str(int(r)) if e == "top" else f"({int(r)}) seed's" for r, e in zip(rows["rank"], rows["entry"])],
        "shape": [f"{a}, {b}" for a, b in zip(rows["nh1"], rows["nh2"])],
        "activation": rows["activation"].map(ACTIVATION_NAMES),
        "l1": rows["l1"].astype(float), "rate": [schedule_text(r) for _, r in rows.iterrows()],
        "val_mean": rows["val_mean"].astype(float), "val_sd": rows["val_sd"].astype(float),
        "test_loss": rows["test_loss"].astype(float), "f_error": rows["f_error"].astype(float)})


# ------------------------------------------------------------------------------------ figures

def _plain(value, _=None) -> str:
    """A log-axis tick as a plain number, and only at 1, 2 and 5 times a power of ten."""
    lead = round(value / 10 ** np.floor(np.log10(value))) if value > 0 else 0
    return style.plain_number(value) if lead in (1, 2, 5) else ""


def _plain_log(ax):
    """Log-scale y ticks as plain numbers (0.2, 0.5, 1, 2), not 2 × 10⁻¹."""
    ax.yaxis.set_major_formatter(FuncFormatter(_plain))
    ax.yaxis.set_minor_formatter(FuncFormatter(_plain))


def plot_data(res):
    """The stand-in data set (the seed's Figure 1): target, training and test points."""
    fig, ax = style.figure(height=2.6)
    ax.plot(res["x_dense"], res["f_dense"], "k", lw=1, label="target $f$")
    ax.plot(res["x_train"], res["y_train"], ".", color="tab:red", ms=4, label="training set")
    ax.plot(res["x_test"], res["y_test"], "o", mfc="none", color="tab:blue", ms=4, label="test set")
    ax.set(xlabel="$x$", ylabel="$y$")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def _labels(grid):
    schedule = np.where(grid["decay"], "decay", "constant")
    shape = "(" + grid["nh1"].astype(str) + ", " + grid["nh2"].astype(str) + ")"
    activation = grid["activation"].map(ACTIVATION_NAMES)
    return grid.assign(schedule=schedule, shape=shape, activation=activation)


def plot_effects(res):
    """Mean validation MSE of every configuration, grouped by the value of one hyper-parameter."""
    fig, axs = style.figure(2, 3, height=5.0, sharey=True)
    grid = _labels(res["grid"])
    rng = np.random.default_rng(0)
    for ax, (column, title) in zip(axs.flat, EFFECTS):
        values = sorted(grid[column].unique(), key=lambda v: (isinstance(v, str), v))
        for i, v in enumerate(values):
            y = grid.loc[grid[column] == v, "val_mean"]
            ax.plot(i + rng.uniform(-0.25, 0.25, len(y)), y, ".", color="tab:blue", ms=2, alpha=0.5)
            ax.plot([i - 0.35, i + 0.35], [y.min()] * 2, "k", lw=1.5)
        ax.axhline(res["noise_train_mse"], color="grey", ls=":", lw=1)
        ax.set_xticks(range(len(values)), [f"{v:g}" if not isinstance(v, str) else v for v in values])
        if column in ("shape", "activation"):
            ax.tick_params(axis="x", labelrotation=25)
        ax.set(yscale="log", title=title)
    for ax in axs[:, 0]:
        ax.set_ylabel("mean validation MSE")
    return fig


def plot_ranking(res, n=60):
    """The first n ranks: mean validation MSE with one standard error over the folds (left), and
    the paired difference to rank 1, fold by fold, with its standard error (right)."""
    fig, axs = style.figure(1, 2, height=2.8)
    grid = res["grid"].head(n)
    folds = sum(c.startswith("val_") and c[4:].isdigit() for c in grid.columns)
    axs[0].errorbar(grid["rank"], grid["val_mean"], yerr=grid["val_sd"] / np.sqrt(folds), fmt=".",
                    ms=3, lw=0.8)
    axs[0].axhline(res["noise_train_mse"], color="grey", ls=":", lw=1, label="$f$ itself")
    axs[0].set(ylabel="validation MSE ± 1 s.e.")
    axs[1].errorbar(grid["rank"][1:], grid["gap_mean"][1:], yerr=grid["gap_se"][1:], fmt=".", ms=3, lw=0.8)
    axs[1].axhline(0, color="k", lw=0.8)
    axs[1].set(ylabel="minus rank 1, paired ± 1 s.e.")
    for ax in axs:
        ax.axvline(len(top(res)) + 0.5, color="tab:red", lw=0.8, label="retrained")
        ax.set(xlabel="rank")
    axs[0].legend(loc="upper left")
    return fig


def plot_test_vs_truth(res):
    """For the retrained top configurations: test MSE against the error to the noiseless target."""
    fig, ax = style.figure(height=2.8)
    s, ref = top(res), seed_best(res)
    best = res["best_by_test"]
    ax.plot(s["test_loss"], s["f_error"], "o", ms=4, mfc="none", color="tab:blue",
            label="retrained top configurations")
    ax.plot(s["test_loss"][0], s["f_error"][0], "o", ms=5, color="tab:blue", label="rank 1")
    ax.plot(s["test_loss"][best], s["f_error"][best], "*", ms=10, color="tab:green",
            label=f"picked on the test set (rank {s['rank'][best]})")
    ax.plot(ref["test_loss"], ref["f_error"], "s", ms=5, color="tab:orange", label="the seed's configuration")
    ax.set(xlabel=f"test MSE ({len(res['x_test'])} noisy points)", ylabel="MSE to $f$ on a dense grid")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def plot_curves(res, i):
    """Training and test MSE per epoch of retrained top configuration i (the seed's Figure 2), one
    panel each so that neither hides the other."""
    fig, axs = style.figure(1, 2, height=2.6, sharey=True)
    epochs = int(top(res)["epochs"][i])
    for ax, split, colour in ((axs[0], "train", "tab:blue"), (axs[1], "test", "tab:orange")):
        ax.semilogy(res[f"top_{split}_curve"][: epochs + 1, i], color=colour, lw=0.8)
        ax.axhline(res[f"noise_{split}_mse"], color="k", ls=":", lw=0.8, label=f"$f$ on the {split}{'ing' if split == 'train' else ''} points")
        ax.set(xlabel="epoch", title=f"{split}ing MSE" if split == "train" else "test MSE")
        ax.legend(loc="upper right")
    axs[0].set_ylabel("MSE")
    _plain_log(axs[0])
    return fig


def plot_fit(res, i):
    """The function learnt by retrained top configuration i (the seed's Figure 3), the others faint."""
    fig, ax = style.figure(height=2.8)
    x = res["x_dense"]
    for j in range(res["top_fitted"].shape[0]):
        ax.plot(x, res["top_fitted"][j], color="tab:green", lw=0.5, alpha=0.3)
    ax.plot(x, res["f_dense"], "k", lw=1, label="target $f$")
    ax.plot(x, res["top_fitted"][i], color="tab:green", lw=1.5, label="picked network")
    ax.plot(res["x_train"], res["y_train"], ".", color="tab:red", ms=3, label="training set")
    ax.plot(res["x_test"], res["y_test"], "o", mfc="none", color="tab:blue", ms=4, label="test set")
    ax.set(xlabel="$x$", ylabel="$y$")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def plot_schedule(res):
    """Rank 1 retrained with its own schedule and with the other one (constant <-> decaying)."""
    fig, axs = style.figure(1, 2, height=2.9, sharey=True)
    epochs = int(top(res)["epochs"][0])
    own = "decaying" if top(res)["decay"][0] else "constant"
    other = "decaying" if res["twin"]["decay"] else "constant"
    for ax, curve in zip(axs, ("train", "test")):
        ax.semilogy(res[f"twin_{curve}_curve"][: epochs + 1], color="tab:purple", lw=0.8, label=f"{other} rate")
        ax.semilogy(res[f"top_{curve}_curve"][: epochs + 1, 0], color="tab:green", lw=0.8, label=f"{own} rate")
        ax.set(xlabel="epoch", title=f"{curve}ing MSE" if curve == "train" else "test MSE")
    axs[0].set_ylabel("MSE")
    _plain_log(axs[0])
    fig.legend(*axs[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    return fig


def plot_sharpness(res):
    """Sharpness of the training MSE along each tracked run against 2/lr of that epoch."""
    track = res["sharpness"]
    fig, axs = style.figure(1, len(TRACKED), height=2.8, sharey=True)
    for ax, (run, title) in zip(axs, TRACKED.items()):
        t = track[track["run"] == run]
        ax.semilogy(t["epoch"], t["two_over_lr"], "k--", lw=1, label="2 / learning rate")
        ax.semilogy(t["epoch"], t["sharpness"], ".-", color="tab:red", ms=3, lw=0.8, label="sharpness")
        ax.set(xlabel="epoch", title=title)
    axs[0].set_ylabel("largest Hessian eigenvalue")
    axs[0].legend(loc="upper left")
    return fig
