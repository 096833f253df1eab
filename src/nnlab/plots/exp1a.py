"""Figures and small helpers of the Experiment 1A chapter, drawn from the cached ``exp1a`` result.

Every figure is drawn at the width it is shown (:mod:`nnlab.plots.style`); panels are titled in words
("$f_1$, h = 3, lr = 1"), never with the run codes ("f1/3/1/1000") the experiment uses as keys.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from nnlab import basic_net as bn
from nnlab.experiments.exp1a import VARIANTS, parse
from nnlab.plots import style
from nnlab.report import num

VARIANT_NAMES = {"reversed": "samples summed in reverse", "no_fma": "no fused multiply-add",
                 "float32": "float32", "notebook": "notebook's arithmetic"}


# ------------------------------------------------------------------------------ runs and numbers
def name(run: str) -> str:
    """A run as the text writes it: ``f2/8/0.1/1200/R1`` → ``(f₂, 8, 0.1, 1200), data R1``."""
    spec = parse(run)
    text = f"(f{'₁' if spec.f == 'f1' else '₂'}, {spec.h}, {spec.lr:g}, {spec.epochs})"
    return text if spec.data == "standard" else f"{text}, data {spec.data}"


def title(run: str, epochs: bool = False) -> str:
    """A short panel title: ``$f_2$, h = 8, lr = 0.1`` (+ epochs, + new data)."""
    spec = parse(run)
    text = f"$f_{spec.f[1]}$, h = {spec.h}, lr = {spec.lr:g}"
    if epochs:
        text += f", {spec.epochs} epochs"
    return text if spec.data == "standard" else f"{text}, {spec.data}"


def value(res, run: str, column: str):
    """A number of the summary table (NaN when the run is not there)."""
    row = res["summary"].set_index("run")
    return row.loc[run, column] if run in row.index else np.nan


def seed_value(res, run: str) -> str:
    """The number seed 001 quotes for ``run``, as it prints it."""
    hit = res["seed_check"][res["seed_check"]["run"] == run]
    if not len(hit):
        return "–"
    quoted = hit["seed"].iloc[0]
    return num(quoted, 5) if quoted < 1e4 else num(quoted, 2)


def first(table, column: str, default=np.nan, **match):
    """``column`` of the first row of ``table`` matching ``match`` (``default`` when there is none)."""
    hit = table
    for key, val in match.items():
        hit = hit[hit[key] == val]
    return hit[column].iloc[0] if len(hit) else default


def epoch(e) -> str:
    """An epoch for a table cell: empty for NaN, "never" for the −1 of "the loss never rose"."""
    return "" if e != e else ("never" if e < 0 else num(e))


def trajectory(res, run: str) -> SimpleNamespace:
    """The recorded curves of one run (label as the seed writes it), cut to its epochs."""
    spec = parse(run)
    key = res["trainings"][run]
    row = res["summary"].set_index("run")
    epochs = int(row.loc[run, "epochs"]) if run in row.index else len(res[f"{key}__test_error"]) - 1
    stored = res[f"{key}__params_epochs"]
    keep = stored <= epochs
    return SimpleNamespace(
        run=run, f=spec.f, h=spec.h, lr=spec.lr, epochs=epochs, key=key,
        test=res[f"{key}__test_error"][: epochs + 1], train=res[f"{key}__train_error"][: epochs + 1],
        params=res[f"{key}__params"][keep].astype(float), params_epochs=stored[keep],
        gradient_norm=res[f"{key}__gradient_norm"][:epochs], gradient_angle=res[f"{key}__gradient_angle"][: epochs - 1])


# ------------------------------------------------------------------------------------- panels
def plot_targets(axs):
    """f1 and f2 with the standard training and test inputs."""
    x_train, x_test = bn.data()
    grid = np.linspace(-5, 5, 400)
    for ax, (fname, f) in zip(axs, bn.TARGETS.items()):
        ax.plot(grid, f(grid), "k", lw=1, label=f"$f_{fname[1]}$")
        ax.plot(x_train, f(x_train), ".", ms=2, color="tab:red", label="training set")
        ax.plot(x_test, f(x_test), "o", ms=3, mfc="none", color="tab:blue", label="test set")
        ax.set(xlabel="$x$", title=f"$f_{fname[1]}$")
    axs[0].legend(loc="upper left")


def plot_error(ax, res, run: str, train: bool = False, title_text: str | None = None, label: str | None = None,
               marks: bool = True, **line):
    """Semi-log test-error curve, with the last (dot) and the lowest (cross) test errors marked."""
    t = trajectory(res, run)
    ax.semilogy(t.test, lw=1, label=label or "test error", **line)
    if train:
        ax.semilogy(t.train, lw=1, label="training error")
    if marks:
        finite = np.flatnonzero(np.isfinite(t.test))
        last, best = finite[-1], int(np.nanargmin(t.test))
        ax.plot(last, t.test[last], "o", color="tab:red", ms=4)
        ax.plot(best, t.test[best], "x", color="black", ms=7, mew=1.5)
    ax.set(xlabel="epoch", ylabel="test error", title=title_text if title_text is not None else title(run))
    style.log_ticks(ax)


def plot_learned(ax, res, run: str, which: int | str = "last", title_text: str | None = None):
    """The function the network computes at an epoch ("last", "best" or a number) against the target."""
    t = trajectory(res, run)
    e = {"last": t.params_epochs[-1], "best": int(np.nanargmin(t.test))}.get(which, which)
    i = int(np.searchsorted(t.params_epochs, e))
    U, V = bn.unflatten(t.params[i], t.h)
    grid = np.linspace(-5, 5, 400)
    ax.plot(grid, bn.TARGETS[t.f](grid), "k", lw=1, label="target")
    ax.plot(grid, bn.forward(U, V, grid)[1], color="tab:orange", label="network")
    ax.set(xlabel="$x$", title=title_text if title_text is not None else f"epoch {t.params_epochs[i]}")


def plot_weights(ax, res, run: str, part: str = "U", units=None, column: int | None = None,
                 until: int | None = None, title_text: str | None = None, legend: bool = True):
    """Evolution of $U_{i,j}$ (``part="U"``; solid j = 0, dashed j = 1, optionally one ``column``) or
    $V_i$, one colour per hidden unit i."""
    t = trajectory(res, run)
    U, V = bn.unflatten(t.params, t.h)
    stop = np.searchsorted(t.params_epochs, until, side="right") if until is not None else None
    ep = t.params_epochs[:stop]
    units = range(t.h - 1 if part == "U" else t.h) if units is None else units
    colors = plt_colors()
    for k, i in enumerate(units):
        color = colors[i % len(colors)]
        if part == "V":
            ax.plot(ep, V[:stop, 0, i], lw=1, color=color, label=f"$V_{{{i}}}$")
        else:
            for j in (0, 1) if column is None else (column,):
                ax.plot(ep, U[:stop, i, j], lw=1, color=color, ls="-" if j == 0 else "--",
                        label=f"$U_{{{i},{j}}}$")
    default = {"U": "$U$", "V": "$V$"}[part]
    ax.set(xlabel="epoch", ylabel="weight", title=title_text if title_text is not None else default)
    if legend:  # below the panel, off the curves
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=min(len(ax.lines), 3),
                  handlelength=1.2, columnspacing=0.8, borderaxespad=0)


def plt_colors():
    import matplotlib as mpl
    return mpl.rcParams["axes.prop_cycle"].by_key()["color"]


def plot_gradient(ax_norm, ax_angle, res, run: str, window=None):
    """Norm of the gradient and angle between consecutive gradients (degrees) over ``window`` epochs."""
    t = trajectory(res, run)
    lo, hi = window or (0, t.epochs)
    ep = np.arange(lo, min(hi, t.epochs))
    ax_norm.semilogy(ep, t.gradient_norm[ep], lw=1)
    ax_norm.set(xlabel="epoch", ylabel="gradient norm", title=title(run))
    ep = ep[ep < t.epochs - 1]
    ax_angle.plot(ep + 1, t.gradient_angle[ep], ".", ms=2)
    ax_angle.set(xlabel="epoch", ylabel="angle (degrees)", ylim=(-5, 185), yticks=[0, 90, 180])


def plot_sharpness(ax, res, run: str):
    """Sharpness along a run against the stability limit 2/lr, episodes' crossing and onset marked."""
    t = trajectory(res, run)
    ax.plot(res[f"{t.key}__sharpness_epochs"], res[f"{t.key}__sharpness"], lw=1, label=r"sharpness $\lambda$")
    ax.axhline(2 / t.lr, color="k", ls="--", lw=1, label="2 / lr")
    episodes = res["episodes"]
    for _, e in episodes[episodes["run"] == run].iterrows():
        ax.axvline(e["crossing"], color="tab:green", lw=0.8)
        if e["onset"] >= 0:
            ax.axvline(e["onset"], color="tab:red", lw=0.8, ls=":")
    ax.plot([], [], color="tab:green", lw=0.8, label=r"$\lambda$ reaches 2/lr")
    ax.plot([], [], color="tab:red", lw=0.8, ls=":", label="loss first rises")
    ax.set(xlabel="epoch", title=title(run))


