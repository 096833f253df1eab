"""Formatting helpers for the chapters: numbers as a reader should see them in prose and tables.

Quarto inserts an inline expression's value as escaped markdown, so these return plain text
(no TeX, no backslashes); a value that must sit inside math is built whole by :func:`math`.
"""
from __future__ import annotations

import math as _math

from IPython.display import Markdown
from pandas.api.types import is_numeric_dtype

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def num(x, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures, as plain text (a true minus sign, no numpy repr)."""
    x = float(x)
    if _math.isnan(x):
        return "–"
    if x == 0:
        return "0"
    text = f"{x:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
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
    :func:`num` unless ``formats`` gives that column its own function; no index row."""
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
                cells.append(num(value, digits))
        rows.append("| " + " | ".join(cells) + " |")
    return Markdown("\n".join([header, rule, *rows]))
