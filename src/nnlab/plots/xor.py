"""Figures and small tables of the XOR/perceptron chapter, drawn from the cached ``perceptron`` result."""
from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown

from nnlab import perceptron as pc
from nnlab.plots import style
from nnlab.report import num, seq

GRID = np.linspace(-0.5, 1.5, 201)
COLORS = {"w1": "tab:blue", "w2": "tab:orange", "b": "tab:green"}
LABELS = {"w1": "$w_1$", "w2": "$w_2$", "b": "$b$"}


def weights(row, prefix: str = "") -> str:
    """``(w1, w2, b)`` of a summary row as plain text, e.g. ``(2, 1, −3)``."""
    return seq([row[prefix + k] for k in ("w1", "w2", "b")])


def firing_rule(row) -> Markdown:
    """The condition under which the unit fires, ``2x_1 + x_2 ≥ 3``, as a math span built in code."""
    terms = " + ".join(f"{'' if w == 1 else num(w)}x_{i}" for i, w in ((1, row.w1), (2, row.w2)) if w)
    return Markdown(f"${terms} ≥ {num(-row.b)}$".replace("−", "-"))


def epoch_table(steps) -> pd.DataFrame:
    """Weights at the end of every epoch and the errors made in it, one column pair per function."""
    ends = steps.assign(error=steps.t != steps.a).groupby(["function", "epoch"], sort=False).agg(
        w1=("w1", "last"), w2=("w2", "last"), b=("b", "last"), errors=("error", "sum")).reset_index()
    ends["weights"] = [seq(r) for r in ends[["w1", "w2", "b"]].to_numpy()]
    wide = ends.pivot(index="epoch", columns="function", values=["weights", "errors"])
    wide.columns = [f"{f}_{v}" for v, f in wide.columns]
    wide = wide.reset_index()
    weights_columns = [c for c in wide.columns if c.endswith("_weights")]
    errors_columns = [c for c in wide.columns if c.endswith("_errors")]
    return wide.fillna({c: "" for c in weights_columns}).astype({c: float for c in errors_columns})


def draw_unit(ax, w1, w2, b, targets, color="tab:blue", **line):
    """Shade where the unit fires, draw its boundary and the four inputs (filled: target 1), and ring
    the inputs it misclassifies."""
    gx, gy = np.meshgrid(GRID, GRID)
    ax.contourf(gx, gy, w1 * gx + w2 * gy + b >= 0, levels=[0.5, 1.5], colors=[color], alpha=0.15)
    if abs(w2) > 1e-12:
        ax.plot(GRID, -(w1 * GRID + b) / w2, color=color, **line)
    elif abs(w1) > 1e-12:
        ax.axvline(-b / w1, color=color, **line)
    wrong = pc.predict(np.array([w1, w2]), b, pc.INPUTS) != targets
    for x, target, bad in zip(pc.INPUTS, targets, wrong):
        ax.plot(*x, "o", ms=8, mec="black", mfc="black" if target else "white", zorder=3)
        if bad:
            ax.plot(*x, "o", ms=15, mec="tab:red", mfc="none", mew=2, zorder=3)
    ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), xlabel="$x_1$", ylabel="$x_2$", aspect="equal",
           xticks=[0, 1], yticks=[0, 1])


def plot_trajectories(steps):
    """w1, w2 and b after every update, one panel per function."""
    fig, axes = style.figure(1, 3, height=2.6, sharey=True)
    for ax, name in zip(axes, ("AND", "OR", "XOR")):
        run = steps[steps.function == name].reset_index(drop=True)
        k = np.arange(1, len(run) + 1)
        for col, color in COLORS.items():
            ax.step(np.r_[0, k], np.r_[0, run[col]], where="post", color=color, label=LABELS[col])
        wrong = run.t != run.a
        ax.plot(k[wrong], np.full(wrong.sum(), -3.6), "x", color="tab:red", ms=5)
        for e in range(1, run.epoch.max()):
            ax.axvline(4 * e, color="gray", ls=":", lw=0.8)
        ax.set(title=name, xlabel="update")
    axes[0].set_ylabel("weight")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center")
    return fig


