"""The nnlab command: clear errors with the right exit codes, and nothing computed is lost."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd

from nnlab import cli, experiments

from test_cache import toy_experiment  # noqa: F401  (fixture)


def test_unknown_experiment_exits_2_listing_known_names(capsys):
    assert cli.main(["run", "no_such_experiment", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'no_such_experiment'" in err
    for name in experiments.available():
        assert name in err


def test_python_dash_m_is_the_same_command():
    out = subprocess.run([sys.executable, "-m", "nnlab", "show", "no_such_experiment"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "known experiments" in out.stderr


def test_invalid_config_exits_2_naming_field_and_range(toy_experiment, capsys):  # noqa: F811
    assert cli.main(["run", "toy", "--set", "epochs=0"]) == 2
    assert "toy.epochs = 0: allowed range is >= 1" in capsys.readouterr().err
    assert toy_experiment == []


def test_run_show_check_clean(toy_experiment, capsys, tmp_path):  # noqa: F811
    assert cli.main(["check"]) == 1
    assert "toy: missing" in capsys.readouterr().out
    assert cli.main(["run", "toy"]) == 0
    assert cli.main(["check"]) == 0
    capsys.readouterr()
    assert cli.main(["show", "toy", "--format", "csv", "--profile", "full"]) == 0
    assert capsys.readouterr().out.splitlines() == ["epochs", "3"]
    assert cli.main(["run", "toy", "--set", "epochs=5"]) == 0  # an entry no profile uses
    capsys.readouterr()
    assert cli.main(["clean", "--dry-run"]) == 0
    assert "1 entry would be removed" in capsys.readouterr().out
    assert cli.main(["clean"]) == 0
    assert "1 entry removed" in capsys.readouterr().out
    assert cli.main(["clean"]) == 0  # the dry run had kept it; the real clean removed it
    assert "0 entries removed" in capsys.readouterr().out
    assert cli.main(["check"]) == 0  # the profile's entry survived


def test_a_failing_experiment_does_not_lose_the_others(toy_experiment, monkeypatch, capsys):  # noqa: F811
    module = experiments.get("toy")
    good_run = module.run
    calls = []

    def run(config):
        calls.append(config)
        if len(calls) == 1:
            raise FloatingPointError("boom")
        return good_run(config)

    monkeypatch.setattr(module, "run", run)
    monkeypatch.setattr(experiments, "available", lambda: ("toy", "toy2"))
    assert cli.main(["run", "toy", "toy", "--profile", "smoke"]) == 1  # first fails, second stores
    out = capsys.readouterr()
    assert "toy: FAILED" in out.out and "computed in" in out.out
    assert cli.main(["show", "toy", "--profile", "smoke", "--format", "csv"]) == 0
    assert pd.Series(capsys.readouterr().out.split()).tolist() == ["epochs", "1"]
