"""Figures and tables of the teacher/student chapter (Challenge 2A). Losses are drawn relative to the
teacher's output variance (MSE / Var y, the standardised loss the students train on); the teacher's
units are that times ``target_std**2``."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from nnlab.experiments.teacher_student import STUDENTS, canonical

COLOURS = {"S_u": "tab:blue", "S_e": "tab:orange", "S_o": "tab:green", "T": "black"}


def _baselines(ax, res):
    ax.axhline(res["linear_mse"] / res["target_std"] ** 2, color="grey", ls="--", lw=1)
    ax.axhline(res["mean_predictor_mse"] / res["target_std"] ** 2, color="grey", ls=":", lw=1)


def lr_sweep(res):
    """Left: the sweep's training curves of the first seed; right: mean training loss over the last
    fifth of the sweep against the learning rate (line = mean over seeds, dots = seeds), the test
    loss of the same runs (squares) and the chosen learning rate (ring)."""
    sweep, lrs = res["sweep"], sorted(res["sweep"]["lr"].unique())
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3), layout="constrained")
    shades = plt.cm.viridis(np.linspace(0, 0.9, len(lrs)))
    for ax, name in zip(axes, STUDENTS):
        for lr, shade, curve in zip(lrs, shades, res[f"{name}_sweep_train"][:, 0]):
            ax.plot(res[f"{name}_sweep_steps"], curve, color=shade, lw=1, label=f"{lr:.2g}")
        _baselines(ax, res)
        ax.set(yscale="log", xlabel="step", title=f"{name}: sweep, seed {sweep['seed'].iloc[0]}")
        rows = sweep[sweep.student == name]
        mean = rows.groupby("lr")["tail_train_loss_std"].mean()
        test = rows.groupby("lr")["test_loss_std"].mean()
        c = COLOURS[name]
        axes[3].plot(mean.index, mean.values, "-", color=c, label=f"{name} ({rows.steps.iloc[0]:,} steps)")
        axes[3].plot(rows.lr, rows.tail_train_loss_std, ".", color=c, alpha=0.6)
        axes[3].plot(test.index, test.values, "s", color=c, mfc="none", ms=5)
        axes[3].plot([res["lr"][name]], [mean[res["lr"][name]]], "o", color=c, mfc="none", ms=12)
    axes[0].set_ylabel("MSE / Var y")
    axes[0].legend(title="lr", fontsize="x-small", ncol=2)
    axes[3].set(xscale="log", yscale="log", xlabel="learning rate", title="last fifth of the sweep")
    axes[3].legend(fontsize="x-small")
    return fig


def learning_curves(res, config):
    """Final runs: training loss (block means over the steps, line = mean over seeds, band = min..max)
    and test loss (markers); the learning-rate decay is hatched, the last fifth shaded."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True, layout="constrained")
    for ax, name in zip(axes, STUDENTS):
        c, train = COLOURS[name], res[f"{name}_train"]
        x = res[f"{name}_train_steps"]
        ax.plot(x, train.mean(0), color=c, lw=1, label="training (fresh batches)")
        ax.fill_between(x, train.min(0), train.max(0), color=c, alpha=0.25, lw=0)
        steps, test = res[f"{name}_test_steps"], res[f"{name}_test"]
        ax.plot(steps[1:], test[:, 1:].T, "k.", ms=3)
        ax.plot([], [], "k.", label="test set")
        total = steps[-1]
        ax.axvspan(config.anneal_start * total, config.anneal_end * total, facecolor="none",
                   edgecolor="grey", hatch="////", lw=0, label=f"lr decays × {config.anneal_factor:g}")
        ax.axvspan(0.8 * total, total, color="grey", alpha=0.15, lw=0, label="last fifth")
        _baselines(ax, res)
        ax.set(xscale="log", yscale="log", xlabel="step", title=f"{name}, lr = {res['lr'][name]:.2g}")
    axes[0].set_ylabel("MSE / Var y")
    axes[0].legend(fontsize="x-small", loc="lower left")
    return fig