def plot_separation(ax, res, run: str):
    """Distance of the numerical variants from the notebook trajectory, with the growth that the
    sharpness predicts for a perturbation of one rounding error (float64 and float32)."""
    t = trajectory(res, run)
    for variant in VARIANTS:
        ax.semilogy(res[f"{t.key}__{variant}__separation"], lw=1, label=VARIANT_NAMES[variant])
    amp = res.get(f"{t.key}__amplification")
    if amp is not None:
        for eps, dtype in ((np.finfo(np.float64).eps, "float64"), (np.finfo(np.float32).eps, "float32")):
            ax.semilogy(eps * 10 ** amp[: t.epochs + 1], "k", ls="--" if dtype == "float64" else ":", lw=1,
                        label=f"one rounding error of {dtype} × predicted growth")
    ax.set(xlabel="epoch", ylabel="relative distance", ylim=(1e-18, 10), yticks=[1e-16, 1e-12, 1e-8, 1e-4, 1],
           title=title(run))


def plot_grid(ax, res, key: str = "grid_final_test_error"):
    """Final test error for every (data seed, weight seed) pair, the number printed in each cell in black
    or white, whichever reads on the cell's colour; row and column 0 are the standard ones."""
    import matplotlib as mpl
    grid = res[key]
    n = grid.shape[0]
    logs = np.log10(grid)
    cmap = mpl.colormaps["viridis"]
    norm = mpl.colors.Normalize(np.nanmin(logs), np.nanmax(logs))
    image = ax.imshow(logs, cmap=cmap, norm=norm)
    for i in range(n):
        for j in range(n):
            r, g, b, _ = cmap(norm(logs[i, j]))
            light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
            ax.text(j, i, num(grid[i, j], 2), ha="center", va="center", fontsize=style.LEGEND_PT,
                    color="black" if light else "white")
    labels = ["std"] + [str(i) for i in range(1, n)]
    ax.set(xticks=range(n), yticks=range(n), xticklabels=labels, yticklabels=labels,
           xlabel="initial weights", ylabel="dataset")
    ax.grid(False)
    return image


