"""Figures of the Bell-polynomial chapter (Challenge 2B), drawn at the width they are shown
(:mod:`nnlab.plots.style`). Losses are relative to the polynomial's variance (MSE / Var f), which puts
B6 and its scrambles on one scale. ``res`` is the cached result of ``nnlab.experiments.bell``."""
from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np

from nnlab.plots import style

COLOURS = {"B6": "tab:blue", "0": "tab:orange", "sobol": "tab:green", "scramble": "0.55"}
ARCH = {"resnet": ("residual, 9 layers", "tab:blue"), "shallow": ("one hidden layer", "tab:red")}


def label(name: str) -> str:
    """Mathtext name of a polynomial: B6, a scramble by index, or the Sobol-matched control."""
    if name == "B6":
        return "$B_6$"
    if name == "sobol":
        return r"$\tilde B_6^{\,S}$ (Sobol-matched)"
    return rf"$\tilde B_6^{{({name})}}$"


def colour(name: str) -> str:
    return COLOURS.get(name, COLOURS["scramble"])


def readable_log(ax, axis: str = "y") -> None:
    """Log-axis ticks at 1, 2 and 5 times powers of ten, labelled as plain numbers; fewer when the
    axis spans many decades."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = (ax.get_ylim() if axis == "y" else ax.get_xlim())
    decades = np.log10(high / low) if low > 0 else 10
    subs = (1.0, 2.0, 3.0, 5.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    target.set_major_locator(mticker.LogLocator(subs=subs))
    target.set_major_formatter(mticker.FuncFormatter(style.plain_number))
    target.set_minor_formatter(mticker.NullFormatter())


def _variance(res, name: str) -> float:
    return res["target_scale"][name]["exact_variance"]


def _index(res, name: str) -> int:
    return list(res["polynomials"]).index(name)


def lr_tuning(res):
    """Per polynomial, the final training (left) and test (right) MSE / Var f against the learning
    rate: mean of log over seeds (line), single seeds (dots); the chosen rate is ringed."""
    summary = res["summary"]
    runs = summary[summary.kind != "size_sweep"]
    fig, axes = style.figure(1, 2, height=3.2, sharey=True)
    for name in res["polynomials"]:
        mine = runs[runs.polynomial == name]
        scramble = name not in ("B6", "0", "sobol")
        for ax, column in zip(axes, ("final_train_mse_rel", "final_test_mse_rel")):
            mean = np.exp(np.log(mine[column]).groupby(mine.lr).mean())
            ax.plot(mean.index, mean.values, "-", color=colour(name), lw=0.8 if scramble else 1.8,
                    alpha=0.6 if scramble else 1, zorder=1 if scramble else 3,
                    label=None if scramble else label(name))
            if not scramble:
                ax.plot(mine.lr, mine[column], ".", color=colour(name), ms=4, zorder=3)
                best = mean.index[mine.chosen.groupby(mine.lr).any().values][0]
                ax.plot([best], [mean[best]], "o", mfc="none", mec="k", ms=9, zorder=4)
    axes[0].plot([], [], "-", color=COLOURS["scramble"], lw=0.8, label="other scrambles")
    axes[0].set(xscale="log", yscale="log", xlabel="learning rate", ylabel="MSE / Var f",
                title="training set")
    axes[1].set(xscale="log", xlabel="learning rate", title="test set")
    readable_log(axes[0])
    rates = sorted(runs.lr.unique())
    for ax in axes:
        ax.set_xticks(rates, [f"{lr:g}" for lr in rates], rotation=30)
        ax.xaxis.set_minor_locator(plt.NullLocator())
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4)
    return fig


def learning_curves(res, names=("B6", "0", "sobol")):
    """Training loss (window means) and test loss after every epoch at the chosen rates, relative to
    Var f: geometric mean over seeds; the decay phase is shaded."""
    fig, axes = style.figure(1, 2, height=2.8, sharey=True)
    per_epoch = res["steps_per_epoch"]
    epochs_fine = res["fine_steps"] / per_epoch
    main_epochs = res["main_epochs"]
    for name in names:
        p = _index(res, name)
        var = _variance(res, name)
        test = res["epoch_test"][p] / var
        for ax, x, curves in ((axes[0], epochs_fine, res["fine_train"][p] / var),
                              (axes[1], np.arange(test.shape[-1]), test)):
            ax.plot(x, np.exp(np.log(curves).mean(0)), color=colour(name), label=label(name), lw=1.2)
    for ax in axes:
        ax.axvspan(main_epochs, res["epoch_test"].shape[-1] - 1, color="0.9", zorder=0)
        ax.set(yscale="log", xlabel="epoch")
    axes[0].set(ylabel="MSE / Var f", title="training (minibatch losses)")
    readable_log(axes[0])
    axes[1].set(title="test set (after each epoch)")
    axes[1].text(main_epochs + 0.3, 0.97, "decay", transform=axes[1].get_xaxis_transform(),
                 va="top", fontsize=8)
    axes[0].legend(loc="upper right")
    return fig


def gap_distribution(res, concentration):
    """Left: per scramble, the ratio of its relative test MSE to B6's with the same seed (dots: seeds;
    bar: geometric mean with 95 % t-interval over seeds); the Sobol-matched control last. Right: the
    geometric-mean ratio against the scramble's effective dimension ``concentration[name]``."""
    gaps = res["gaps"]
    fig, axes = style.figure(1, 2, height=3.0, gridspec_kw={"width_ratios": [1.6, 1]})
    order = [n for n in res["polynomials"] if n != "B6"]
    for x, name in enumerate(order):
        r = np.log(gaps[gaps.polynomial == name].ratio.to_numpy())
        mean, half = _t_interval(r)
        axes[0].plot(np.full(len(r), x), np.exp(r), ".", color=colour(name), ms=5, alpha=0.7)
        axes[0].errorbar([x], [np.exp(mean)], yerr=[[np.exp(mean) - np.exp(mean - half)],
                                                     [np.exp(mean + half) - np.exp(mean)]],
                         fmt="o", color=colour(name) if name != "0" else "k", ms=5, capsize=3)
        axes[1].errorbar([concentration[name]], [np.exp(mean)],
                         yerr=[[np.exp(mean) - np.exp(mean - half)], [np.exp(mean + half) - np.exp(mean)]],
                         fmt="o", color=colour(name) if name == "sobol" else "0.35", ms=5, capsize=2)
    axes[0].set_xticks(range(len(order)), [n if n != "sobol" else "S" for n in order])
    axes[0].axhline(1, color="k", lw=0.8)
    axes[0].set(yscale="log", xlabel="scramble (S: Sobol-matched)",
                ylabel=r"test MSE/Var f: $\tilde B_6$ over $B_6$")
    axes[1].axhline(1, color="k", lw=0.8)
    axes[1].axvline(concentration["B6"], color=COLOURS["B6"], lw=1, ls="--")
    axes[1].text(concentration["B6"], 0.97, " $B_6$", color=COLOURS["B6"], va="top", fontsize=9,
                 transform=axes[1].get_xaxis_transform())
    axes[1].set(yscale="log", xlabel="effective dimension $d_S$")
    readable_log(axes[0])
    readable_log(axes[1])
    return fig


