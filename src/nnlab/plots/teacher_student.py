"""Figures of the teacher/student chapter (Challenge 2A), drawn at reading size with nnlab.plots.style.

Losses are relative, MSE / Var y (the standardised loss the students train on); a student's size is
its parameter count. Runs are picked from ``res["summary"]``, whose ``run`` column indexes the curves.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from scipy import stats

from nnlab.plots import style
from nnlab.report import num, pm
from nnlab.specialisation import canonical, recovery_step

TEACHER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
CENTRAL_COLOURS = {"S_u": "tab:blue", "S_e": "tab:orange", "S_o": "tab:green"}
BUDGETS = {"steps": "equal steps", "compute": "equal compute"}


def _plain(ax, axis: str = "y"):
    """Log-axis ticks at 1, 2, 5 x 10^k written as plain numbers (0.2, 0.5, 1), no minor labels."""
    target = getattr(ax, f"{axis}axis")
    target.set_major_locator(LogLocator(subs=(1, 2, 5)))
    target.set_major_formatter(FuncFormatter(style.plain_number))
    target.set_minor_formatter(NullFormatter())


def label(name: str) -> str:
    """Mathtext name of a student: $S_e$, or $k = 0.5$ for a member of the width family."""
    return f"${name[0]}_{name[2]}$" if name.startswith("S_") else f"$k = {name[1:]}$"


def size_colours(res) -> dict:
    """A colour per student, ordered by size (plasma, dark = small)."""
    names = list(res["students"].student)
    return dict(zip(names, plt.get_cmap("plasma")(np.linspace(0, 0.8, len(names)))))


def chosen(res, name=None, budget="steps", noise=0.0, kind=None):
    """Rows of the runs at the chosen learning rate (noise: 1 / SNR, 0 for clean labels)."""
    s = res["summary"]
    rows = s[s.chosen & (s.budget == budget) & np.isclose(s.noise, noise)]
    rows = rows[rows.kind != "ablation"] if kind is None else rows[rows.kind == kind]
    return rows if name is None else rows[rows.student == name]


def budget_rows(res, rows, budget):
    """``rows`` at ``budget``; for the equal-compute reference student its equal-steps runs (the same
    runs: its equal-compute horizon is the equal-steps one)."""
    ref = res["students"].set_index("student").steps_equal_compute
    if budget == "steps":
        return rows[rows.budget == "steps"]
    return rows[(rows.budget == "compute") | ((rows.budget == "steps") & (rows.steps == rows.student.map(ref)))]


def first_run(res, name, budget="steps"):
    """The run of the first teacher and seed at the chosen rate."""
    rows = chosen(res, name, budget)
    return rows[(rows.teacher_seed == rows.teacher_seed.min()) & (rows.seed == rows.seed.min())].iloc[0]


def _anneal(ax, config, total):
    ax.axvspan(config.anneal_start * total, config.anneal_end * total, facecolor="none", edgecolor="grey",
               hatch="////", lw=0, label="learning rate decays")


def raw_curves(res, config):
    """The first teacher's and seed's training loss at every step (thin, light) under its means over
    log-spaced blocks, for S_u, S_e and S_o, from step 1."""
    fig, ax = style.figure(height=3.2)
    for name, colour in CENTRAL_COLOURS.items():
        raw = res[f"{name}_raw_loss"]
        ax.plot(np.arange(1, raw.size + 1), raw, color=colour, lw=0.3, alpha=0.3)
        r = first_run(res, name)
        ax.plot(res["curve_steps"][r.run], res["curves"][r.run], color=colour, lw=1.8, label=label(name))
    linear = res["teachers"].linear_mse_std.iloc[0]
    ax.axhline(linear, color="black", ls="--", lw=1, label="best affine predictor")
    _anneal(ax, config, config.steps)
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="training loss, MSE / Var $y$")
    _plain(ax)
    ax.legend(loc="lower left", ncol=2)
    return fig


def lr_grid(res):
    """Teacher-mean training loss over the last fifth against the learning rate, relative to the best
    rate of the grid, for every student; left equal steps, right equal compute. Ring: chosen rate."""
    colours = size_colours(res)
    fig, axes = style.figure(1, 2, height=3.4, sharey=True)
    sweep = res["summary"][res["summary"].kind == "sweep"]
    for ax, budget in zip(axes, BUDGETS):
        for name in colours:
            rows = budget_rows(res, sweep[sweep.student == name], budget)
            mean = rows.groupby("lr").final_train_loss_std.mean()
            ax.plot(mean.index, mean / mean.min(), "-o", ms=3, color=colours[name], label=label(name))
            best = mean.idxmin()
            ax.plot([best], [1.0], "o", ms=9, mfc="none", color=colours[name])
        ax.set(xscale="log", yscale="log", xlabel="learning rate", title=BUDGETS[budget])
        _plain(ax)
    axes[0].set_ylabel("loss / loss at the best rate")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4)
    return fig


def size_sweep(res):
    """Final test loss against parameter count, left at equal steps, right at equal compute: every
    run (colour = teacher) and the mean over runs with its sd (black)."""
    fig, axes = style.figure(1, 2, height=3.3, sharey=True)
    teachers = sorted(res["summary"].teacher_seed.unique())
    for ax, budget in zip(axes, BUDGETS):
        s = res["summary"]
        rows = budget_rows(res, s[s.chosen & (s.noise == 0) & s.kind.isin(["sweep", "seeds"])], budget)
        for i, t in enumerate(teachers):
            r = rows[rows.teacher_seed == t]
            ax.plot(r.params * np.exp(0.06 * (i - 1)), r.final_test_loss_std, ".", color=TEACHER_COLOURS[i],
                    alpha=0.7, label=f"teacher {t}")
        g = rows.groupby("params").final_test_loss_std
        ax.errorbar(g.mean().index, g.mean(), yerr=g.std().fillna(0), fmt="o-", color="black", ms=4,
                    lw=1, capsize=2, label="mean ± sd")
        for name in ("S_u", "S_o"):
            p = res["students"].set_index("student").params[name]
            ax.annotate(label(name), (p, g.mean()[p]), textcoords="offset points",
                        xytext=(4, -10) if name == "S_u" else (8, 0), ha="left",
                        va="top" if name == "S_u" else "center", fontsize=9)
        ax.axhline(res["teachers"].linear_mse_std.mean(), color="grey", ls="--", lw=1, label="affine predictor")
        ax.set(xscale="log", yscale="log", xlabel="parameters", title=BUDGETS[budget])
        _plain(ax)
    axes[0].set_ylabel("test MSE / Var $y$")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=5)
    return fig


def noise_sweep(res):
    """Final test loss (clean test labels) against parameter count at equal steps, trained on clean
    and on noisy labels: mean over teachers (first seed) with the teachers' spread."""
    fig, ax = style.figure(height=3.0)
    s = res["summary"]
    levels = [0.0, *sorted(n for n in s.noise.unique() if n > 0)]
    for i, noise in enumerate(levels):
        rows = chosen(res, budget="steps", noise=noise)
        rows = rows[rows.seed == rows.seed.min()]
        g = rows.groupby("params").final_test_loss_std
        text = "clean labels" if noise == 0 else f"noisy labels, SNR {1 / noise:g}"
        ax.errorbar(g.mean().index, g.mean(), yerr=g.std().fillna(0), fmt="o-", ms=4, lw=1, capsize=2,
                    color=("black", "tab:red", "tab:purple")[i], label=text)
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="test MSE / Var $y$")
    _plain(ax)
    ax.legend(loc="best")
    return fig


