"""Where independent units of work run.

An experiment names its units (a student, a group of seeds, a cross-validation group) and a
top-level function that computes one; :func:`map_units` decides where they run. Results never
depend on that choice: every unit seeds its own generators and uses one torch thread.
"""
from __future__ import annotations

from typing import Callable, Sequence


def map_units(fn: Callable, units: Sequence, *, experiment: str) -> list:
    """``[fn(unit) for unit in units]``, in the order of ``units``.

    ``fn`` must be a picklable top-level function whose result depends on ``unit`` alone.
    """
    return [fn(unit) for unit in units]