def settling(res, config):
    """The last three fifths of every final run on linear axes, each seed's losses divided by their
    mean over the last fifth: training block means (thin), fifth means (thick steps), test losses
    (dots), and the band of the quasi-stationarity criterion around 1."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True, layout="constrained")
    tol = config.stationary_tol
    for ax, name in zip(axes, STUDENTS):
        x, train = res[f"{name}_train_steps"], res[f"{name}_train"].astype(float)
        steps, test = res[f"{name}_test_steps"], res[f"{name}_test"].astype(float)
        total = steps[-1]
        shown, test_shown = x >= 0.4 * total, steps >= 0.4 * total
        shades = plt.cm.Greys(np.linspace(0.45, 0.85, len(train)))
        for shade, loss, test_loss in zip(shades, train, test):
            last = loss[x >= 0.8 * total].mean()
            ax.plot(x[shown], loss[shown] / last, color=COLOURS[name], lw=0.6, alpha=0.5)
            for lo in (0.4, 0.6, 0.8):
                fifth = (x >= lo * total) & (x < (lo + 0.2) * total)
                ax.plot([lo * total, (lo + 0.2) * total], [loss[fifth].mean() / last] * 2, color=shade, lw=2.5)
            ax.plot(steps[test_shown], test_loss[test_shown] / test_loss[steps >= 0.8 * total].mean(), ".",
                    color=shade, ms=4)
        ax.axhspan(1 - tol, 1 + tol, color="tab:red", alpha=0.25, lw=0)
        ax.axvspan(max(0.4, config.anneal_start) * total, config.anneal_end * total, facecolor="none",
                   edgecolor="grey", hatch="////", lw=0)
        ax.set(xlabel="step", title=name, ylim=(0.9, 1.12))
        ax.ticklabel_format(axis="x", style="sci", scilimits=(3, 3))
    axes[0].plot([], [], color="grey", lw=2.5, label="fifth means (seeds)")
    axes[0].plot([], [], ".", color="grey", label="test set")
    axes[0].axhspan(0, 0, color="tab:red", alpha=0.25, label=f"±{100 * tol:g} %")
    axes[0].set_ylabel("loss / mean over last fifth")
    axes[0].legend(fontsize="x-small", loc="upper right")
    return fig


def student_layers(res, name: str, seed_index: int):
    """One trained student's layers (teacher units) as float64 numpy (W, b) pairs."""
    n = len(STUDENTS[name].layers)
    return [(res[f"{name}_weight_L{l}"][seed_index].astype(float),
             res[f"{name}_bias_L{l}"][seed_index].astype(float)) for l in range(1, n + 1)]


def teacher_layers(res):
    return [(res[f"T_weight_L{l}"].astype(float), res[f"T_bias_L{l}"].astype(float)) for l in range(1, 5)]


def layer_distributions(res, name: str, form: str = "canonical"):
    """Per layer (columns) the weights (top) and biases (bottom) of the trained student, pooled over
    seeds, against the teacher's layer of identical shape (black step) and N(0, 1) (grey line)."""
    seeds = range(len(res["summary"].query("student == @name")))
    students = [student_layers(res, name, s) for s in seeds]
    teacher = teacher_layers(res)
    if form == "canonical":
        students, teacher = [canonical(ls) for ls in students], canonical(teacher)
    twins = {W.shape: (W, b) for W, b in teacher}
    n = len(students[0])
    fig, axes = plt.subplots(2, n, figsize=(2.5 * n + 1, 4.2), layout="constrained", squeeze=False)
    for l in range(n):
        for row, kind in enumerate(("weight", "bias")):
            ax = axes[row, l]
            values = np.concatenate([np.ravel(ls[l][row]) for ls in students])
            # trim the outermost 1 % of a large sample; a small one (an output bias per seed) is drawn whole
            lo, hi = np.quantile(values, [0.005, 0.995]) if values.size >= 200 else (values.min(), values.max())
            twin = twins.get(students[0][l][0].shape)
            if twin is not None:
                lo, hi = min(lo, twin[row].min()), max(hi, twin[row].max())
            lo, hi = min(lo, -3.0), max(hi, 3.0)
            bins = np.linspace(lo, hi, 40)
            ax.hist(values, bins=bins, density=True, color=COLOURS[name], alpha=0.6, label=name)
            if twin is not None:
                ax.hist(np.ravel(twin[row]), bins=bins, density=True, histtype="step", color="black",
                        label="teacher")
            grid = np.linspace(lo, hi, 200)
            ax.plot(grid, stats.norm.pdf(grid), color="grey", lw=1, label="N(0, 1)")
            W = students[0][l][0]
            ax.set_title(f"L{l + 1} {'weights' if row == 0 else 'biases'} ({W.shape[1]}→{W.shape[0]})", fontsize="small")
            ax.set_yticks([])
    handles = {label: h for ax in axes.flat for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize="small")
    return fig