# ------------------------------------------------------------------------------------ figures
def fig_targets(res):
    fig, axs = style.figure(1, 2, height=2.4)
    plot_targets(axs)
    return fig


def fig_f1_lr1(res, run: str):
    """Error, learned function at the end and at the best epoch, the weights, and the same settings
    on new data (R1)."""
    fig, axs = style.figure(2, 3, height=5.2)
    plot_error(axs[0, 0], res, run, title_text="test error")
    plot_learned(axs[0, 1], res, run, "last", title_text="learned, last epoch")
    plot_learned(axs[0, 2], res, run, "best", title_text="learned, lowest error")
    axs[0, 2].legend(loc="upper left")
    plot_weights(axs[1, 0], res, run, "U")
    plot_weights(axs[1, 1], res, run, "V")
    plot_error(axs[1, 2], res, run + "/R1", title_text="test error, new data (R1)")
    return fig


def fig_error_and_weights(res, run: str, until: int | None = None, units=None):
    """Test error, U and V of one run in a row."""
    fig, axs = style.figure(1, 3, height=3.3)
    plot_error(axs[0], res, run, title_text="test error")
    plot_weights(axs[1], res, run, "U", units=units, until=until,
                 title_text="$U$" + (f", first {until} epochs" if until else ""))
    plot_weights(axs[2], res, run, "V", until=until,
                 title_text="$V$" + (f", first {until} epochs" if until else ""))
    return fig


def fig_hidden(res, runs: dict[int, str]):
    """Test error, the input weight U_{0,0} and the outgoing weight V_0 of the first hidden unit, for
    each number of hidden units h (one curve per h)."""
    fig, axs = style.figure(1, 3, height=2.5)
    for h, run in runs.items():
        t = trajectory(res, run)
        U, V = bn.unflatten(t.params, t.h)
        axs[0].semilogy(t.test, lw=1, label=f"h = {h}")
        axs[1].plot(t.params_epochs, U[:, 0, 0], lw=1)
        axs[2].plot(t.params_epochs, V[:, 0, 0], lw=1)
    axs[0].set(xlabel="epoch", ylabel="test error", title="test error")
    axs[1].set(xlabel="epoch", title="input weight $U_{0,0}$")
    axs[2].set(xlabel="epoch", title="outgoing weight $V_0$")
    axs[0].legend()
    return fig


