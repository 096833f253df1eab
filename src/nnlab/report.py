"""Formatting helpers for the chapters: numbers as a reader should see them in prose and tables.

Quarto inserts an inline expression's value as escaped markdown, so these return plain text
(no TeX, no backslashes); a value that must sit inside math is built whole by :func:`math`.
"""
from __future__ import annotations

import math as _math

from IPython.display import Markdown
from pandas.api.types import is_numeric_dtype

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def num(x, digits: int = 3, zeros: bool = False, group: bool = True) -> str:
    """``x`` to ``digits`` significant figures, as plain text (a true minus sign, no numpy repr);
    whole numbers in full; thousands grouped by commas (1,250, 26,641.3); ``zeros=True`` keeps
    trailing zeros (``0.900``), so that a table column has one precision; ``group=False`` for a
    number in a comma-separated list. (An identifier such as a seed or a year is no quantity: print
    it with ``str``.)"""
    x = float(x)
    if _math.isnan(x):
        return "–"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e9:  # counts, epochs: every digit, never 1.2 × 10³
        return f"{int(x):{',' if group else ''}}".replace("-", "−")
    text = f"{x:{'#' if zeros else ''}.{digits}g}".rstrip(".")
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    elif group and _math.isfinite(x) and abs(x) >= 1000:
        whole, point, fraction = text.partition(".")
        text = f"{int(whole):,}{point}{fraction}"
    return text.replace("-", "−")


def pm(mean, sd, digits: int = 2) -> str:
    """``mean ± sd``, both rounded to the decimal place of the sd's ``digits``-th significant figure."""
    mean, sd = float(mean), float(sd)
    if not _math.isfinite(sd) or sd == 0:
        return num(mean)
    decimals = max(0, digits - 1 - int(_math.floor(_math.log10(abs(sd)))))
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}".replace("-", "−")


def pct(fraction, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.1234`` → ``12.3 %``."""
    return f"{100 * float(fraction):.{digits}f} %".replace("-", "−")


def math(tex: str) -> Markdown:
    """An inline math span built whole in code (so Quarto does not escape the TeX inside it)."""
    return Markdown(f"${tex}$")


def table(frame, columns: dict[str, str], formats: dict | None = None, digits: int = 3) -> Markdown:
    """A pipe table of ``frame``'s ``columns`` (code name → header in words), every number through
    :func:`num` (``digits`` significant figures, trailing zeros kept) unless ``formats`` gives that
    column its own function; no index row."""
    formats = formats or {}
    header = "| " + " | ".join(columns.values()) + " |"
    rule = "|" + "|".join("--:" if is_numeric_dtype(frame[c]) else ":--" for c in columns) + "|"
    rows = []
    for _, record in frame.iterrows():
        cells = []
        for c in columns:
            value = record[c]
            if c in formats:
                cells.append(formats[c](value))
            elif isinstance(value, str):
                cells.append(value)
            else:
                cells.append(num(value, digits, zeros=True))
        rows.append("| " + " | ".join(cells) + " |")
    return Markdown("\n".join([header, rule, *rows]))


def sci(x, digits: int = 1) -> str:
    """``x`` in scientific notation as plain text: ``2.3e-16`` → ``2.3 × 10⁻¹⁶`` (for error sizes)."""
    x = float(x)
    if _math.isnan(x):
        return "–"
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}".replace("-", "−")


def seq(values, digits: int = 3, brackets: str = "()") -> str:
    """A tuple of numbers as plain text, ``(2, 1, −3)``; ``brackets=""`` gives a bare list (no
    thousands commas inside it: ``{0, 1000}``)."""
    inner = ", ".join(num(v, digits, group=False) for v in values)
    return f"{brackets[:1]}{inner}{brackets[1:]}"


def plural(n, word: str, words: str | None = None) -> str:
    """``3 epochs``, ``1 epoch``: a count with its noun."""
    n = int(n)
    return f"{n} {word if n == 1 else (words or word + 's')}"


def source(*objects) -> Markdown:
    """The source of functions from ``nnlab``, as a Python listing (shown in HTML and in the PDF)."""
    import inspect

    code = "\n\n".join(inspect.getsource(o).rstrip() for o in objects)
    return Markdown(f"```python\n{code}\n```")