def plot_boundaries(row):
    """The rule's boundary (solid, shaded where the unit fires) and the seed's (dashed), AND and OR."""
    fig, axes = style.figure(1, 2, height=3.0)
    for ax, name in zip(axes, ("AND", "OR")):
        r = row.loc[name]
        draw_unit(ax, r.w1, r.w2, r.b, pc.TARGETS[name], label=f"rule: {weights(r)}")
        ax.plot(GRID, -(r.seed_w1 * GRID + r.seed_b) / r.seed_w2, color="tab:gray", ls="--",
                label=f"seed: {weights(r, 'seed_')}")
        ax.set_title(name)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1)
    return fig


def plot_cycle(states):
    """One panel per state of the XOR cycle, titled with its update number and weights."""
    n = len(states)
    ncols = min(n, 4)
    nrows = int(np.ceil(n / ncols))
    fig, axes = style.figure(nrows, ncols, height=1.9 * nrows, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        w1, w2, b = states[k]
        draw_unit(ax, w1, w2, b, pc.TARGETS["XOR"], color="tab:purple")
        ax.set_title(f"update {k + 1}: {seq((w1, w2, b))}", fontsize=style.TICK_PT)
        ax.set(xlabel="$x_1$", ylabel="$x_2$" if k % ncols == 0 else "")
    return fig


def plot_training(costs, solved):
    """Cost curves of gradient descent on 2-2-1 networks, coloured by outcome."""
    fig, ax = style.figure(height=3.0)
    epochs = np.arange(1, costs.shape[1] + 1)
    for c, ok in zip(costs, solved):
        ax.semilogy(epochs, c, color="tab:blue" if ok else "tab:red", lw=1, alpha=0.7)
    ax.axhline(1 / 16, color="gray", ls=":", lw=1)
    ax.plot([], [], color="tab:blue", label="solved")
    ax.plot([], [], color="tab:red", label="not solved")
    ax.set(xlabel="epoch", ylabel="cost")
    ax.legend(loc="lower left")
    return fig


def _hidden_panel(ax, H, w, b, title):
    """The four inputs in hidden space with the output unit's decision line o = 0.5."""
    line = np.linspace(-0.2, 1.2, 50)
    w1, w2 = w
    if abs(w2) > 1e-12:
        ax.plot(line, -(w1 * line + b) / w2, color="black", lw=1)
    else:
        ax.axvline(-b / w1, color="black", lw=1)
    labels = {}  # inputs whose hidden points (nearly) coincide share one label
    for (h1, h2), x, t in zip(H, pc.INPUTS, pc.TARGETS["XOR"]):
        ax.plot(h1, h2, "o", ms=8, mec="black", mfc="black" if t else "white")
        key = next((k for k in labels if np.hypot(k[0] - h1, k[1] - h2) < 0.1), (h1, h2))
        labels.setdefault(key, []).append(f"({x[0]:.0f},{x[1]:.0f})")
    for (h1, h2), names in labels.items():
        right, above = h1 < 0.5, h2 > 0.5
        ax.annotate(" ".join(names), (h1, h2), textcoords="offset points",
                    xytext=(6 if right else -6, 7 if above else -7), va="bottom" if above else "top",
                    ha="left" if right else "right", fontsize=style.LEGEND_PT,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    ax.set(xlim=(-0.2, 1.2), ylim=(-0.3, 1.2), xlabel="$h_1$", ylabel="$h_2$", title=title, aspect="equal",
           xticks=[0, 0.5, 1], yticks=[0, 0.5, 1])


def plot_hidden(res):
    """The trained network's output over the plane, and the hidden spaces of the hand-set and the
    trained networks."""
    fig, axes = style.figure(1, 3, height=2.6)
    g = res["grid"]
    cs = axes[0].contourf(g, g, res["trained_surface"], levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.7)
    axes[0].contour(g, g, res["trained_surface"], levels=[0.5], colors="black")
    for x, t in zip(pc.INPUTS, pc.TARGETS["XOR"]):
        axes[0].plot(*x, "o", ms=8, mec="black", mfc="black" if t else "white")
    axes[0].set(xlabel="$x_1$", ylabel="$x_2$", title="trained: output", aspect="equal",
                xticks=[0, 1], yticks=[0, 1])
    fig.colorbar(cs, ax=axes[0], shrink=0.7, ticks=[0, 0.5, 1])
    for ax, prefix, title in ((axes[1], "hand", "hand-set: hidden"), (axes[2], "trained", "trained: hidden")):
        _hidden_panel(ax, res[f"{prefix}_hidden"], res[f"{prefix}_W3"][0], res[f"{prefix}_b3"][0], title)
    return fig
