"""Figures of the Bell-polynomial chapter (Challenge 2B): learning curves, the learning-rate sweep,
one-variable sweeps, per-variable errors and sensitivity indices. Losses are shown relative to the
polynomial's variance (MSE / Var f), which puts B6 and B̃6 on one scale."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

COLOURS = {"B6": "tab:blue", "B6_scrambled": "tab:orange"}
LABELS = {"B6": "$B_6$", "B6_scrambled": r"$\tilde B_6$"}


def _variance(res, name: str) -> float:
    return res["target_scale"][name]["exact_variance"]


def learning_curves(res):
    """Training loss (means over 1/300 of the run) and test loss after every epoch, relative to
    Var f: mean over seeds, band = min..max over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True, layout="constrained")
    epochs_fine = res["fine_steps"] / res["steps_per_epoch"]
    for p, name in enumerate(res["polynomials"]):
        var, colour = _variance(res, name), COLOURS[name]
        for ax, x, curves in ((axes[0], epochs_fine, res["fine_train"][p]),
                              (axes[1], np.arange(res["epoch_test"].shape[-1]), res["epoch_test"][p])):
            rel = curves / var
            ax.plot(x, rel.mean(0), color=colour, label=LABELS[name])
            ax.fill_between(x, rel.min(0), rel.max(0), color=colour, alpha=0.25, lw=0)
    axes[0].set(yscale="log", xlabel="epoch", ylabel="MSE / Var f", title="training (minibatch losses)")
    axes[1].set(xlabel="epoch", title="test set (after each epoch)")
    axes[1].legend()
    return fig


def lr_sweep(res, tail: int = 10):
    """Per polynomial: the sweep's learning curves (mean minibatch loss per epoch) and, right, against
    the learning rate: the last epoch's mean minibatch loss (the selection criterion) and the median
    test loss over the last ``tail`` epochs; crosses: final test losses of the final seeds."""
    lrs = res["lrs"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(lrs)))
    for p, name in enumerate(res["polynomials"]):
        var = _variance(res, name)
        curves = res["sweep_epoch_train"][p] / var
        epochs = np.arange(1, curves.shape[-1] + 1)
        for lr, colour, curve in zip(lrs, colours, curves):
            axes[p].plot(epochs, curve, color=colour, label=f"{lr:g}")
        axes[p].set(yscale="log", xlabel="epoch", title=f"{LABELS[name]}: sweep")
        typical = np.median(res["sweep_epoch_test"][p][:, -tail:], axis=1) / var
        axes[2].plot(lrs, curves[:, -1], "o-", color=COLOURS[name], label=f"{LABELS[name]}: mean, last epoch")
        axes[2].plot(lrs, typical, "s--", color=COLOURS[name], mfc="none",
                     label=f"{LABELS[name]}: median test, last {tail}")
        chosen = res["chosen_lr"][name]
        finals = res["summary"].query("polynomial == @name")["final_test_rel"]
        axes[2].plot([chosen] * len(finals), finals, "x", color=COLOURS[name], ms=7)
    axes[0].set_ylabel("MSE / Var f")
    axes[0].legend(title="learning rate", fontsize="x-small", ncol=2)
    axes[2].set(xscale="log", yscale="log", xlabel="learning rate", title="against the rate")
    axes[2].set_xticks(lrs, [f"{lr:g}" for lr in lrs], fontsize="small")
    axes[2].xaxis.set_minor_locator(plt.NullLocator())
    axes[2].legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return fig


def one_point_sweeps(res, partial: bool = False):
    """Step 6: along each variable from one base point, the target (black) and the networks of
    every seed (coloured); ``partial=True`` shows the partial derivative along the sweep instead."""
    grid, key = res["grid"], "step6_" + ("{}_partial" if partial else "{}")
    fig, axes = plt.subplots(2, 6, figsize=(12, 4.4), layout="constrained", sharex=True)
    for p, name in enumerate(res["polynomials"]):
        target, models = res[key.format("target")][p], res[key.format("model")][p]
        for j, ax in enumerate(axes[p]):
            ax.plot(grid, target[j], color="k", lw=2.5, alpha=0.5, label="target")
            for s, model in enumerate(models):
                ax.plot(grid, model[j], color=COLOURS[name], lw=0.9, alpha=0.6 + 0.4 * (s == 0),
                        label="networks" if s == 0 else None)
            if p == 1:
                ax.set_xlabel(f"$x_{j + 1}$")
        symbol = r"\partial f/\partial x_j" if partial else "f"
        axes[p, 0].set_ylabel(f"{LABELS[name]}: ${symbol}$")
        axes[p, 0].legend(fontsize="x-small")
    return fig


