"""Config validation names the field and its allowed range; the canonical JSON is stable."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from nnlab.config import ConfigError, describe, param, to_json, validate, with_overrides


@dataclass(frozen=True)
class Toy:
    epochs: int = param(10, ge=1)
    lr: float = param(0.1, gt=0, le=10)
    lrs: tuple = param((0.1, 1.0), gt=0, each=True)
    activation: str = param("relu", choices=("relu", "tanh"))


def test_defaults_are_valid():
    validate(Toy(), "toy")


@pytest.mark.parametrize("field, value, words", [
    ("epochs", 0, ">= 1"), ("lr", -1.0, "> 0"), ("lr", 11.0, "<= 10"), ("lr", float("nan"), "> 0"),
    ("lrs", (0.1, -2.0), "> 0"), ("activation", "gelu", "'relu', 'tanh'"), ("epochs", 2.5, "int"),
])
def test_bad_value_names_field_and_range(field, value, words):
    with pytest.raises(ConfigError) as err:
        validate(Toy(**{field: value}), "toy")
    assert f"toy.{field}" in str(err.value) and words in str(err.value)


def test_overrides_parse_json_and_reject_unknown_fields():
    assert with_overrides(Toy(), {"lr": "2", "lrs": "[1, 2]"}) == Toy(lr=2.0, lrs=(1, 2))
    with pytest.raises(ConfigError, match="unknown config field 'lrr'"):
        with_overrides(Toy(), {"lrr": "1"})


def test_canonical_json_is_order_independent_and_distinguishes_values():
    assert to_json(Toy()) == to_json(Toy(**{"activation": "relu", "epochs": 10}))
    assert to_json(Toy()) != to_json(Toy(lr=0.2))


@dataclass(frozen=True)
class Sized:
    epochs: int = param(10, ge=1)
    seed: int = param(0, ge=0)
    scale: float = param(1.0, gt=0)
    example: tuple[float, ...] = param((2.0, 1.0))          # no bounds of its own
    sizes: tuple[int, ...] = param((3, 10), ge=2, each=True)
    runs: tuple[str, ...] = param(("a",), min_items=0)
    fraction: float = param(0.5, ge=0, le=1)


@pytest.mark.parametrize("field, value, words", [
    ("epochs", 10 ** 12, "limit of 1e+07"), ("seed", 10 ** 8, "limit"), ("scale", 1e300, "limit of 1e+06"),
    ("sizes", (3, 10 ** 12), "limit"), ("example", (float("nan"), 1.0), "not a finite number"),
    ("example", (float("inf"),), "not a finite number"), ("example", (-1e9,), "limit"),
    ("scale", float("inf"), "not a finite number"), ("sizes", (), "0 items"), ("example", (), "0 items"),
    ("sizes", tuple(range(2, 20_003)), "items"),
])
def test_every_number_is_finite_and_bounded_and_lists_have_items(field, value, words):
    with pytest.raises(ConfigError) as err:
        validate(Sized(**{field: value}), "toy")
    assert f"toy.{field}" in str(err.value) and words in str(err.value)


def test_a_field_may_allow_an_empty_tuple_and_its_own_upper_bound_replaces_the_limit():
    validate(Sized(runs=()), "toy")
    validate(Sized(sizes=(2, 10 ** 6)), "toy")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[NaN, Infinity, 1]"])
def test_overrides_refuse_nan_and_infinity(text):
    with pytest.raises(ConfigError, match="not a number"):
        with_overrides(Sized(), {"example": text})


def test_a_field_set_twice_is_an_error_and_ints_in_float_fields_become_floats():
    with pytest.raises(ConfigError, match="'epochs' is set twice"):
        with_overrides(Sized(), [("epochs", "3"), ("epochs", "4")])
    changed = with_overrides(Sized(), [("example", "[1, 2]"), ("scale", "2")])
    assert to_json(changed) == to_json(Sized(example=(1.0, 2.0), scale=2.0))


def test_describe_gives_every_field_its_value_and_range():
    rows = {row["field"]: row for row in describe(Sized())}
    assert list(rows) == [f.name for f in dataclasses.fields(Sized)]
    assert rows["epochs"]["allowed"] == ">= 1 and <= 10000000"
    assert rows["fraction"]["allowed"] == ">= 0 and <= 1"
    assert rows["sizes"]["allowed"] == "1 to 10000 items, each >= 2 and <= 10000000"
    assert rows["runs"]["allowed"].startswith("0 to 10000 items")
    assert rows["example"]["value"] == "[2.0, 1.0]"
