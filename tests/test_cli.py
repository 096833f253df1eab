"""The nnlab command: clear errors with the right exit codes, one profile rule, and nothing computed
or belonging to the user is ever lost."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from nnlab import cache, cli, experiments, progress

from test_cache import VALUES, _rewrite_meta, _wait_for, toy_experiment  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _no_progress_leak(monkeypatch):
    """`nnlab run` sets NNLAB_PROGRESS when stderr is not a terminal: keep that inside each test."""
    monkeypatch.setenv("NNLAB_PROGRESS", "")


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


@pytest.mark.parametrize("sets, words", [
    (["sizes=[NaN, Infinity, 1]"], "NaN is not a number"), (["sizes=[1e999]"], "not a finite number"),
    (["sizes=[]"], "toy.sizes has 0 items"), (["epochs=1000000000000"], "limit of 1e+07"),
    (["epochs=2", "epochs=3"], "--set epochs given more than once"), (["epochs"], "field=value"),
])
def test_bad_set_values_are_refused_before_anything_runs(toy_experiment, capsys, sets, words):  # noqa: F811
    assert cli.main(["run", "toy", *[a for s in sets for a in ("--set", s)]]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert toy_experiment == []


def test_run_show_check_clean(toy_experiment, capsys, tmp_path):  # noqa: F811
    assert cli.main(["check"]) == 1
    assert "toy: missing" in capsys.readouterr().out
    assert cli.main(["run", "toy"]) == 0
    assert "computed in" in capsys.readouterr().out
    assert cli.main(["run", "toy"]) == 0                 # a second run reads, and says so
    out = capsys.readouterr().out
    assert "already in the cache" in out and "computed in" not in out
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


# --------------------------------------------------------------------------------- one profile rule

def test_every_command_honours_nnlab_profile_and_profile_overrides_it(toy_experiment, monkeypatch,  # noqa: F811
                                                                      capsys):
    monkeypatch.setenv("NNLAB_PROFILE", "smoke")
    assert cli.main(["run", "toy"]) == 0
    assert [c.epochs for c in toy_experiment] == [1]            # the smoke config ran
    assert cli.main(["check"]) == 0 and cli.main(["show", "toy", "--format", "csv"]) == 0
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "(profile smoke)" in out and "smoke profile" in out and re.search(r"toy .*fresh", out)
    assert cli.main(["check", "--profile", "full"]) == 1
    assert cli.main(["show", "toy", "--profile", "full"]) == 1
    assert "toy: missing" in capsys.readouterr().out


def test_a_bad_nnlab_profile_or_nnlab_cache_names_the_variable(toy_experiment, monkeypatch, capsys,  # noqa: F811
                                                               tmp_path):
    monkeypatch.setenv("NNLAB_PROFILE", "bogus")
    for command in (["run", "toy"], ["show", "toy"], ["list"], ["check"]):
        assert cli.main(command) in (2, 0)
        assert "NNLAB_PROFILE='bogus'" in capsys.readouterr().err + capsys.readouterr().out
    monkeypatch.delenv("NNLAB_PROFILE")
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path / "a-file"))
    for command in (["run", "toy"], ["show", "toy"], ["check"]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err
        assert "NNLAB_CACHE=" in err and "is not a folder" in err


# --------------------------------------------------------------------------------------- messages

def test_show_never_computes_and_names_the_command(toy_experiment, capsys):  # noqa: F811
    assert cli.main(["show", "toy", "--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "is missing" in err and "nnlab run toy --profile smoke" in err and "commit" not in err
    assert toy_experiment == []


def test_one_corrupt_entry_is_reported_and_does_not_stop_the_others(toy_experiment, monkeypatch,  # noqa: F811
                                                                    capsys):
    monkeypatch.setattr(experiments, "available", lambda: ("toy", "toy2"))
    assert cli.main(["run", "toy", "toy2"]) == 0
    p = cache.resolve("toy")
    (p.cache.path("toy", p.key) / "meta.json").write_text("[]")
    capsys.readouterr()
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "toy: corrupt" in out and "toy2" not in out.replace("toy2 ", "") and "1 problem(s)" in out
    assert cli.main(["list"]) == 0
    assert re.search(r"toy .*corrupt", capsys.readouterr().out)
    assert cli.main(["show", "toy"]) == 1
    err = capsys.readouterr().err
    assert "is corrupt" in err and "Traceback" not in err
    assert (p.cache.path("toy", p.key) / "meta.json").read_text() == "[]"   # nothing deleted


# ------------------------------------------------------------------------------------------- clean

def test_clean_removes_cache_entries_and_nothing_else(toy_experiment, tmp_path, capsys):  # noqa: F811
    """NNLAB_CACHE pointing at a home-like folder: only entries go, symlinks are never followed."""
    home = tmp_path
    user_files = [home / "Documents" / "taxes" / "return.pdf", home / "projects" / "thesis" / "thesis.tex",
                  home / "toy" / ("a" * 20) / "notes.txt"]          # key-shaped, but not an entry
    for f in user_files:
        f.parent.mkdir(parents=True)
        f.write_text("precious")
    assert cli.main(["run", "toy"]) == 0 and cli.main(["run", "toy", "--set", "epochs=5"]) == 0
    stale = cache.plan("toy", "full", {"epochs": "5"})
    outside = tmp_path.parent / f"outside-{uuid.uuid4().hex}"
    cache.Cache(outside).put("toy", "b" * 20, VALUES, {})             # an entry-like folder elsewhere
    (home / "linked").symlink_to(outside)
    (home / "toy" / ("b" * 20)).symlink_to(outside / "toy" / ("b" * 20))   # a stale entry that is a link
    misnamed = home / "toy" / ("c" * 20)
    cache.Cache(home).put("toy", "c" * 20, VALUES, {})
    _rewrite_meta(misnamed, lambda m: m.update(name="perceptron"))     # an entry of something else
    capsys.readouterr()
    assert cli.main(["clean"]) == 0
    out = capsys.readouterr().out
    assert all(f.read_text() == "precious" for f in user_files)
    assert (outside / "toy" / ("b" * 20) / "meta.json").is_file() and (home / "linked").is_symlink()
    assert misnamed.is_dir() and (home / "toy" / ("b" * 20)).is_symlink()
    assert not stale.cache.path("toy", stale.key).exists()
    assert f"removing {stale.cache.path('toy', stale.key)}" in out and "1 entry removed" in out
    assert "leaving alone" in out and cli.main(["check"]) == 0


def test_clean_spares_the_temporary_folder_of_a_running_write(toy_experiment, tmp_path, capsys):  # noqa: F811
    """Fails if clean empties .tmp/ regardless: the writer then loses its result."""
    reached, go = tmp_path / "reached", tmp_path / "go"
    script = textwrap.dedent(f"""
        import os, time, pandas as pd
        from nnlab import cache
        original = cache._write_files
        def paused_write(folder, values):
            kinds = original(folder, values)
            open({str(reached)!r}, "w").close()
            while not os.path.exists({str(go)!r}):
                time.sleep(0.02)
            return kinds
        cache._write_files = paused_write
        cache.Cache({str(tmp_path)!r}).put("toy", "d" * 20, {{"summary": pd.DataFrame({{"x": [1]}})}}, {{}})
    """)
    writer = subprocess.Popen([sys.executable, "-c", script])
    debris = tmp_path / ".tmp" / f"toy.{'e' * 20}.1.dead"     # a write whose process is gone
    old = tmp_path / ".tmp" / "discard.old"
    try:
        _wait_for(reached, writer)
        debris.mkdir(parents=True)
        old.mkdir()
        os.utime(old, (time.time() - 2 * cache.TMP_MAX_AGE,) * 2)
        assert cli.main(["clean"]) == 0
        in_use = [p for p in (tmp_path / ".tmp").iterdir() if p.name.startswith("toy." + "d" * 20)]
        assert len(in_use) == 1 and not debris.exists() and not old.exists()
    finally:
        go.write_text("")
        assert writer.wait(120) == 0
    assert cache.Cache(tmp_path).get("toy", "d" * 20)["summary"]["x"].tolist() == [1]


# ----------------------------------------------------------------------------------- the interface

def test_every_argument_has_help_and_every_variable_is_listed():
    ap = cli.parser()
    subparsers = next(a for a in ap._actions if a.choices and isinstance(a.choices, dict)).choices
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help, f"nnlab {name} {action.dest} has no help"
    text = ap.format_help()
    source = "".join(p.read_text() for p in Path(cli.__file__).parent.rglob("*.py"))
    for variable in sorted(set(re.findall(r"NNLAB_[A-Z_]+", source))):
        assert variable in text, f"{variable} is used but not listed in `nnlab --help`"


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and re.fullmatch(r"nnlab \S+\n", capsys.readouterr().out)


def test_config_prints_every_field_with_value_default_and_range(toy_experiment, capsys):  # noqa: F811
    assert cli.main(["config", "toy", "--profile", "smoke"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "profile smoke" in lines[0] and lines[1].split() == ["field", "type", "smoke", "profile", "default",
                                                                "allowed"]
    epochs = next(line for line in lines if line.startswith("epochs"))
    assert epochs.split()[:4] == ["epochs", "int", "1", "3"] and ">= 1 and <= 10000000" in epochs
    assert any(line.startswith("sizes") and "1 to 10000 items" in line for line in lines)


def test_progress_in_a_log_is_one_line_per_update(monkeypatch, capsys):
    monkeypatch.setenv("NNLAB_PROGRESS", "log")
    monkeypatch.setenv("NNLAB_PROGRESS_INTERVAL", "0")
    list(progress.bar(range(3), desc="demo"))
    lines = [line.strip("\r") for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert [line.split(" (")[0] for line in lines][:4] == ["demo: 0/3", "demo: 1/3", "demo: 2/3", "demo: 3/3"]
    monkeypatch.setenv("NNLAB_PROGRESS", "")
    list(progress.bar(range(3), desc="demo"))                # not a terminal, no log asked: silent
    assert capsys.readouterr().err == ""


def test_a_log_shared_by_stdout_and_stderr_keeps_every_line_whole(monkeypatch):
    """`nnlab run > log 2>&1`: a result line printed while a bar is open starts a line of its own."""
    monkeypatch.setenv("NNLAB_PROGRESS", "log")
    monkeypatch.setenv("NNLAB_PROGRESS_INTERVAL", "0")
    log = io.StringIO()
    monkeypatch.setattr(sys, "stdout", log)
    monkeypatch.setattr(sys, "stderr", log)
    with progress.bar(total=2, desc="demo") as bar:
        bar.update()
        progress.write("result line")
        bar.update()
    lines = log.getvalue().split("\n")
    assert "result line" in lines and "\r" not in log.getvalue() and lines[-1] == ""
    statuses = [line for line in lines if line.startswith("demo:")]
    assert [line.split(" (")[0] for line in statuses] == ["demo: 0/2", "demo: 1/2", "demo: 2/2"]


def test_run_reports_experiments_done_in_a_log(toy_experiment, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("NNLAB_PROGRESS", "log")
    monkeypatch.setenv("NNLAB_PROGRESS_INTERVAL", "0")
    monkeypatch.setattr(experiments, "available", lambda: ("toy", "toy2"))
    assert cli.main(["run", "--all", "--profile", "smoke"]) == 0
    err = capsys.readouterr().err
    assert "experiments: 1/2" in err and "experiments: 2/2" in err


def test_check_and_list_need_no_experiment_import_when_nothing_changed(tmp_path):
    """The key memo: after one run, `nnlab check` and `nnlab list` import neither an experiment nor torch."""
    env = dict(os.environ, NNLAB_CACHE=str(tmp_path), NNLAB_PROFILE="smoke")
    for command in (["run", "softmax"], ["check"]):       # the second fills the memo of every experiment
        subprocess.run([sys.executable, "-m", "nnlab", *command], env=env, capture_output=True, timeout=300)
    probe = ("import sys; from nnlab import cli; code = cli.main(sys.argv[1:]); "
             "print([m for m in sys.modules if m == 'torch' or m.startswith('nnlab.experiments.')])")
    for command in (["check"], ["list"]):
        out = subprocess.run([sys.executable, "-c", probe, *command], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.stdout.splitlines()[-1] == "[]", out.stdout + out.stderr
    meta = json.loads(next(tmp_path.glob(".smoke/softmax/*/meta.json")).read_text())
    assert meta["threads"] >= 1 and meta["cpu"] and meta["cpu_count"] >= 1


def test_an_entry_of_the_old_format_counts_as_stale_and_clean_removes_it(toy_experiment, tmp_path,  # noqa: F811
                                                                         capsys):
    old = tmp_path / "toy" / ("f" * 20)        # as committed before meta.json carried its checksum
    old.mkdir(parents=True)
    (old / "meta.json").write_text(json.dumps({"name": "toy", "key": "f" * 20, "profile": "full",
                                               "files": {}}))
    assert cli.main(["check"]) == 1
    assert "toy: stale (1 entry from other code)" in capsys.readouterr().out
    assert cli.main(["clean"]) == 0
    assert not old.exists() and "1 entry removed" in capsys.readouterr().out