def loss_vs_compute(res, config):
    """Training loss (teacher mean of the first seed's block means) against training FLOPs for every
    student at its chosen equal-steps rate; the dotted line is the equal-compute budget."""
    colours = size_colours(res)
    fig, ax = style.figure(height=3.4)
    students = res["students"].set_index("student")
    for name in colours:
        rows = chosen(res, name, "steps", kind="sweep")
        steps = res["curve_steps"][rows.run.iloc[0]]
        shown = np.isfinite(steps)                           # the curves are NaN-padded
        steps, curves = steps[shown], res["curves"][rows.run.to_numpy()][:, shown]
        ax.plot(steps * students.flops_per_step[name], np.nanmean(curves, 0), color=colours[name], lw=1.3,
                label=label(name))
    budget = config.steps * students.flops_per_step[config.compute_reference]
    ax.axvline(budget, color="black", ls=":", lw=1, label="equal-compute budget")
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel="training loss, MSE / Var $y$")
    _plain(ax)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right center")
    return fig


def overlap_time(res, threshold: float):
    """First-layer overlap during training for S_e and S_o, per teacher: the mean over the teacher's
    75 units (solid) and the fraction of them above the recovery threshold (dashed)."""
    steps = res["overlap_steps"]
    fig, axes = style.figure(1, 2, height=3.0, sharey=True)
    for ax, name in zip(axes, ("S_e", "S_o")):
        for i, series in enumerate(res[f"{name}_overlap_series"]):
            colour = TEACHER_COLOURS[i]
            ax.plot(steps[1:], series[1:].mean(1), "-o", ms=3, color=colour, label=f"teacher {i}: mean overlap")
            ax.plot(steps[1:], (series[1:] > threshold).mean(1), "--", color=colour, label=f"teacher {i}: recovered")
            ax.axhline(series[0].mean(), color=colour, ls=":", lw=0.8)
        ax.set(xscale="log", xlabel="step", title=label(name), ylim=(0, 1))
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("overlap / fraction of units")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3)
    return fig


