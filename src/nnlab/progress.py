"""Progress bars: tqdm, in one of three modes.

- On a terminal: live bars (tqdm's ``disable=None`` draws them only on a TTY).
- In a log (``NNLAB_PROGRESS=log``, which ``nnlab run`` sets when stderr is not a terminal, as in CI):
  one plain line per bar every ``NNLAB_PROGRESS_INTERVAL`` seconds (default 30), nothing for a
  shorter loop, through tqdm's ``delay``, ``mininterval``, ``bar_format`` and ``file`` switches.
- Silent otherwise (chapters, tests) and always with ``NNLAB_QUIET=1``.
"""
from __future__ import annotations

import os
import sys

from tqdm import tqdm

LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) after {elapsed}, about {remaining} to go"


class LogLines:
    """A log file as tqdm's output: every status it draws becomes one whole line (no carriage
    returns, no padding, a repeated status once), so lines printed to a shared stdout never join it."""

    def __init__(self, file):
        self.file, self.last = file, None

    def write(self, text: str) -> None:
        line = text.strip()
        if line and line != self.last:
            self.file.write(line + "\n")
        self.last = line or self.last

    def flush(self) -> None:
        self.file.flush()


def quiet() -> bool:
    """True when no bar should be drawn."""
    return os.environ.get("NNLAB_QUIET", "0") == "1"


def log_mode() -> bool:
    """True when bars are periodic lines for a log rather than live bars."""
    return not quiet() and os.environ.get("NNLAB_PROGRESS") == "log" and not sys.stderr.isatty()


def bar(iterable=None, **kw):
    """``tqdm(iterable, **kw)`` in the mode the environment asks for (see the module docstring)."""
    kw.setdefault("file", sys.stderr)
    if log_mode():
        interval = float(os.environ.get("NNLAB_PROGRESS_INTERVAL", "30"))
        kw.update(disable=False, position=0, ascii=True, leave=True, file=LogLines(kw["file"]))
        kw.setdefault("delay", interval)          # a loop shorter than that prints nothing
        kw.setdefault("mininterval", interval)
        kw.setdefault("maxinterval", max(interval, 10.0))
        kw.setdefault("bar_format", LOG_FORMAT)
    else:
        kw.setdefault("disable", True if quiet() else None)
        kw.setdefault("leave", False)
    return tqdm(iterable, **kw)


def write(text: str, file=None) -> None:
    """Print a line without breaking the bars being drawn (stdout by default)."""
    if log_mode():
        print(text, file=file or sys.stdout, flush=True)
    else:
        tqdm.write(text, file=file or sys.stdout)
