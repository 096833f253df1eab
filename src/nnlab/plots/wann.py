"""Figures of the WANN review chapter, drawn from the cached ``wann`` result."""
from __future__ import annotations

import numpy as np

from nnlab.experiments.wann import N_SOURCES, node_names, parse


def plot_network(ax, row):
    """The topology of one row of the ranking: sources left, hidden nodes by depth, output right."""
    mask, acts = parse(row)
    names = node_names(mask.shape[0] - N_SOURCES - 1)
    depth = np.zeros(len(names))
    for j in range(N_SOURCES, len(names)):
        depth[j] = max((depth[i] + 1 for i in np.flatnonzero(mask[:, j])), default=1)
    depth[-1] = depth.max()
    pos = {}
    for d in np.unique(depth):
        members = np.flatnonzero(depth == d)
        for k, j in enumerate(members):
            pos[j] = (d, (len(members) - 1) / 2 - k)
    for i, j in zip(*np.nonzero(mask)):
        (x0, y0), (x1, y1) = pos[i], pos[j]
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="gray", shrinkA=12, shrinkB=12))
    for j, name in enumerate(names):
        label = name if j < N_SOURCES else f"{name}\n{acts[j - N_SOURCES]}"
        ax.text(*pos[j], label, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round", fc="white" if j < N_SOURCES else "lightyellow", ec="gray"))
    ax.set(xlim=(-0.5, depth.max() + 0.5), ylim=(-1.5, 1.5))
    ax.axis("off")


def plot_acc_vs_w(ax, res, shared_weights):
    """Accuracy of the best topology (thick) and the next two (thin) against the shared weight."""
    w, summary = res["w_sweep"], res["summary"]
    for k, acc in reversed(list(enumerate(res["acc_vs_w"]))):
        ax.plot(w, acc, lw=2 if k == 0 else 0.7, alpha=1 if k == 0 else 0.6, zorder=3 - k,
                label=f"#{k + 1}: {summary['activations'][k]}, {summary['connections'][k]} connections")
    ax.plot(shared_weights, summary.loc[0, [f"acc_w{v:g}" for v in shared_weights]].astype(float),
            "ko", ms=4, zorder=5, label="the search's weight values")
    ax.set(xlabel="shared weight w", ylabel="accuracy on the 4 XOR inputs", ylim=(-0.05, 1.05))
    ax.legend(fontsize=7, loc="lower left")


def plot_pareto(ax, res):
    """Best mean accuracy over the shared weights against the number of connections."""
    p = res["pareto"]
    for h, part in p.groupby("hidden"):
        ax.plot(part["connections"], part["best_mean_acc"], "o-", ms=4, label=f"{h} hidden")
    ax.set(xlabel="connections", ylabel="best mean accuracy")
    ax.legend(fontsize=7)


def plot_training(ax, res):
    """Squared-error curves of gradient descent on independent weights, by final accuracy."""
    loss, acc = res["trained_loss"], res["trained_accuracy"]
    steps = np.linspace(0, 1, loss.shape[1])
    colors = {1.0: "tab:green", 0.75: "tab:orange", 0.5: "tab:red"}
    for level in sorted(set(acc), reverse=True):
        color = colors.get(level, "tab:gray")
        for curve in loss[acc == level]:
            ax.semilogy(steps, curve, color=color, lw=0.6, alpha=0.6)
        ax.plot([], [], color=color, label=f"final accuracy {level:g}: {int((acc == level).sum())} starts")
    ax.set(xlabel="fraction of training", ylabel="mean squared error")
    ax.legend(fontsize=7)
