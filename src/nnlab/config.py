"""Experiment configs: frozen dataclasses whose fields carry their allowed range.

    @dataclass(frozen=True)
    class Config:
        epochs: int = param(1000, ge=1)
        lr: float = param(0.1, gt=0)
        activation: str = param("relu", choices=("relu", "tanh"))

Call ``validate(config, name)`` (the cache does it before every run): a bad value raises
``ConfigError`` naming the field and its allowed range. Rules that hold for every field, whatever
its ``param`` says: numbers are finite (no NaN, no infinity); an int lies within ±``INT_LIMIT`` and a
float within ±``FLOAT_LIMIT`` unless the field sets its own upper bound (``le``/``lt``); a tuple holds
``min_items`` (default 1) to ``MAX_ITEMS`` items.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing

INT_LIMIT = 10_000_000     # epochs, steps, trials, sizes and seeds: beyond this a run never ends
FLOAT_LIMIT = 1e6          # learning rates, scales, offsets
MAX_ITEMS = 10_000         # items of a tuple field (seeds, learning rates, sizes)


class ConfigError(ValueError):
    """A config field has a value outside its allowed range."""


def param(default, *, ge=None, gt=None, le=None, lt=None, choices=None, each=False, min_items=1):
    """A dataclass field with bounds; ``each=True`` applies the bounds to every item of a tuple.

    ``min_items``: the fewest items a tuple field may hold (0 allows an empty tuple).
    """
    bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "each": each,
              "min_items": min_items}
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def _bounds(f: dataclasses.Field) -> dict:
    return f.metadata.get("bounds") or {"ge": None, "gt": None, "le": None, "lt": None, "choices": None,
                                        "each": False, "min_items": 1}


def _item_type(hint):
    """T for a ``tuple[T, ...]`` hint, else None."""
    args = typing.get_args(hint) if typing.get_origin(hint) is tuple else ()
    return args[0] if len(args) == 2 and args[1] is Ellipsis else None


def _number_type(hint):
    """int or float when the field (or each item of it) is one, else None."""
    hint = _item_type(hint) or hint
    return hint if hint in (int, float) else None


def _limits(b, number) -> list[str]:
    """The generic limits that apply where the field sets no bound of its own."""
    if number is None or b["choices"] is not None:
        return []
    limit = f"{INT_LIMIT}" if number is int else f"{FLOAT_LIMIT:g}"
    return ([] if b["ge"] is not None or b["gt"] is not None else [f">= -{limit}"]) + \
           ([] if b["le"] is not None or b["lt"] is not None else [f"<= {limit}"])


def _allowed(b, hint=None) -> str:
    """The allowed range of a field in words, the generic limits included."""
    parts = []
    if b["choices"] is not None:
        parts.append("one of " + ", ".join(map(repr, b["choices"])))
    for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if b[key] is not None:
            parts.append(f"{sym} {b[key]}")
    is_tuple = hint is tuple or typing.get_origin(hint) is tuple
    if is_tuple and not b["each"]:            # bounds of the whole tuple: only choices mean anything
        parts = parts[:1] if b["choices"] is not None else []
        parts += _limits({**b, "ge": None, "gt": None, "le": None, "lt": None, "choices": None},
                         _number_type(hint))
    else:
        parts += _limits(b, _number_type(hint))
    text = " and ".join(parts) or "any value"
    if is_tuple:
        text = f"{b['min_items']} to {MAX_ITEMS} items" + (f", each {text}" if parts else "")
    return text


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


def _limit_problem(value, number, b, bounded: bool) -> str | None:
    """Why a number breaks the rules every field obeys (finite, within the generic limits), or None.
    ``number``: the field's number type (int or float); ``bounded``: whether its own bounds apply."""
    if isinstance(value, (tuple, list)):
        return next((p for v in value if (p := _limit_problem(v, number, b, bounded))), None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a finite number"
    float_field = number is float or isinstance(value, float)
    limit = FLOAT_LIMIT if float_field else INT_LIMIT
    lower = bounded and (b["ge"] is not None or b["gt"] is not None)
    upper = bounded and (b["le"] is not None or b["lt"] is not None)
    if (not upper and value > limit) or (not lower and value < -limit):
        return f"{value!r} is beyond the limit of {limit:g} for any {'float' if float_field else 'int'} field"
    return None


def _type_problem(value, hint) -> str | None:
    """Why ``value`` does not fit ``hint`` (int, float, str, bool or tuple[T, ...]), or None if it does.
    An int is a float; a bool is not a number."""
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, tuple):
            return "must be a tuple"
        item = _item_type(hint)
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
        value, b, hint = getattr(config, f.name), _bounds(f), hints.get(f.name)
        bounded = b["each"] or not isinstance(value, tuple)
        problem = _limit_problem(value, _number_type(hint), b, bounded)
        if problem:
            raise ConfigError(f"{name}.{f.name} = {value!r}: {problem}; allowed range is {_allowed(b, hint)}")
        problem = _type_problem(value, hint)
        if problem:
            raise ConfigError(f"{name}.{f.name} = {value!r}: {problem}")
        if b["each"] and not isinstance(value, tuple):
            raise ConfigError(f"{name}.{f.name} = {value!r}: must be a tuple")
        if isinstance(value, tuple) and not b["min_items"] <= len(value) <= MAX_ITEMS:
            raise ConfigError(f"{name}.{f.name} has {len(value)} items: allowed are "
                              f"{b['min_items']} to {MAX_ITEMS}")
        for v in value if b["each"] else (value,):
            if not _check_value(v, b):
                raise ConfigError(f"{name}.{f.name} = {value!r}: allowed range is {_allowed(b, hint)}")


def describe(config) -> list[dict]:
    """One row per field: ``field``, ``type``, ``value`` and ``allowed`` (the range in words)."""
    hints = typing.get_type_hints(type(config))
    rows = []
    for f in dataclasses.fields(config):
        hint = hints.get(f.name)
        type_name = getattr(hint, "__name__", None) if typing.get_origin(hint) is None else None
        rows.append({"field": f.name, "type": type_name or str(hint).replace("typing.", ""),
                     "value": json.dumps(_plain(getattr(config, f.name))),
                     "allowed": _allowed(_bounds(f), hint)})
    return rows


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def to_json(config) -> str:
    """Canonical JSON of a config (sorted keys, tuples as lists): the part of the cache key it owns."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True, separators=(",", ":"))


def _no_constant(name: str):
    raise ConfigError(f"{name} is not a number a config field can hold")


def parse_value(text: str):
    """A ``--set`` value: JSON (NaN and Infinity refused), else the text itself as a string."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError:
        return text


def with_overrides(config, overrides):
    """A copy of ``config`` with fields set from strings (the CLI's ``--set field=value``).

    ``overrides``: a mapping, or (field, text) pairs, in which a field given twice is an error.
    """
    names = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    pairs = list(overrides.items()) if hasattr(overrides, "items") else list(overrides)
    changes = {}
    for key, text in pairs:
        if key not in names:
            raise ConfigError(f"unknown config field {key!r}; fields are: {', '.join(names)}")
        if key in changes:
            raise ConfigError(f"config field {key!r} is set twice; set it once")
        value = parse_value(text)
        if isinstance(getattr(config, key), tuple) and isinstance(value, list):
            value = tuple(value)
        if _number_type(hints.get(key)) is float:   # 1 and 1.0 are one value, and one cache key
            value = _as_float(value)
        changes[key] = value
    return dataclasses.replace(config, **changes)


def _as_float(value):
    if isinstance(value, tuple):
        return tuple(_as_float(v) for v in value)
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