def recovery(res, threshold: float):
    """For every teacher first-layer unit (all teachers), the step from which its overlap stays above
    the threshold against the fraction of inputs on which it is active; never recovered: top row."""
    steps = res["overlap_steps"]
    fig, axes = style.figure(1, 2, height=3.0, sharey=True)
    activity = res["teacher_activity_L1"]
    never = steps[-1] * 4
    ticks = [10.0 ** k for k in range(int(np.log10(steps[-1])) + 1)] + [never]
    for ax, name in zip(axes, ("S_e", "S_o")):
        for i, series in enumerate(res[f"{name}_overlap_series"]):
            when = recovery_step(series, np.maximum(steps, 1), threshold)
            ax.plot(activity[i], np.where(np.isnan(when), never, when), "o", ms=3.5, alpha=0.7,
                    color=TEACHER_COLOURS[i], label=f"teacher {i}")
        ax.axhline(np.sqrt(never * steps[-1]), color="grey", lw=0.6)
        ax.set(yscale="log", xlabel="fraction of inputs it is active on", title=label(name))
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks[:-1]] + ["never"])
        ax.set_ylim(0.7, never * 1.6)
        ax.yaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("recovered from step")
    axes[1].legend(loc="center right")
    return fig


def matching(res, threshold: float, layer: int = 1):
    """Each teacher unit's overlap with its matched student unit at the end of training (colour, one
    dot per teacher, seed and unit) and at initialisation (grey), against how often it is active."""
    names = ("S_u", "S_e", "S_o") if layer == 1 else ("S_e", "S_o")
    fig, axes = style.figure(1, len(names), height=2.9, sharey=True)
    activity = res[f"teacher_activity_L{layer}"]
    for ax, name in zip(axes, names):
        for key, colour in ((f"{name}_overlap_L{layer}_init", "grey"), (f"{name}_overlap_L{layer}", CENTRAL_COLOURS[name])):
            cos = res[key]                                   # (teachers, seeds, units)
            x = np.broadcast_to(activity[:, None, :], cos.shape)
            ax.plot(x.ravel(), cos.ravel(), ".", ms=3, alpha=0.5, color=colour)
        ax.axhline(threshold, color="black", lw=0.8, ls="--")
        ax.set(title=label(name), xlabel="fraction of inputs it is active on")
    axes[0].set_ylabel("overlap of a teacher unit")
    return fig


def student_layers(res, name: str, seed_index: int):
    """One trained student's layers (first teacher; teacher's units) as float64 numpy (W, b) pairs."""
    n = sum(1 for k in res.keys() if k.startswith(f"{name}_weight_L"))
    return [(res[f"{name}_weight_L{l}"][seed_index].astype(float),
             res[f"{name}_bias_L{l}"][seed_index].astype(float)) for l in range(1, n + 1)]


def teacher_layers(res):
    return [(res[f"T_weight_L{l}"].astype(float), res[f"T_bias_L{l}"].astype(float)) for l in range(1, 5)]


def _trimmed_range(samples, q=0.005):
    """From the lowest to the highest of the samples' own central 1 - 2q quantile ranges."""
    ranges = np.array([np.quantile(np.ravel(s), [q, 1 - q]) for s in samples])
    return ranges[:, 0].min(), ranges[:, 1].max()


