"""Figures and table helpers of the Runge chapter, drawn from the cached ``runge`` result at the size
they are shown (``nnlab.plots.style``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.experiments.runge import runge
from nnlab.plots import style
from nnlab.report import num

RHO = (1 + 26 ** 0.5) / 5    # Bernstein ellipse through the poles ±i/5 of f
# what each model is, in words, and one colour each; no two models of one panel share a hue family
LABELS = {
    "network": "network, the seed's recipe",
    "network_torch_init": "network, torch's initialisation",
    "network_decay": "network, + learning-rate decay",
    "constant": "network, the seed's rate for as long",
    "network_chebyshev_points": "network on Chebyshev points",
    "poly_equispaced": "interpolant, training points (numpy)",
    "poly_equispaced_exact": "interpolant, training points (exact)",
    "poly_lsq": "least-squares polynomial, degree by validation",
    "poly_chebyshev": "interpolant, Chebyshev points",
    "spline": "cubic spline, training points",
    "spline_chebyshev_points": "cubic spline, Chebyshev points",
    "chebyshev_lsq": "least-norm Chebyshev series, as many coefficients as the network",
}
COLOURS = {"network": "tab:blue", "network_decay": "tab:green", "constant": "tab:orange",
           "poly_equispaced": "tab:red", "poly_equispaced_exact": "black", "chebyshev_lsq": "tab:purple",
           "poly_lsq": "tab:olive", "poly_chebyshev": "tab:brown", "spline": "tab:cyan"}


def model_key(res, name: str) -> str:
    """The summary's model name for a short key ('constant' is the control's name in the cache)."""
    return res["constant_model"] if name == "constant" else name


def values(summary: pd.DataFrame, model: str, column: str) -> np.ndarray:
    """One column of the summary for one model (every seed)."""
    return summary.loc[summary["model"] == model, column].to_numpy()


def mean_sd(summary: pd.DataFrame, model: str, column: str) -> str:
    """mean ± sd over the seeds of one model, as text in powers of ten: '2.3 ± 0.9 × 10⁻⁵'."""
    v = values(summary, model, column)
    if len(v) < 2:
        return num(v[0], 2)
    exponent = int(np.floor(np.log10(abs(v.mean()))))
    scale = 10.0 ** exponent
    power = "10" + str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"({v.mean() / scale:.1f} ± {v.std(ddof=1) / scale:.1f}) × {power}"


def _legend_right(ax, **kw):
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, **kw)


def plot_fit(res, seed_index: int = 0):
    """f, one network of each recipe and the training points; below, their errors."""
    fig, axs = style.figure(2, 1, height=4.4, sharex=True, height_ratios=(3, 2))
    x = res["x_plot"]
    axs[0].plot(x, runge(x), color="grey", lw=3, alpha=0.5, label="$f$")
    axs[0].plot(res["x_train"], runge(res["x_train"]), ".", color="k", ms=3, label="training points")
    for key in ("network", "network_decay"):
        axs[0].plot(x, res[f"{key}_plot"][seed_index], color=COLOURS[key], lw=1, label=LABELS[key])
        axs[1].plot(x, res[f"{key}_plot"][seed_index] - runge(x), color=COLOURS[key], lw=1)
    axs[1].plot(res["x_test"], 0 * res["x_test"], "kx", ms=4, label="test points")
    axs[0].set(ylabel="$y$")
    axs[1].set(xlabel="$x$", ylabel="network − $f$")
    handles = [h for ax in axs for h in ax.get_legend_handles_labels()[0]]
    fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center", ncol=3)
    return fig


def plot_losses(res):
    """Training (mean of batch losses) and validation MSE per epoch, median over the seeds, for the
    seed's recipe and its continuations: the decay and the constant-rate control."""
    fig, ax = style.figure(height=3.4)
    first = res["network_train_loss"].shape[1]
    for key, start in (("network", 0), ("network_decay", first), ("constant", first)):
        name = model_key(res, key)
        train, val = res[f"{name}_train_loss"], res[f"{name}_val_loss"]
        epochs = start + np.arange(1, train.shape[1] + 1)
        ax.semilogy(epochs, np.median(train, 0), color=COLOURS[key], lw=1.2, label=LABELS[key])
        ax.semilogy(epochs, np.median(val, 0), "--", color=COLOURS[key], lw=1.2)
    ax.plot([], [], "k-", lw=1.2, label="training (solid)")
    ax.plot([], [], "k--", lw=1.2, label="validation (dashed)")
    ax.axvline(first, color="k", lw=0.5, ls=":")
    ax.set(xlabel="epoch", ylabel="MSE, median of the seeds")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2)
    return fig


