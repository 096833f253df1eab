"""Figures of the digits chapter: learning curves of a study and the validation search grid."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def learning_curves(res, study: str, legend: str = "", logx: bool = False):
    """Loss and accuracy per epoch of every row of ``study``: mean over seeds, band = min..max.

    Solid lines are the whole training set, dashed lines the validation set.
    """
    labels = res[f"{study}_labels"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(labels)))
    for ax, metric, name in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy")):
        for i, (label, colour) in enumerate(zip(labels, colours)):
            for split, style in (("train", "-"), ("val", "--")):
                curves = res[f"{study}_{split}_{metric}"][i]
                epochs = np.arange(curves.shape[-1])
                ax.plot(epochs, curves.mean(0), style, color=colour,
                        label=f"{legend}{label}" if split == "train" else None)
                ax.fill_between(epochs, curves.min(0), curves.max(0), color=colour, alpha=0.15, lw=0)
        ax.set(xlabel="epoch", ylabel=name)
        if logx:
            ax.set_xscale("symlog", linthresh=1)
    axes[1].legend(fontsize="small", loc="lower right")
    return fig


def search_grid(search):
    """Mean validation accuracy of the (batch size, lr, reg) grid, one panel per batch size."""
    sizes = sorted(search["batch_size"].unique())
    regs = sorted(search["reg"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(2.4 * len(sizes), 3), sharey=True,
                             layout="constrained", squeeze=False)
    colours = plt.cm.plasma(np.linspace(0, 0.8, len(regs)))
    for ax, size in zip(axes[0], sizes):
        for reg, colour in zip(regs, colours):
            rows = search[(search["batch_size"] == size) & (search["reg"] == reg)].sort_values("lr")
            ax.plot(rows["lr"], rows["val_acc_mean"], "o-", color=colour, ms=4, label=f"reg {reg:g}")
            gone = rows[rows["diverged"] > 0]
            ax.plot(gone["lr"], gone["val_acc_mean"], "x", color="k", ms=8)
        steps = int(rows["steps"].iloc[0])
        ax.set(xscale="log", xlabel="learning rate", title=f"batch {size} ({steps} steps)")
    axes[0, 0].set_ylabel("validation accuracy")
    axes[0, -1].legend(fontsize="small")
    return fig


def loss_against_lr_time(res, study: str = "lr_long", steps_per_epoch: int | None = None):
    """Training loss of each learning rate against lr x (number of updates), mean over seeds.

    If the curves coincide, the rate only sets how fast the same path is travelled (gradient flow).
    """
    table = res["lr_budget"]
    rows = table[table["study"] == study].reset_index(drop=True)
    steps = steps_per_epoch or res["steps_per_epoch"]
    fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(rows)))
    for i, colour in enumerate(colours):
        loss = res[f"{study}_train_loss"][i].mean(0)
        time = rows.loc[i, "lr"] * steps * np.arange(len(loss))
        ax.plot(time[1:], loss[1:], color=colour, label=f"lr {rows.loc[i, 'lr']:g}")
    ax.set(xscale="log", xlabel="lr x number of updates", ylabel="training cross-entropy")
    ax.legend(fontsize="small")
    return fig
