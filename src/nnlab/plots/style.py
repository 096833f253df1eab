"""One look for every figure of the book, drawn at the size a reader sees it.

The HTML text column and the PDF text block are both about 6.5 in wide, so a figure is drawn at
most :data:`TEXT_WIDTH` wide (``column: page`` figures at most :data:`PAGE_WIDTH`), with tick labels
of 9 pt and legends of 8 pt at that size: nothing is shrunk on the page.
"""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

TEXT_WIDTH = 6.5     # inches: the body column, HTML and PDF
PAGE_WIDTH = 9.0     # inches: a `column: page` figure in HTML
TICK_PT, LEGEND_PT, LABEL_PT, TITLE_PT = 9, 8, 10, 10

RC = {
    "figure.dpi": 110, "savefig.dpi": 200, "font.size": LABEL_PT,
    "axes.labelsize": LABEL_PT, "axes.titlesize": TITLE_PT,
    "xtick.labelsize": TICK_PT, "ytick.labelsize": TICK_PT,
    "legend.fontsize": LEGEND_PT, "legend.title_fontsize": LEGEND_PT, "legend.framealpha": 0.9,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "axes.formatter.useoffset": False, "axes.formatter.use_mathtext": True,
    "axes.prop_cycle": mpl.cycler(color=plt.get_cmap("tab10").colors),
}


def apply() -> None:
    """Set the book's matplotlib style (call once at the top of a chapter)."""
    mpl.rcParams.update(RC)


def figure(nrows: int = 1, ncols: int = 1, height: float | None = None, width: float = TEXT_WIDTH, **kw):
    """``plt.subplots`` at the width the figure is shown; height defaults to 2.6 in a row of panels."""
    height = height if height is not None else 2.6 * nrows
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kw)


def plain_number(value, _pos=None) -> str:
    """A tick label as a plain decimal number (0.002, 30, 0.00005), never 5e-05 or 2 × 10⁻³
    (a matplotlib tick formatter: ``FuncFormatter(plain_number)``)."""
    import numpy as np

    return np.format_float_positional(value, trim="-").replace("-", "−")


def log_ticks(ax, axis: str = "y") -> None:
    """Readable ticks on a log axis: 1, 2 and 5 times powers of ten, labelled as plain numbers
    (0.001, 20, 5000) when the axis spans at most 2.5 decades, powers of ten alone beyond that."""
    import math

    from matplotlib import ticker

    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    span = math.log10(hi / lo) if lo > 0 and hi > 0 else 99
    plain = ticker.FuncFormatter(plain_number)
    if span <= 2.5:
        target.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        target.set_major_formatter(plain)
        target.set_minor_formatter(ticker.NullFormatter())
    else:
        target.set_major_locator(ticker.LogLocator(numticks=6))
        target.set_minor_formatter(ticker.NullFormatter())