def pooled(res):
    """All weights (left) and all biases (right) of each trained student (first teacher, all seeds)
    and of the teacher, signed, as densities over the central 99 % of the pooled values; top raw
    (teacher's units), bottom canonical."""
    seeds = len(res["S_e_weight_L1"])
    fig, axes = style.figure(2, 2, height=5.2)
    for row, form in enumerate(("raw", "canonical")):
        nets = {name: [student_layers(res, name, s) for s in range(seeds)] for name in CENTRAL_COLOURS}
        teacher = teacher_layers(res)
        if form == "canonical":
            nets = {n: [canonical(ls) for ls in v] for n, v in nets.items()}
            teacher = canonical(teacher)
        for col in range(2):
            ax = axes[row, col]
            samples = {n: np.concatenate([np.ravel(p[col]) for ls in v for p in ls]) for n, v in nets.items()}
            samples["teacher"] = np.concatenate([np.ravel(p[col]) for p in teacher])
            lo, hi = _trimmed_range(samples.values())
            bins = np.linspace(lo, hi, 60)
            for name, values in samples.items():
                ax.hist(values, bins=bins, density=True, histtype="step", lw=1.8 if name == "teacher" else 1.2,
                        color=CENTRAL_COLOURS.get(name, "black"), label=label(name) if name != "teacher" else "teacher")
            ax.set(title=f"{form} {'weights' if col == 0 else 'biases'}", xlabel="value")
        axes[row, 0].set_ylabel("density")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=4)
    return fig