def pooled_distributions(res, form: str = "raw"):
    """Magnitudes of all weights (left) and all biases (right) of each trained student, pooled over
    layers and seeds, against the teacher's (black): share of values per logarithmic bin."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.3), sharey=True, layout="constrained")
    teacher = teacher_layers(res)
    teacher = canonical(teacher) if form == "canonical" else teacher
    bins = np.logspace(-5, 3, 65)
    for col, ax in enumerate(axes):
        for name in STUDENTS:
            seeds = range(len(res["summary"].query("student == @name")))
            layers = [student_layers(res, name, s) for s in seeds]
            layers = [canonical(ls) for ls in layers] if form == "canonical" else layers
            values = np.abs(np.concatenate([np.ravel(p[col]) for ls in layers for p in ls]))
            ax.hist(values, bins=bins, weights=np.full(values.size, 1 / values.size), histtype="step",
                    color=COLOURS[name], label=name)
        values = np.abs(np.concatenate([np.ravel(p[col]) for p in teacher]))
        ax.hist(values, bins=bins, weights=np.full(values.size, 1 / values.size), histtype="step",
                color="black", lw=2, label="teacher")
        ax.set(xscale="log", xlabel=f"|{'weight' if col == 0 else 'bias'}|",
               title=f"all {'weights' if col == 0 else 'biases'} ({form})")
    axes[0].set_ylabel("share of values per bin")
    axes[0].legend(fontsize="x-small")
    return fig


def matching(res, threshold: float = 0.9):
    """Each teacher first-layer unit's best Hungarian-matched student cosine against the fraction of
    test inputs on which the teacher unit is active; grey = the same matching at initialisation."""
    activity = res["teacher_activity_L1"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3), sharey=True, layout="constrained")
    for ax, name in zip(axes, STUDENTS):
        for cos in res[f"{name}_matched_cos_init"]:
            ax.plot(activity, cos, ".", color="grey", alpha=0.5, ms=4)
        for cos in res[f"{name}_matched_cos"]:
            ax.plot(activity, cos, ".", color=COLOURS[name], alpha=0.7, ms=5)
        ax.axhline(threshold, color="black", lw=0.8, ls="--")
        ax.set(xlabel="teacher unit active on fraction of inputs", title=name)
    axes[0].set_ylabel("cosine to matched student unit")
    return fig


def mean_sd(values, fmt: str = "{:.3g}") -> str:
    """'mean ± sd' over seeds (sample sd)."""
    values = np.asarray(values, dtype=float)
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1) if values.size > 1 else 0.0)}"


def summary_table(res) -> pd.DataFrame:
    """Per student: parameters, learning rate, steps, final losses as mean ± sd over seeds, the
    quasi-stationarity changes and the recovered first-layer units."""
    rows = []
    for name, g in res["summary"].groupby("student", sort=False):
        rows.append({"student": name, "parameters": int(g.params.iloc[0]),
                     "lr": f"{g.lr.iloc[0]:.2g}", "steps": int(g.steps.iloc[0]),
                     "test MSE (teacher units)": mean_sd(g.final_test_loss),
                     "test MSE / Var y": mean_sd(g.final_test_loss_std),
                     "train change, constant lr": mean_sd(100 * g.constant_change, "{:.1f}") + " %",
                     "train change, last fifth": mean_sd(100 * g.train_change, "{:.2f}") + " %",
                     "test change, last fifth": mean_sd(100 * g.test_change, "{:.2f}") + " %",
                     "units recovered (of 75)": mean_sd(g.recovered, "{:.1f}")})
    return pd.DataFrame(rows).set_index("student")


def distance_table(res, stage: str = "trained", form: str = "raw") -> pd.DataFrame:
    """The distances table averaged over seeds, one row per (student, layer, kind), the teacher's own
    rows (its distances to N(0, 1) are the finite-sample floor) first."""
    d = res["distances"]
    d = d[((d.stage == stage) | (d.student == "T")) & (d.form == form)]
    cols = ["n", "mean", "std", "kurtosis", "w1_teacher", "ks_teacher", "w1_normal", "ks_normal"]
    table = d.groupby(["student", "layer", "kind"], sort=False)[cols].mean()
    return table.astype({"n": int})
