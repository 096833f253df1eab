"""Config validation names the field and its allowed range; the canonical JSON is stable."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from nnlab.config import ConfigError, param, to_json, validate, with_overrides


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
