"""Experiment configs: frozen dataclasses whose fields carry their allowed range.

    @dataclass(frozen=True)
    class Config:
        epochs: int = param(1000, ge=1)
        lr: float = param(0.1, gt=0)
        activation: str = param("relu", choices=("relu", "tanh"))

Call ``validate(config, name)`` (the cache does it before every run): a bad value raises
``ConfigError`` naming the field and its allowed range.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing


class ConfigError(ValueError):
    """A config field has a value outside its allowed range."""


def param(default, *, ge=None, gt=None, le=None, lt=None, choices=None, each=False):
    """A dataclass field with bounds; ``each=True`` applies the bounds to every item of a tuple."""
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "each": each}
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def _allowed(b) -> str:
    parts = []
    if b["choices"] is not None:
        parts.append("one of " + ", ".join(map(repr, b["choices"])))
    for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if b[key] is not None:
            parts.append(f"{sym} {b[key]}")
    return " and ".join(parts) or "any value"


def _check_value(value, b) -> bool:
    if b["choices"] is not None:
        return value in b["choices"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return not ((b["gt"] is not None and not value > b["gt"])
                or (b["ge"] is not None and not value >= b["ge"])
                or (b["lt"] is not None and not value < b["lt"])
                or (b["le"] is not None and not value <= b["le"]))


def _type_problem(value, hint) -> str | None:
    """Why ``value`` does not fit ``hint`` (int, float, str, bool or tuple[T, ...]), or None if it does.
    An int is a float; a bool is not a number."""
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, tuple):
            return "must be a tuple"
        args = typing.get_args(hint)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        for i, v in enumerate(value if item is not None else ()):
            if _type_problem(v, item):
                return f"item {i} ({v!r}) must be of type {item.__name__}"
        return None
    if hint not in (int, float, str, bool):
        return None
    ok = isinstance(value, hint) or (hint is float and isinstance(value, int))
    if not ok or (hint in (int, float) and isinstance(value, bool)):
        return f"must be of type {hint.__name__}"
    return None


def validate(config, name: str = "config") -> None:
    """Raise ConfigError for the first field whose value is outside its bounds or of the wrong type."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        problem = _type_problem(value, hints.get(f.name))
        if problem:
            raise ConfigError(f"{name}.{f.name} = {value!r}: {problem}")
        b = f.metadata.get("bounds")
        if not b:
            continue
        values = value if b["each"] else (value,)
        if b["each"] and not isinstance(value, tuple):
            raise ConfigError(f"{name}.{f.name} = {value!r}: must be a tuple")
        for v in values:
            if not _check_value(v, b):
                raise ConfigError(f"{name}.{f.name} = {value!r}: allowed range is {_allowed(b)}")


def to_json(config) -> str:
    """Canonical JSON of a config (sorted keys, tuples as lists): the part of the cache key it owns."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True, separators=(",", ":"))


def with_overrides(config, overrides: dict[str, str]):
    """A copy of ``config`` with fields set from strings (the CLI's ``--set field=value``)."""
    names = {f.name: f for f in dataclasses.fields(config)}
    changes = {}
    for key, text in overrides.items():
        if key not in names:
            raise ConfigError(f"unknown config field {key!r}; fields are: {', '.join(names)}")
        current = getattr(config, key)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        changes[key] = value
    return dataclasses.replace(config, **changes)
