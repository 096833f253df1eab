"""The experiment registry: each experiment is the module ``nnlab.experiments.<name>``.

A module defines ``CHAPTER`` (the .qmd that shows it), a frozen ``Config`` dataclass, ``PROFILES``
(``{"full": Config(...), "smoke": Config(...)}``) and ``run(config) -> dict`` returning numpy
arrays, pandas tables (one named ``summary``, printed by ``nnlab show``) and JSON scalars.
Modules are imported only when asked for, so listing experiments stays cheap.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

NAMES = ("softmax", "backprop", "perceptron", "exp1a", "lab2", "runge", "digits", "wann",
         "teacher_student", "bell")


class UnknownExperiment(KeyError):
    """No experiment is registered under this name."""

    def __str__(self) -> str:
        return f"unknown experiment {self.args[0]!r}; known experiments: {', '.join(available())}"


def available() -> tuple[str, ...]:
    """Registered names whose module exists (the registry lists experiments before they land)."""
    return tuple(n for n in NAMES if importlib.util.find_spec(f"{__name__}.{n}") is not None)


def get(name: str) -> ModuleType:
    """The module of experiment ``name``; UnknownExperiment lists the known names."""
    if name not in available():
        raise UnknownExperiment(name)
    return importlib.import_module(f"{__name__}.{name}")