def _error_curve(res, key):
    pred = res[f"{model_key(res, key)}_plot"]
    return np.abs((np.median(pred, 0) if pred.ndim == 2 else pred) - runge(res["x_plot"]))


def plot_errors(res):
    """|model − f| on the dense grid (log scale): top, the fits that use every coefficient to pass
    through the training points; bottom, the accurate ones and the networks (median of the seeds)."""
    fig, axs = style.figure(2, 1, height=6.2)
    n_params = int(values(res["summary"], "network", "n_params")[0])
    short = {"poly_equispaced_exact": "interpolant (exact)", "poly_equispaced": "interpolant (numpy)",
             "chebyshev_lsq": f"least-norm Chebyshev series, {n_params:,} terms",
             "network": "network, the seed's recipe", "network_decay": "network, + decay",
             "poly_lsq": f"least squares, degree {res['lsq_degree']}", "spline": "cubic spline",
             "poly_chebyshev": "interpolant, Chebyshev points"}
    panels = (("poly_equispaced_exact", "poly_equispaced", "chebyshev_lsq", "network"),
              ("poly_chebyshev", "spline", "poly_lsq", "network", "network_decay"))
    for ax, keys in zip(axs, panels):
        for key in keys:
            ax.semilogy(res["x_plot"], np.maximum(_error_curve(res, key), 1e-17), color=COLOURS[key], lw=0.9,
                        label=short[key])
        ax.set(ylabel="|error|", xlabel="$x$")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    axs[1].set(ylim=(1e-9, None))
    return fig


def plot_degree_sweep(res, network_max_err: float):
    """Max error on the grid against the polynomial degree, with the network's level."""
    fig, ax = style.figure(height=3.0)
    s = res["degree_sweep"]
    ax.semilogy(s["degree"], s["equispaced_exact"], "o-", color="black", ms=3,
                label="interpolant, equispaced points (exact)")
    ax.semilogy(s["degree"], s["lsq_train_nodes"], "s-", color="tab:olive", ms=3,
                label="least squares, training points")
    ax.semilogy(s["degree"], s["chebyshev"], "^-", color="tab:brown", ms=3, label="interpolant, Chebyshev points")
    n = np.asarray(s["degree"], dtype=float)
    ax.semilogy(n, RHO ** -n, "k--", lw=0.8, label=r"$\rho^{-n}$, $\rho = (1+\sqrt{26})/5$")
    ax.axhline(network_max_err, color="tab:blue", lw=1, label="network (mean of the seeds)")
    ax.set(xlabel="degree $n$", ylabel="max error on the grid")
    _legend_right(ax)
    return fig


def plot_monomial(res):
    """Max error of one hidden layer fitted to x^k against its width (median of the seeds, log-log),
    one panel per activation; dotted: the piecewise-linear interpolant with one kink per unit."""
    table = res["monomial"]
    acts = list(dict.fromkeys(table["activation"]))
    fig, axs = style.figure(1, len(acts), height=3.2, sharey=True, squeeze=False)
    powers = sorted(table["power"].unique())
    colours = dict(zip(powers, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")))
    for ax, act in zip(axs[0], acts):
        for k in powers:
            g = table[(table["activation"] == act) & (table["power"] == k)].groupby("width")
            med = g[["max_err", "piecewise_linear_max_err"]].median()
            ax.loglog(med.index, med["max_err"], "o-", color=colours[k], ms=3, lw=1, label=f"$x^{k}$")
            if act == "relu":
                ax.loglog(med.index, med["piecewise_linear_max_err"], ":", color=colours[k], lw=1)
        ax.set(xlabel="width (hidden units)", title="ReLU" if act == "relu" else act)
        ax.set_xticks(sorted(table["width"].unique()), [str(w) for w in sorted(table["width"].unique())])
        ax.minorticks_off()
    axs[0, 0].set_ylabel("max error on $[-1, 1]$")
    fig.legend(*axs[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=len(powers))
    return fig
