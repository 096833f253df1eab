"""Figures of the softmax-Jacobian chapter, drawn from the cached ``softmax`` result."""
from __future__ import annotations

import numpy as np

from nnlab.plots import style

FLOOR = 1e-18  # exact zeros are drawn at the bottom of the log scale


def first_nan_shift(res) -> float:
    """The smallest positive shift c of the sweep at which the naive softmax returns NaN."""
    shifts = res["shifts"]
    return shifts.loc[(shifts.c > 0) & shifts.err_naive.isna(), "c"].min()


def plot_jacobian(ax, res):
    """The Jacobian of the example logits as a heat map with its entries printed, in a colour that
    stays readable on the cell (white on dark, black on light)."""
    J = res["example_J"]
    lim = np.abs(J).max()
    image = ax.imshow(J, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for (i, j), v in np.ndenumerate(J):
        ax.text(j, i, f"{v:.3f}".replace("-", "−"), ha="center", va="center", fontsize=style.LEGEND_PT,
                color="white" if abs(v) > 0.55 * lim else "black")
    ticks = range(len(J))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=[f"$z_{j + 1}$" for j in ticks],
           yticklabels=[f"$s_{i + 1}$" for i in ticks], title=r"$J = \mathrm{diag}(s) - s\,s^{T}$")
    ax.grid(False)
    return image


def plot_shift(ax, res):
    """Largest error of softmax(z + c) against softmax(z), naive and shifted formulas."""
    sweep = res["shifts"]
    ax.semilogy(sweep.c, np.maximum(sweep.err_naive, FLOOR), "-", color="tab:red", lw=3, alpha=0.45,
                label="naive")
    ax.semilogy(sweep.c, np.maximum(sweep.err_stable, FLOOR), "-", color="tab:blue", lw=1.2,
                label="shifted (stable)")
    nan = sweep.err_naive.isna()
    ax.plot(sweep.c[nan], np.full(nan.sum(), 1.0), "x", color="tab:red", label="naive = NaN")
    zmax = res["example_z"].max()
    for edge in (res["overflow_threshold"] - zmax, res["underflow_threshold"] - zmax):
        ax.axvline(edge, color="gray", ls=":", lw=1)
    ax.set(xlabel="shift $c$", ylabel=r"$\max_i\,|s_i(z + c) - s_i(z)|$", ylim=(FLOOR / 2, 10),
           yticks=[1e-18, 1e-14, 1e-10, 1e-6, 1e-2], title="softmax(z + c) against softmax(z)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, handlelength=1.5, columnspacing=1)


def plot_jacobian_and_shift(res):
    """The chapter's figure: the Jacobian (left) and the shift test (right)."""
    fig, (ax1, ax2) = style.figure(1, 2, height=3.4, gridspec_kw={"width_ratios": [1.25, 1]})
    fig.colorbar(plot_jacobian(ax1, res), ax=ax1, shrink=0.8)
    plot_shift(ax2, res)
    return fig
