"""Figures and text of the WANN review chapter, drawn from the cached ``wann`` result."""
from __future__ import annotations

import numpy as np

from nnlab.experiments.wann import N_SOURCES, node_names, parse
from nnlab.plots import style
from nnlab.report import num

ACTIVATION_NAMES = {"linear": "linear", "step": "step", "sin": "sine", "cos": "cosine", "gauss": "Gaussian",
                    "tanh": "tanh", "sigmoid": "sigmoid", "inverse": "inverse", "abs": "absolute value",
                    "relu": "ReLU"}
NODE_TEXT = {"bias": "bias", "x1": "x₁", "x2": "x₂", "h1": "h₁", "h2": "h₂", "h3": "h₃", "out": "y"}
NODE_MATH = {"bias": "1", "x1": "$x_1$", "x2": "$x_2$", "h1": "$h_1$", "h2": "$h_2$", "h3": "$h_3$", "out": "$y$"}


def activations_text(row) -> str:
    """``gauss,linear,sin`` → ``Gaussian, linear, sine``."""
    return ", ".join(ACTIVATION_NAMES.get(a, a) for a in row["activations"].split(","))


def edges_text(row) -> str:
    """``x1>h1 h1>out`` → ``x₁ → h₁, h₁ → y``."""
    return ", ".join(" → ".join(NODE_TEXT.get(n, n) for n in e.split(">")) for e in row["edges"].split())


def accuracies_text(row, weights) -> str:
    """The accuracy at each shared-weight value, as one compact cell: ``0.75 1 1 1 1 0.75``."""
    return " ".join(num(row[f"acc_w{w:g}"], 2) for w in weights)


def best_formula_output(w, x1, x2):
    """The output of the Gaussian-linear-sine topology of @eq-wann-best at shared weight w."""
    return np.sin(np.pi * w**2 * np.exp(-w**2 * (x1 + x2) ** 2 / 2))


def formula_matches_search(best, weights) -> bool:
    """Does @eq-wann-best give the search's own accuracies (True if the search found another topology)?"""
    if not (best["edges"] == "x1>h1 x2>h1 h1>h2 h2>out" and best["activations"] == "gauss,linear,sin"):
        return True
    x1, x2 = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    return all(np.mean((best_formula_output(w, x1, x2) > 0.5) == (x1 ^ x2)) == best[f"acc_w{w:g}"]
               for w in weights)


def plot_network(row):
    """The topology of one row of the ranking: sources left, hidden nodes by depth, output right."""
    fig, ax = style.figure(height=1.6, width=4.5)
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
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="gray", shrinkA=14, shrinkB=14))
    for j, name in enumerate(names):
        label = NODE_MATH.get(name, name)
        if j >= N_SOURCES:
            label += "\n" + ACTIVATION_NAMES.get(acts[j - N_SOURCES], acts[j - N_SOURCES])
        ax.text(*pos[j], label, ha="center", va="center", fontsize=style.TICK_PT,
                bbox=dict(boxstyle="round", fc="white" if j < N_SOURCES else "#fff3c4", ec="gray"))
    ax.set(xlim=(-0.5, depth.max() + 0.5), ylim=(-1.5, 1.5))
    ax.axis("off")
    return fig


def plot_acc_vs_w(res, shared_weights):
    """Accuracy of the best topology (thick) and the next two (thin) against the shared weight."""
    fig, ax = style.figure(height=3.2)
    w, summary = res["w_sweep"], res["summary"]
    colors = ["tab:blue", "tab:orange", "tab:green"]
    for k, acc in reversed(list(enumerate(res["acc_vs_w"][:3]))):
        ax.plot(w, acc, lw=2 if k == 0 else 1, alpha=1 if k == 0 else 0.7, zorder=3 - k, color=colors[k],
                label=f"#{k + 1}: {activations_text(summary.iloc[k])}; {summary['connections'][k]} connections")
    ax.plot(shared_weights, summary.loc[0, [f"acc_w{v:g}" for v in shared_weights]].astype(float),
            "ko", ms=4, zorder=5, label="the search's weight values")
    ax.set(xlabel="shared weight $w$", ylabel="accuracy on the 4 inputs", ylim=(-0.05, 1.05))
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside lower center", ncol=2)
    return fig


def plot_pareto(res):
    """Best mean accuracy over the shared weights against the number of connections."""
    fig, ax = style.figure(height=2.8, width=5.0)
    for h, part in res["pareto"].groupby("hidden"):
        ax.plot(part["connections"], part["best_mean_acc"], "o-", ms=4, label=f"{h} hidden")
    ax.set(xlabel="connections", ylabel="best mean accuracy")
    ax.legend(loc="lower right")
    return fig


def plot_training(res):
    """Squared-error curves of gradient descent on independent weights, by final accuracy."""
    fig, ax = style.figure(height=3.2)
    loss, acc = res["trained_loss"], res["trained_accuracy"]
    steps = np.linspace(0, 1, loss.shape[1])
    colors = {1.0: "tab:green", 0.75: "tab:orange", 0.5: "tab:red"}
    for level in sorted(set(acc), reverse=True):
        color = colors.get(level, "tab:gray")
        for curve in loss[acc == level]:
            ax.semilogy(steps, curve, color=color, lw=0.6, alpha=0.6)
        ax.plot([], [], color=color, label=f"final accuracy {level:g}: {int((acc == level).sum())} starts")
    ax.set(xlabel="fraction of training", ylabel="mean squared error")
    fig.legend(loc="outside lower center", ncol=3)
    return fig
