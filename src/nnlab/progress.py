"""Progress bars: tqdm, silent when stderr is not a terminal or NNLAB_QUIET=1 (chapters, tests, CI)."""
from __future__ import annotations

import os
import sys

from tqdm import tqdm


def quiet() -> bool:
    """True when no bar should be drawn."""
    return os.environ.get("NNLAB_QUIET", "0") == "1" or not sys.stderr.isatty()


def bar(iterable=None, **kw):
    """``tqdm(iterable, **kw)``, disabled when :func:`quiet`."""
    kw.setdefault("disable", quiet())
    kw.setdefault("leave", False)
    return tqdm(iterable, **kw)
