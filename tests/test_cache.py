"""The cache stores results faithfully, atomically and once, and never serves a corrupt entry."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from nnlab import cache, experiments
from nnlab.config import param

VALUES = {
    "curve": np.linspace(0, 1, 7, dtype=np.float32),
    "weights": np.random.default_rng(0).normal(size=(3, 4)),
    "summary": pd.DataFrame({"run": ["a", "b"], "error": [0.1 + 0.2, 1 / 3], "diverged_at": [np.nan, 5]}),
    "best_epoch": 755, "note": "ok", "lrs": [0.1, 1.0],
}


def _subprocess(code: str, root) -> subprocess.Popen:
    script = textwrap.dedent(code).replace("ROOT", repr(str(root)))
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_round_trip_is_exact(tmp_path):
    res = cache.Cache(tmp_path).put("toy", "k1", VALUES, {"profile": "full"})
    np.testing.assert_array_equal(res["curve"], VALUES["curve"])
    assert res["curve"].dtype == np.float32
    np.testing.assert_array_equal(res.weights, VALUES["weights"])  # bit-exact float64
    assert res["summary"]["error"].tolist() == VALUES["summary"]["error"].tolist()
    assert res["summary"]["diverged_at"].isna().tolist() == [True, False]
    assert (res["best_epoch"], res["note"], res["lrs"]) == (755, "ok", [0.1, 1.0])
    meta = json.loads((tmp_path / "toy" / "k1" / "meta.json").read_text())
    assert set(meta["files"]) == {"arrays.npz", "summary.csv", "scalars.json"}


def test_flipped_byte_is_detected_and_recomputed(tmp_path):
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    data = tmp_path / "toy" / "k1" / "summary.csv"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="corrupt"):
        assert store.get("toy", "k1") is None
    assert not (tmp_path / "toy" / "k1").exists()
    calls = []
    res = store.get_or_compute("toy", "k1", lambda: calls.append(1) or VALUES, {})
    assert calls == [1] and res["summary"].equals(store.get("toy", "k1")["summary"])


def test_object_arrays_are_refused_on_write_and_on_read(tmp_path):
    store = cache.Cache(tmp_path)
    with pytest.raises(TypeError, match="object array"):
        store.put("toy", "k1", {"bad": np.array([{"a": 1}], dtype=object)}, {})
    store.put("toy", "k2", {"fine": np.zeros(2)}, {})
    folder = tmp_path / "toy" / "k2"
    np.savez(folder / "arrays.npz", fine=np.array([{"a": 1}], dtype=object))  # a pickled payload
    meta = json.loads((folder / "meta.json").read_text())
    meta["files"]["arrays.npz"] = cache._sha256(folder / "arrays.npz")  # even with a valid checksum
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="corrupt"):
        assert store.get("toy", "k2") is None


def test_sigkill_during_a_write_leaves_no_entry_that_loads(tmp_path):
    marker = tmp_path / "writing"
    proc = _subprocess(f"""
        import time, numpy as np
        from nnlab import cache
        original = cache._write_files
        def slow_write(folder, values):
            original(folder, values)           # files are on disk, entry not yet renamed
            open({str(marker)!r}, "w").close()
            time.sleep(60)
        cache._write_files = slow_write
        cache.Cache(ROOT).put("toy", "k1", {{"x": np.ones(1000)}}, {{}})
    """, tmp_path)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the writer never reached the middle of its write"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = cache.Cache(tmp_path)
    assert store.get("toy", "k1") is None and store.keys("toy") == []
    assert store.get_or_compute("toy", "k1", lambda: VALUES, {})["best_epoch"] == 755


def test_two_processes_compute_once(tmp_path):
    counter = tmp_path / "computations"
    code = f"""
        import time, numpy as np
        from nnlab import cache
        def compute():
            with open({str(counter)!r}, "a") as fh:
                fh.write("computed\\n")
            time.sleep(1.0)
            return {{"x": np.arange(5.0), "t": time.time()}}
        print(cache.Cache(ROOT).get_or_compute("toy", "k1", compute, {{}})["t"])
    """
    procs = [_subprocess(code, tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert counter.read_text().count("computed") == 1
    assert outputs[0] == outputs[1]  # both got the one stored result


@dataclass(frozen=True)
class ToyConfig:
    epochs: int = param(3, ge=1)


@pytest.fixture
def toy_experiment(monkeypatch, tmp_path):
    """A registered experiment named 'toy' (its code fingerprint is that of nnlab.config)."""
    runs = []

    def run(config):
        runs.append(config)
        return {"summary": pd.DataFrame({"epochs": [config.epochs]}), "curve": np.zeros(config.epochs)}

    module = types.SimpleNamespace(__name__="nnlab.config", CHAPTER="chapters/toy.qmd", run=run,
                                   PROFILES={"full": ToyConfig(), "smoke": ToyConfig(epochs=1)})
    monkeypatch.setattr(experiments, "get", lambda name: module)
    monkeypatch.setattr(experiments, "available", lambda: ("toy",))
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path))
    return runs


def test_config_change_changes_key(toy_experiment):
    full, smoke = cache.plan("toy", "full"), cache.plan("toy", "smoke")
    assert full.key != smoke.key
    assert cache.plan("toy", "full", {"epochs": "4"}).key != full.key
    assert cache.plan("toy", "full", {"epochs": "3"}).key == full.key


def test_load_computes_once_then_serves(toy_experiment):
    first = cache.load("toy", "full")
    second = cache.load("toy", "full")
    assert len(toy_experiment) == 1 and first["curve"].shape == (3,)
    assert second.meta["key"] == cache.plan("toy", "full").key and second.meta["seconds"] >= 0


def test_no_compute_names_experiment_and_command(toy_experiment, monkeypatch):
    monkeypatch.setenv("NNLAB_NO_COMPUTE", "1")
    with pytest.raises(cache.CacheMiss, match=r"'toy'.*nnlab run toy --profile smoke"):
        cache.load("toy", "smoke")
    assert toy_experiment == []


def test_status_moves_from_missing_to_fresh_to_stale(toy_experiment, monkeypatch):
    p = cache.plan("toy", "full")
    assert cache.status(p) == "missing"
    cache.compute(p)
    assert cache.status(p) == "fresh"
    monkeypatch.setattr(cache, "fingerprint", lambda module: "edited code")
    assert cache.status(cache.plan("toy", "full")) == "stale"


def test_bad_override_names_the_field_and_range(toy_experiment):
    with pytest.raises(cache.cfg.ConfigError, match=r"toy\.epochs = 0: allowed range is >= 1"):
        cache.plan("toy", "full", {"epochs": "0"})


def test_unknown_experiment_lists_known_names():
    with pytest.raises(experiments.UnknownExperiment) as err:
        experiments.get("no_such_experiment")
    assert "no_such_experiment" in str(err.value) and "known experiments" in str(err.value)