def _t_interval(samples, level=0.95):
    from nnlab.experiments.bell import interval
    mean, half = interval(samples, level=level)
    return mean, (0.0 if np.isnan(half) else half)


def one_point_sweeps(res, name: str, partial: bool = False):
    """Step 6 for one polynomial: along each variable from the base point, the target (thick grey)
    and the networks of every seed; ``partial=True``: the partial derivative along the sweep."""
    p, grid = _index(res, name), res["grid"]
    key = "step6_" + ("{}_partial" if partial else "{}")
    target, models = res[key.format("target")][p], res[key.format("model")][p]
    fig, axes = style.figure(2, 3, height=4.4, sharex=True)
    short = label(name).split(" (")[0].strip("$")
    for j, ax in enumerate(axes.flat):
        ax.plot(grid, target[j], color="k", lw=2.5, alpha=0.45, label="target")
        for s, model in enumerate(models):
            ax.plot(grid, model[j], color=colour(name) if name != "0" else "tab:orange", lw=0.9,
                    label="networks" if s == 0 else None)
        ax.set_ylabel(rf"$\partial {short}/\partial x_{j + 1}$" if partial else f"${short}$", labelpad=1)
        ax.axvline(res["base_point"][j], color="k", lw=0.6, ls=":")
        ax.set_xlabel(f"$x_{j + 1}$", labelpad=1)  # every panel sweeps its own variable
        ax.tick_params(labelbottom=True)
    axes.flat[0].legend(loc="upper left")
    return fig


