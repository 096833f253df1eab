"""Figures and table helpers of the digits chapter, drawn at the size they are shown
(``nnlab.plots.style``): learning curves of a study, the validation search grid, the plateau."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.plots import style

# one clearly different colour per row of a study (neighbouring rates must not look alike)
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
STUDY_NAMES = {"lr_long": "ReLU", "sigmoid_template_long": "sigmoid (the template)"}


def row(res, study: str, value=None) -> pd.Series:
    """The row of one study setting (summary or lr_budget), e.g. row(res, "lr", 1.0); the value is
    the learning rate, or `reg` for the regularisation study; "tuned" has one row."""
    table = res["summary"] if study in ("lr", "reg", "tuned", "sigmoid_template") else res["lr_budget"]
    rows = table[table["study"] == study]
    if study == "tuned":
        return rows.iloc[0]
    key = "reg" if study == "reg" else "lr"
    return rows[np.isclose(rows[key], value)].iloc[0]


def pm(r, key: str, digits: int = 3) -> str:
    """mean ± sd of a metric over seeds, as text."""
    return f"{r[key + '_mean']:.{digits}f} ± {r[key + '_sd']:.{digits}f}"


def learning_curves(res, study: str, legend: str = ""):
    """Loss and accuracy per epoch of every row of ``study``: mean over seeds, band = min..max.

    Solid lines are the whole training set, dashed lines the validation set; the legend is below.
    """
    labels = res[f"{study}_labels"]
    fig, axes = style.figure(1, 2, height=3.0)
    for ax, metric, name in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy")):
        for i, (label, colour) in enumerate(zip(labels, COLOURS)):
            for split, line in (("train", "-"), ("val", "--")):
                curves = res[f"{study}_{split}_{metric}"][i]
                epochs = np.arange(curves.shape[-1])
                ax.plot(epochs, curves.mean(0), line, color=colour, lw=1.2,
                        label=f"{legend}{label}" if split == "train" else None)
                ax.fill_between(epochs, curves.min(0), curves.max(0), color=colour, alpha=0.15, lw=0)
        ax.set(xlabel="epoch", ylabel=name)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(labels))
    return fig


def search_grid(search):
    """Mean validation accuracy of the (batch size, lr, reg) grid, one panel per batch size."""
    sizes = sorted(search["batch_size"].unique())
    regs = sorted(search["reg"].unique())
    ncols = 2 if len(sizes) > 1 else 1
    nrows = -(-len(sizes) // ncols)
    fig, axes = style.figure(nrows, ncols, height=2.3 * nrows + 0.4, sharey=True, sharex=True, squeeze=False)
    for ax, size in zip(axes.flat, sizes):
        for reg, colour in zip(regs, COLOURS):
            rows = search[(search["batch_size"] == size) & (search["reg"] == reg)].sort_values("lr")
            ax.plot(rows["lr"], rows["val_acc_mean"], "o-", color=colour, ms=4, label=f"reg {reg:g}")
            gone = rows[rows["diverged"] > 0]
            ax.plot(gone["lr"], gone["val_acc_mean"], "x", color="k", ms=8)
        steps = int(rows["steps"].iloc[0])
        ax.set(xscale="log", title=f"batch {size} ({steps} updates)")
    for ax in axes[-1]:
        ax.set_xlabel("learning rate")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation accuracy")
    for ax in axes.flat[len(sizes):]:
        ax.set_visible(False)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=len(regs))
    return fig


def loss_against_lr_time(res, studies=("lr_long",), steps_per_epoch: int | None = None):
    """Training loss of each learning rate against lr × (number of updates), mean over seeds; one
    line style per study (solid: the first). If the curves of one study coincide, the rate only sets
    how fast the same path is travelled (gradient flow)."""
    table = res["lr_budget"]
    steps = steps_per_epoch or res["steps_per_epoch"]
    fig, ax = style.figure(height=3.0)
    for study, line in zip(studies, ("-", "--", ":")):
        rows = table[table["study"] == study].reset_index(drop=True)
        for i, colour in zip(range(len(rows)), COLOURS):
            loss = res[f"{study}_train_loss"][i].mean(0)
            time = rows.loc[i, "lr"] * steps * np.arange(len(loss))
            name = f", {STUDY_NAMES.get(study, study)}" if len(studies) > 1 else ""
            ax.plot(time[1:], loss[1:], line, color=colour, lw=1.2, label=f"lr {rows.loc[i, 'lr']:g}{name}")
    ax.set(xscale="log", xlabel="learning rate × number of updates", ylabel="training cross-entropy")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


# ------------------------------------------------------------------------------------ tables
# What the seed reports for MNIST (its tables 1 and 2): the columns of its learning-rate and
# regularisation studies.
SEED_LR = pd.DataFrame({"lr": [1, 1e-1, 5e-2, 1e-2],
                        "seed_train": [0.9375, 0.75, 0.375, 0.0625],
                        "seed_test": [0.8992, 0.7616, 0.3380, 0.1028]})
SEED_REG = pd.DataFrame({"reg": [1, 1e-1, 1e-2, 1e-3, 1e-4],
                         "seed_train": [0.125, 0.125, 0.6875, 0.75, 0.75],
                         "seed_val": [0.1135, 0.1135, 0.7168, 0.7616, 0.7616],
                         "seed_test": [0.1135, 0.1135, 0.7168, 0.7616, 0.7616]})


def study_table(res, study: str) -> pd.DataFrame:
    """The rows of one study, with the seed's figures for the same setting where it has them."""
    table = res["summary"] if study in ("lr", "reg", "tuned", "sigmoid_template") else res["lr_budget"]
    rows = table[table["study"] == study].reset_index(drop=True)
    key, seed = ("reg", SEED_REG) if study == "reg" else ("lr", SEED_LR)
    for column in seed.columns.drop(key):
        reported = dict(zip(seed[key].round(12), seed[column]))
        rows[column] = [reported.get(round(v, 12), np.nan) for v in rows[key]]
    return rows