def fig_f2(res, runs: list[str]):
    """Test error (top) and learned function (bottom) for each h."""
    fig, axs = style.figure(2, 3, height=4.4)
    for c, run in enumerate(runs):
        h = parse(run).h
        plot_error(axs[0, c], res, run, title_text=f"h = {h}: test error")
        plot_learned(axs[1, c], res, run, "last", title_text=f"h = {h}: learned")
    axs[1, 0].legend(loc="lower right")
    return fig


def fig_f2_weights(res, run: str):
    """The first four units' U_{i,0} and U_{i,1} and the last five V_i of one run."""
    fig, axs = style.figure(1, 3, height=3.0)
    plot_weights(axs[0], res, run, "U", units=range(4), column=0, title_text="$U_{i,0}$, $i < 4$")
    plot_weights(axs[1], res, run, "U", units=range(4), column=1, title_text="$U_{i,1}$, $i < 4$")
    plot_weights(axs[2], res, run, "V", units=range(3, 8), title_text="$V_i$, $i > 2$")
    return fig


def fig_random(res, r1: str, r2: str):
    """New data and weights: the test errors of R1 and R2, R1's learned function and R1's weights."""
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(style.TEXT_WIDTH, 4.6), layout="constrained")
    axs = fig.subplot_mosaic([["err", "err", "err", "fit", "fit", "fit"], ["u0", "u0", "u1", "u1", "v", "v"]])
    plot_error(axs["err"], res, r1, label="R1", title_text="test error")
    plot_error(axs["err"], res, r2, label="R2", title_text="test error")
    axs["err"].legend(loc="upper right")
    plot_learned(axs["fit"], res, r1, "last", title_text="R1: learned, last epoch")
    axs["fit"].legend(loc="lower left")
    plot_weights(axs["u0"], res, r1, "U", units=range(4), column=0, title_text="R1: $U_{i,0}$, $i < 4$",
                 legend=False)
    plot_weights(axs["u1"], res, r1, "U", units=range(4), column=1, title_text="R1: $U_{i,1}$, $i < 4$",
                 legend=False)
    plot_weights(axs["v"], res, r1, "V", units=range(3, 8), title_text="R1: $V_i$, $i > 2$", legend=False)
    return fig


def fig_grid(res):
    fig, ax = style.figure(height=3.4, width=4.6)
    fig.colorbar(plot_grid(ax, res), ax=ax, label="log₁₀ final test error")
    return fig


def fig_train_test(res, run: str):
    fig, ax = style.figure(height=2.8, width=5.0)
    plot_error(ax, res, run, train=True, title_text="", marks=False)
    ax.set(ylabel="error")
    ax.legend(loc="upper right")
    return fig


def fig_gradient(res, runs: list[str]):
    fig, axs = style.figure(2, 2, height=4.2, sharex="col")
    for c, run in enumerate(runs):
        E = trajectory(res, run).epochs
        plot_gradient(axs[0, c], axs[1, c], res, run, window=(int(0.5 * E), E))
        axs[0, c].set_xlabel("")
    return fig


def fig_sharpness(res, runs: list[str]):
    nrows = int(np.ceil(len(runs) / 3))
    fig, axs = style.figure(nrows, 3, height=2.1 * nrows + 0.4, squeeze=False)
    for ax, run in zip(axs.flat, runs):
        plot_sharpness(ax, res, run)
    for ax in axs.flat[len(runs):]:
        ax.axis("off")
    axs[0, 0].set_ylabel("sharpness")
    handles, labels = axs[0, 0].get_legend_handles_labels()
    if len(runs) < axs.size:   # the legend in the empty panel
        axs.flat[-1].legend(handles, labels, loc="center")
    else:
        fig.legend(handles, labels, loc="outside lower center", ncol=4)
    return fig


def fig_separation(res, runs: list[str]):
    fig, axs = style.figure(1, 2, height=3.3, sharey=True)
    for ax, run in zip(axs, runs):
        plot_separation(ax, res, run)
    axs[1].set_ylabel("")
    handles, labels = axs[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2)
    return fig