def per_variable_errors(res):
    """Step 7: per variable, the mean absolute error along the sweeps of the value (left; dots: the
    shape error, without the local offset) and of the partial derivative (right; ticks: the mean
    size of the target's derivative). Bars = mean over seeds and base points, whiskers = 90% quantile."""
    table = res["per_variable"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    x, width = np.arange(6), 0.38
    for p, name in enumerate(res["polynomials"]):
        rows, at = table[table["polynomial"] == name], x + (p - 0.5) * width
        for ax, col, mark, label in ((axes[0], "value_error", "shape_error", "shape error"),
                                     (axes[1], "partial_error", "partial_scale", "mean $|\\partial_j f|$")):
            mean, q90 = rows[col].to_numpy(), rows[col + "_q90"].to_numpy()
            ax.bar(at, mean, width, color=COLOURS[name], label=LABELS[name],
                   yerr=np.stack([np.zeros_like(mean), q90 - mean]), capsize=2)
            ax.plot(at, rows[mark], "_" if mark == "partial_scale" else "o", color="k", zorder=3,
                    ms=12 if mark == "partial_scale" else 5, label=label if p == 0 else None)
    for ax, title in ((axes[0], "value: mean $|\\hat f - f|$ along a sweep"),
                      (axes[1], "derivative: mean $|\\partial_j \\hat f - \\partial_j f|$")):
        ax.set(xticks=x, xticklabels=[f"$x_{j + 1}$" for j in x], yscale="log", title=title)
        ax.legend(fontsize="x-small")
    return fig


def sensitivity(res):
    """Left: first-order indices of the targets (exact) and of the networks (Monte Carlo, mean over
    seeds). Right: relative derivative error of each variable against its total index."""
    table, per_var = res["sensitivity"], res["per_variable"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    x, width = np.arange(6), 0.2
    for p, name in enumerate(res["polynomials"]):
        rows = table[table["polynomial"] == name]
        axes[0].bar(x + (2 * p - 1.5) * width, rows["S_exact"], width, color=COLOURS[name],
                    label=f"{LABELS[name]} target")
        axes[0].bar(x + (2 * p - 0.5) * width, rows["S_net"], width, color=COLOURS[name], alpha=0.45,
                    yerr=rows["S_net_sd"], capsize=2, label=f"{LABELS[name]} networks")
        v = per_var[per_var["polynomial"] == name]
        axes[1].loglog(v["T_exact"], v["partial_error_rel"], "o", color=COLOURS[name], label=LABELS[name])
        for j, (t, e) in enumerate(zip(v["T_exact"], v["partial_error_rel"])):
            axes[1].annotate(f"$x_{j + 1}$", (t, e), textcoords="offset points", xytext=(4, 3),
                             fontsize="small")
    axes[0].set(xticks=x, xticklabels=[f"$x_{j + 1}$" for j in x], ylabel="first-order index $S_j$")
    axes[0].legend(fontsize="x-small")
    axes[1].set(xlabel="total index $T_j$ of the target",
                ylabel="mean derivative error / mean $|\\partial_j f|$")
    axes[1].legend(fontsize="small")
    return fig


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table (renders in HTML and Typst; cells may hold $math$)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def terms_table(b6_terms, sigmas, scrambled_terms, latex_monomial) -> str:
    """B6 and B̃6 term by term, with sigma_i in one-line notation (1-based) and each term's weight
    sum_j j e_j (6 for every term of B6: a set partition of {1..6} into blocks of sizes j)."""
    weight = lambda exps: sum((k + 1) * e for k, e in enumerate(exps))
    rows = [[i + 1, c, f"${latex_monomial(1, e)}$", weight(e),
             "(" + " ".join(str(s + 1) for s in sigma) + ")", f"${latex_monomial(1, f)}$", weight(f)]
            for i, ((c, e), sigma, (_, f)) in enumerate(zip(b6_terms, sigmas, scrambled_terms))]
    return markdown_table(["$i$", "coefficient", "$B_6$ monomial", "weight", r"$\sigma_i$",
                           r"$\tilde B_6$ monomial", "weight"], rows)


def paired_ratio(res):
    """Sweep runs, same seed and learning rate for both polynomials: the relative training loss of
    B̃6 divided by that of B6, epoch by epoch, one line per learning rate (above 1: B6 is ahead)."""
    var = [_variance(res, name) for name in res["polynomials"]]
    ratio = (res["sweep_epoch_train"][1] / var[1]) / (res["sweep_epoch_train"][0] / var[0])
    fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(res["lrs"])))
    epochs = np.arange(1, ratio.shape[-1] + 1)
    for lr, colour, r in zip(res["lrs"], colours, ratio):
        ax.plot(epochs, r, "o-", ms=3, color=colour, label=f"{lr:g}")
    ax.axhline(1, color="k", lw=0.8)
    ax.set(xlabel="epoch", ylabel=r"MSE/Var f: $\tilde B_6$ over $B_6$")
    ax.legend(title="learning rate", fontsize="x-small", ncol=2)
    return fig