def per_variable_errors(res, names=("B6", "0", "sobol")):
    """Step 7: per variable, the mean absolute error along a sweep of the value (left; open: the shape
    error, without the local offset) and of the derivative relative to the target's mean |df/dx_j|
    (right): mean over base points of the seed-averaged error, with 95 % t-intervals over base points."""
    table = res["per_variable"]
    fig, axes = style.figure(1, 2, height=2.9)
    x = np.arange(6)
    for k, name in enumerate(names):
        rows = table[table.polynomial == name]
        at = x + (k - 1) * 0.22
        c = colour(name)
        axes[0].errorbar(at, rows.value_error, yerr=rows.value_error_ci, fmt="o", color=c, ms=4,
                         capsize=2, label=label(name).split(" (")[0])
        axes[0].errorbar(at, rows.shape_error, yerr=rows.shape_error_ci, fmt="o", mfc="white", color=c,
                         ms=4, capsize=2)
        rel, rel_ci = rows.partial_error / rows.partial_scale, rows.partial_error_ci / rows.partial_scale
        axes[1].errorbar(at, rel, yerr=rel_ci, fmt="o", color=c, ms=4, capsize=2)
    axes[0].plot([], [], "o", mfc="white", color="0.3", ms=4, label="shape error")
    for ax in axes:
        ax.set_xticks(x, [f"$x_{j + 1}$" for j in x])
        ax.set_yscale("log")
        readable_log(ax)
    axes[0].set(ylabel=r"mean $|\hat f - f|$ along a sweep", title="values")
    axes[1].set(ylabel=r"mean $|\partial_j \hat f - \partial_j f|$ / mean $|\partial_j f|$",
                title="derivatives")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4)
    return fig


def sensitivity(res, names=("B6", "0", "sobol")):
    """Left: first-order indices of three targets (exact; bars) and of their networks (Monte Carlo,
    mean ± sd over seeds; black points). Right: every polynomial's relative derivative error per
    variable against the variable's total index."""
    table, per_var = res["sensitivity"], res["per_variable"]
    fig, axes = style.figure(1, 2, height=2.9)
    x, width = np.arange(6), 0.26
    for k, name in enumerate(names):
        rows = table[table.polynomial == name]
        at = x + (k - 1) * width
        axes[0].bar(at, rows.S_exact, width, color=colour(name), label=label(name).split(" (")[0])
        axes[0].errorbar(at, rows.S_net, yerr=rows.S_net_sd, fmt=".", color="k", ms=3, capsize=1.5)
    axes[0].set(xticks=x, ylabel="first-order index $S_j$")
    axes[0].set_xticks(x, [f"$x_{j + 1}$" for j in x])
    axes[0].legend(loc="upper right")
    for name in res["polynomials"]:
        v = per_var[per_var.polynomial == name]
        named = name in names
        axes[1].loglog(v.T_exact, v.partial_error_rel, "o" if named else ".", color=colour(name),
                       ms=4 if named else 4, alpha=1 if named else 0.6, zorder=3 if named else 2)
    axes[1].set(xlabel="total index $T_j$ of the target",
                ylabel=r"derivative error / mean $|\partial_j f|$")
    return fig


def sample_sizes(res, slopes):
    """Relative test MSE against the training-set size, both architectures; B6 solid, scrambles
    dashed; geometric mean over seeds with the min-max range as error bars."""
    summary = res["summary"]
    runs = summary[summary.chosen & summary.polynomial.isin(slopes.polynomial.unique())]
    runs = runs[(runs.kind == "size_sweep") | (runs.architecture == "resnet")]
    fig, ax = style.figure(1, 1, height=3.0, width=style.TEXT_WIDTH)
    for arch, (arch_label, c) in ARCH.items():
        for name in sorted(slopes.polynomial.unique(), key=lambda n: n != "B6"):
            g = runs[(runs.architecture == arch) & (runs.polynomial == name)]
            logs = np.log(g.final_test_mse_rel).groupby(g.n_train)
            mean = np.exp(logs.mean())
            lo, hi = np.exp(logs.min()), np.exp(logs.max())
            ax.errorbar(mean.index * (1.03 if name != "B6" else 1), mean.values,
                        yerr=[mean.values - lo.values, hi.values - mean.values],
                        fmt="o-" if name == "B6" else "s--", color=c, ms=4, capsize=2, lw=1,
                        alpha=1 if name == "B6" else 0.6,
                        label=f"{arch_label}, $B_6$" if name == "B6" else
                        f"{arch_label}, scrambles" if name == "0" else None)
    ax.set(xscale="log", yscale="log", xlabel="training-set size $n$", ylabel="test MSE / Var f")
    readable_log(ax, "x")
    readable_log(ax, "y")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right center")
    return fig


def terms_frame(terms: dict, sigmas: dict, latex_monomial):
    """B6's monomials term by term and, for each named scramble, its sigma_i (one-line notation,
    1-based: position k holds sigma_i(k)) and its monomial; cells hold math. ``terms``: name -> terms
    (with "B6"); ``sigmas``: name -> sigmas of the scrambles to show."""
    import pandas as pd
    rows = []
    for i, (c, e) in enumerate(terms["B6"]):
        row = {"i": str(i + 1), "coefficient": str(c), "B6": f"${latex_monomial(1, e)}$"}
        for name, sig in sigmas.items():
            row[f"sigma {name}"] = "(" + " ".join(str(s + 1) for s in sig[i]) + ")"
            row[f"monomial {name}"] = f"${latex_monomial(1, terms[name][i][1])}$"
        rows.append(row)
    return pd.DataFrame(rows)