def layer_distributions(res, name: str, kinds=("weights", "biases"), ncols: int | None = None,
                        form: str = "canonical"):
    """Per layer, the weights and/or biases of the trained student (first teacher, all seeds; raw in
    the teacher's units, or canonical) against the teacher's layer of the same shape (black) and
    N(0, 1) (grey), one panel each, in rows of ``ncols`` panels (default: one row per kind); a layer
    with fewer than 60 values per seed is drawn as a strip of points."""
    seeds = len(res[f"{name}_weight_L1"])
    students = [student_layers(res, name, s) for s in range(seeds)]
    teacher = teacher_layers(res)
    if form == "canonical":
        students, teacher = [canonical(ls) for ls in students], canonical(teacher)
    twins = {W.shape: (W, b) for W, b in teacher}
    n = len(students[0])
    panels = [(l, ("weights", "biases").index(k)) for k in kinds for l in range(n)]
    ncols = ncols or n
    nrows = -(-len(panels) // ncols)
    fig, axes = style.figure(nrows, ncols, height=2.2 * nrows, squeeze=False)
    colour = CENTRAL_COLOURS[name]
    rng = np.random.default_rng(0)
    for ax, (l, row) in zip(axes.flat, panels):
        twin = twins.get(students[0][l][0].shape)
        values = np.concatenate([np.ravel(ls[l][row]) for ls in students])
        reference = None if twin is None else np.ravel(twin[row])
        if values.size < 60 * seeds:                     # a few dozen values per seed: every value
            ax.plot(values, rng.uniform(0.6, 1.4, values.size), "o", ms=3, color=colour, alpha=0.7)
            if reference is not None:
                ax.plot(reference, rng.uniform(-0.4, 0.4, reference.size), "o", ms=3, color="black", alpha=0.7)
            ax.set(yticks=[0, 1], yticklabels=["T", "S"], ylim=(-1, 2))
            ax.grid(False, axis="y")
        else:
            lo, hi = _trimmed_range([values] + ([reference] if reference is not None else []))
            if form == "canonical":
                lo, hi = min(lo, -3.0), max(hi, 3.0)
            bins = np.linspace(lo, hi, 40)
            ax.hist(values, bins=bins, density=True, color=colour, alpha=0.6, label=label(name))
            if reference is not None:
                ax.hist(reference, bins=bins, density=True, histtype="step", color="black", label="teacher")
            grid = np.linspace(lo, hi, 200)
            ax.plot(grid, stats.norm.pdf(grid), color="grey", lw=1, label="$N(0, 1)$")
            ax.set_ylabel("density")
        ax.set_title(f"layer {l + 1} {('weights', 'biases')[row]}", fontsize=9)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    handles = {lab: h for ax in axes.flat for h, lab in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=3)
    return fig


# ------------------------------------------------------------------------------- tables and summaries

def lr_table(res, config) -> pd.DataFrame:
    """Per student and budget: the chosen rate, whether it is at the edge of the grid, and the largest
    relative excess of the loss at its grid neighbours."""
    sweep = res["summary"][res["summary"].kind == "sweep"]
    rows = []
    for (name, budget), g in sweep.groupby(["student", "budget"]):
        mean = g.groupby("lr").final_train_loss_std.mean()
        i = int(np.argmin(mean.to_numpy()))
        around = [mean.iloc[j] for j in (i - 1, i + 1) if 0 <= j < len(mean)]
        rows.append({"student": name, "budget": budget, "lr": mean.index[i],
                     "at_edge": mean.index[i] in (min(config.lrs), max(config.lrs)),
                     "neighbour_excess": max(around) / mean.iloc[i] - 1 if around else np.nan})
    return pd.DataFrame(rows)


def edge_sentence(edge) -> str:
    """Which chosen rates lie at the edge of the grid, in words."""
    if edge.empty:
        return "every chosen rate lies inside the grid, so the grid brackets the optimum"
    which = ", ".join(f"{label(r.student)} ({BUDGETS[r.budget]})" for r in edge.itertuples())
    if len(edge) == 1:
        return f"the rate chosen for {which} lies at the edge of the grid, so its optimum may lie outside it"
    return f"the rates chosen for {which} lie at the edge of the grid, so their optima may lie outside it"


def small_rate_sentence(lr_rows) -> str:
    """The smallest student's chosen rate at equal compute against equal steps, in words."""
    r = lr_rows.set_index(["student", "budget"]).lr
    if r["S_u", "compute"] == r["S_u", "steps"]:
        return f"the same rate at both budgets ($S_u$: {num(r['S_u', 'steps'])})"
    return f"{num(r['S_u', 'compute'])} at equal compute against {num(r['S_u', 'steps'])} at equal steps ($S_u$)"


def size_table(res, noise: float = 0.0, seeds=None):
    """Final relative test loss per (budget, student) at the chosen rate: mean and sd over runs."""
    s = res["summary"]
    rows = s[s.chosen & np.isclose(s.noise, noise) & s.kind.isin(["sweep", "seeds", "noise"])]
    rows = rows if seeds is None else rows[rows.seed.isin(seeds)]
    parts = {b: budget_rows(res, rows, b).groupby("student").final_test_loss_std.agg(["mean", "std", "count"])
             for b in BUDGETS}
    out = pd.concat(parts, names=["budget", "student"]).rename(columns={"mean": "test", "std": "sd"})
    return out


def spread(rows) -> tuple[float, float]:
    """(sd of the teacher means, root mean within-teacher variance) of the final test loss."""
    g = rows.groupby("teacher_seed").final_test_loss_std
    within = np.sqrt(np.nanmean(g.var(ddof=1))) if (g.count() > 1).any() else np.nan
    return float(g.mean().std(ddof=1)), float(within)


def off_family(size_steps, name: str, res) -> str:
    """Whether an off-family student's mean loss is above or below the family member nearest in size."""
    params = res["students"].set_index("student").params
    family = [n for n in params.index if n not in ("S_u", "S_o")]
    nearest = min(family, key=lambda n: abs(np.log(params[n] / params[name])))
    r = size_steps.test[name] / size_steps.test[nearest]
    word = "above" if r > 1.1 else "below" if r < 1 / 1.1 else "close to"
    return (f"{word} the family member of nearest size, {label(nearest)} ({num(size_steps.test[name])} "
            f"against {num(size_steps.test[nearest])})")


def rank_correlation(a, b) -> float:
    """Spearman correlation of two series aligned on their index."""
    a, b = a.align(b, join="inner")
    return float(stats.spearmanr(a, b).statistic)


def input_table(res):
    """S_e's last-fifth training loss per learning rate, on standardised and on raw inputs (first
    teacher and seed)."""
    s = res["summary"]
    raw = s[s.kind == "ablation"]
    t, seed = raw.teacher_seed.iloc[0], raw.seed.iloc[0]
    std = s[(s.kind == "sweep") & (s.student == "S_e") & (s.teacher_seed == t) & (s.seed == seed)]
    return pd.DataFrame({"standardised": std.set_index("lr").final_train_loss_std,
                         "raw": raw.set_index("lr").final_train_loss_std}).rename_axis("lr")


def distance_summary(res):
    """Weight rows of the distance table, mean over seeds: (network, form, layer) -> W1 and KS to the
    first teacher, W1 at initialisation, excess kurtosis. Network "T": the other teachers."""
    d = res["distances"]
    d = d[(d.kind == "weight") & d.layer.isin(["L1", "all"])]
    cols = ["w1_teacher", "ks_teacher", "kurtosis"]
    first = d[d.student == "T"].teacher_seed.min()
    teachers = d[(d.student == "T") & (d.teacher_seed != first)].groupby(["form", "layer"])[cols].mean()
    teachers["w1_teacher_init"] = np.nan
    trained = d[d.stage == "trained"].groupby(["student", "form", "layer"])[cols].mean()
    init = d[d.stage == "init"].groupby(["student", "form", "layer"]).w1_teacher.mean()
    trained["w1_teacher_init"] = init
    return pd.concat([trained, pd.concat({"T": teachers}, names=["student"])])


def floors(res, form: str = "canonical") -> tuple[float, float]:
    """First-layer weights: the first teacher's W1 distance to N(0, 1) as drawn (the one-sample floor)
    and the mean W1 distance of the other teachers to the first in ``form`` (the two-sample floor)."""
    d = res["distances"]
    d = d[(d.student == "T") & (d.kind == "weight") & (d.layer == "L1")]
    first = d.teacher_seed.min()
    one = d[(d.teacher_seed == first) & (d.form == "raw")].w1_normal.iloc[0]
    two = d[(d.teacher_seed != first) & (d.form == form)].w1_teacher.mean()
    return float(one), float(two)


def distance_table(res):
    """The rows of the distance summary that the chapter discusses, for a table."""
    t = distance_summary(res).dropna(subset=["w1_teacher"]).reset_index()   # layers the teacher has
    t["name"] = [label(n) if n != "T" else "second teacher" for n in t.student]
    t["layer"] = t.layer.map({"L1": "first layer", "all": "all"})
    return t.sort_values(["form", "layer"], ascending=[False, False], kind="stable")


def recovery_table(res, config):
    """Per S_e / S_o run with snapshots: the first snapshot step at which half of the finally
    recovered first-layer units are above the threshold, the fraction of the units recovered by the
    middle snapshot that switch (active on 10-90 % of the inputs), and the fractions of switching and
    of other units never recovered."""
    steps = res["overlap_steps"]
    activity = res["teacher_activity_L1"]
    rows = []
    for name in ("S_e", "S_o"):
        for i, series in enumerate(res[f"{name}_overlap_series"]):
            above = series > config.match_cos
            n_final = above[-1].sum()
            half = steps[np.argmax(above.sum(1) >= max(1, n_final / 2))]
            when = recovery_step(series, steps, config.match_cos)
            early = when <= steps[len(steps) // 2]
            switching = (activity[i] > 0.1) & (activity[i] < 0.9)
            rows.append({"student": name, "teacher": i, "half_step": half,
                         "early_switching": (early & switching).sum() / early.sum() if early.any() else np.nan,
                         "never_switching": np.isnan(when[switching]).mean(),
                         "never_other": np.isnan(when[~switching]).mean()})
    return pd.DataFrame(rows)


def central_table(res, config):
    """The seed's three students at equal steps: test loss, its spread between and within teachers,
    the constant-rate and last-fifth changes, and the recovered units of both layers."""
    clean = chosen(res)
    rows = []
    for name in CENTRAL_COLOURS:
        r = clean[clean.student == name]
        between, within = spread(r)
        rec1 = (res[f"{name}_overlap_L1"] > config.match_cos).sum(-1)
        rec2 = (res[f"{name}_overlap_L2"] > config.match_cos).sum(-1) if f"{name}_overlap_L2" in res.keys() else None
        rows.append({"name": label(name), "test": pm(r.final_test_loss_std.mean(), r.final_test_loss_std.std()),
                     "between": num(between, 2), "within": num(within, 2),
                     "constant": pm(100 * r.constant_change_100.mean(), 100 * r.constant_change_100.std()) + " %",
                     "last": pm(100 * r.train_change.mean(), 100 * r.train_change.std()) + " %",
                     "recovered_l1": num(rec1.mean(), 3), "recovered_l2": "–" if rec2 is None else num(rec2.mean(), 3)})
    return pd.DataFrame(rows)
