"""The cache stores results faithfully, atomically and once, never serves what was not asked for, and
never deletes or loses a result because of a failed read, a kill or a concurrent run."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnlab import cache, experiments
from nnlab.config import param

VALUES = {
    "curve": np.linspace(0, 1, 7, dtype=np.float32),
    "weights": np.random.default_rng(0).normal(size=(3, 4)),
    "summary": pd.DataFrame({"run": ["a", "b"], "error": [0.1 + 0.2, 1 / 3], "diverged_at": [np.nan, 5]}),
    "best_epoch": 755, "note": "ok", "lrs": [0.1, 1.0], "f2_h3_lr0.1_test_error": np.ones(2),
}
OTHER = {"curve": np.arange(3.0), "summary": pd.DataFrame({"run": ["c"], "error": [0.5]}), "best_epoch": 1}


def _subprocess(code: str, root) -> subprocess.Popen:
    script = textwrap.dedent(code).replace("ROOT", repr(str(root)))
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen | None = None, limit: float = 120) -> None:
    """Wait until ``path`` exists (a subprocess reached a point), failing if it died or never did."""
    deadline = time.monotonic() + limit
    while not path.exists():
        assert proc is None or proc.poll() is None, "the subprocess ended before reaching the point"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _same(result, values) -> bool:
    """Whether a stored result holds exactly ``values``."""
    for key, value in values.items():
        got = result[key]
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got, value)
        elif isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and np.array_equal(got, value, equal_nan=True)
        else:
            assert got == value
    return set(result) == set(values)


def _rewrite_meta(folder: Path, change) -> None:
    """Edit an entry's meta.json and give it a valid checksum again (a consistent but wrong entry)."""
    meta = json.loads((folder / "meta.json").read_text())
    meta = change(meta) or meta
    if isinstance(meta, dict):
        meta["meta_sha256"] = cache.meta_digest(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


# ----------------------------------------------------------------------------------- faithful, atomic

def test_round_trip_is_exact(tmp_path):
    res = cache.Cache(tmp_path).put("toy", "k1", VALUES, {"profile": "full"})
    assert _same(res, VALUES) and res["weights"].dtype == np.float64 and res["curve"].dtype == np.float32
    meta = json.loads((tmp_path / "toy" / "k1" / "meta.json").read_text())
    assert set(meta["files"]) == {"arrays.npz", "summary.csv", "scalars.json"}
    assert meta["results"] == {"curve": "array", "weights": "array", "summary": "table", "best_epoch": "scalar",
                               "note": "scalar", "lrs": "scalar", "f2_h3_lr0.1_test_error": "array"}


@pytest.mark.parametrize("fname", ["summary.csv", "arrays.npz", "scalars.json", "meta.json"])
def test_a_flipped_byte_in_any_file_is_detected_left_in_place_and_recomputed(tmp_path, fname):
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    path = tmp_path / "toy" / "k1" / fname
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="corrupt"):
        assert store.get("toy", "k1") is None
    assert path.read_bytes() == bytes(raw)            # reported, not deleted
    assert store.verify("toy", "k1") is not None
    calls = []
    res = store.get_or_compute("toy", "k1", lambda: calls.append(1) or VALUES, {})
    assert calls == [1] and res.computed and _same(res, VALUES)   # the recomputed entry holds the values
    assert _same(store.get("toy", "k1"), VALUES)


def test_object_arrays_are_refused_on_write_and_on_read(tmp_path):
    store = cache.Cache(tmp_path)
    with pytest.raises(TypeError, match="object array"):
        store.put("toy", "k1", {"bad": np.array([{"a": 1}], dtype=object)}, {})
    store.put("toy", "k2", {"fine": np.zeros(2)}, {})
    folder = tmp_path / "toy" / "k2"
    np.savez(folder / "arrays.npz", fine=np.array([{"a": 1}], dtype=object))  # a pickled payload
    _rewrite_meta(folder, lambda m: m["files"].update({"arrays.npz": cache._sha256(folder / "arrays.npz")}))
    with pytest.warns(UserWarning, match="corrupt"):
        assert store.get("toy", "k2") is None


SLOW_WRITE = """
    import os, time, numpy as np, pandas as pd
    from nnlab import cache
    original = cache._write_files
    def slow_write(folder, values):
        kinds = original(folder, values)       # files are on disk, entry not yet renamed
        open(MARKER, "w").close()
        time.sleep(120)
        return kinds
    cache._write_files = slow_write
    cache.Cache(ROOT).put("toy", "k1", {"summary": pd.DataFrame({"x": [9.0]}), "x": np.ones(1000)}, {})
"""


def test_sigkill_during_a_rewrite_keeps_the_old_entry_whole(tmp_path):
    """Fails if writes go straight into the entry's folder (meta.json last): the kill leaves new files
    under the old meta.json."""
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    marker = tmp_path / "writing"
    proc = _subprocess(SLOW_WRITE.replace("MARKER", repr(str(marker))), tmp_path)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _same(store.get("toy", "k1"), VALUES)
    assert store.keys("toy") == ["k1"]


def test_sigkill_during_a_first_write_leaves_no_entry(tmp_path):
    marker = tmp_path / "writing"
    proc = _subprocess(SLOW_WRITE.replace("MARKER", repr(str(marker))), tmp_path)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = cache.Cache(tmp_path)
    assert store.get("toy", "k1") is None and store.keys("toy") == []
    assert store.get_or_compute("toy", "k1", lambda: VALUES, {})["best_epoch"] == 755


def test_sigkill_between_the_two_renames_of_a_forced_rewrite_loses_nothing(tmp_path):
    """Fails if the old entry is deleted before the new one is renamed in."""
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    marker = tmp_path / "between"
    final = str(store.path("toy", "k1"))
    proc = _subprocess(f"""
        import os, time, numpy as np, pandas as pd
        from nnlab import cache
        rename = os.rename
        def pausing_rename(src, dst):
            rename(src, dst)
            if str(src) == {final!r}:            # the old entry has just left its place
                open({str(marker)!r}, "w").close()
                time.sleep(120)
        os.rename = pausing_rename
        cache.Cache(ROOT).put("toy", "k1", {{"summary": pd.DataFrame({{"x": [9.0]}})}}, {{}})
    """, tmp_path)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _same(store.get("toy", "k1"), VALUES)         # the old entry, found aside and put back
    assert (tmp_path / "toy" / "k1" / "meta.json").is_file()
    store.put("toy", "k1", OTHER, {})                    # and the next rewrite completes normally
    assert _same(store.get("toy", "k1"), OTHER) and not store.aside("toy", "k1").exists()


def test_a_read_racing_a_rewrite_retries_and_gets_a_whole_entry(tmp_path, monkeypatch):
    """A reader that has read the old meta.json when a rewrite swaps the entry must neither fail, nor
    report corruption, nor delete the new entry (fails without the retry under the swap lock)."""
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    read_meta, rewritten, paused = cache.read_meta, threading.Event(), threading.Event()

    def pausing_read_meta(folder):
        meta = read_meta(folder)
        if not paused.is_set():
            paused.set()
            assert rewritten.wait(60)
        return meta

    monkeypatch.setattr(cache, "read_meta", pausing_read_meta)
    found = {}
    reader = threading.Thread(target=lambda: found.setdefault("res", store.get("toy", "k1")))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")     # a "corrupt" warning fails the test
        reader.start()
        assert paused.wait(60)
        store.put("toy", "k1", OTHER, {})
        rewritten.set()
        reader.join(60)
    assert _same(found["res"], OTHER)
    assert _same(store.get("toy", "k1"), OTHER)


def test_the_retry_holds_the_swap_lock_so_a_second_rewrite_waits(tmp_path, monkeypatch):
    """The retry must read a whole entry even if yet another rewrite comes: it holds the swap lock, so
    that rewrite waits (fails if the retry takes no lock; the reader gives a rewrite 5 s to finish)."""
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    read_meta, calls = cache.read_meta, []
    paused = [threading.Event(), threading.Event()]
    rewritten = [threading.Event(), threading.Event()]

    def pausing_read_meta(folder):
        meta = read_meta(folder)
        if threading.current_thread() is not reader:
            return meta
        n = len(calls)
        calls.append(n)
        if n < 2:
            paused[n].set()
            rewritten[n].wait(60 if n == 0 else 5)
        return meta

    monkeypatch.setattr(cache, "read_meta", pausing_read_meta)
    found, third = {}, {**OTHER, "best_epoch": 3}
    reader = threading.Thread(target=lambda: found.setdefault("res", store.get("toy", "k1")))
    writer = threading.Thread(target=lambda: (store.put("toy", "k1", third, {}), rewritten[1].set()))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        reader.start()
        assert paused[0].wait(60)
        store.put("toy", "k1", OTHER, {})          # the first attempt now reads a swapped entry
        rewritten[0].set()
        assert paused[1].wait(60)                  # the retry, holding the swap lock, has read meta.json
        writer.start()
        reader.join(120)
        writer.join(120)
    assert _same(found["res"], OTHER)
    assert _same(store.get("toy", "k1"), third)


def test_readers_and_forced_rewrites_in_parallel_processes(tmp_path):
    """The reproduction of the issue, bounded by a number of rewrites: no reader error, no lost entry."""
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    done = tmp_path / "writer-done"
    writer = _subprocess(f"""
        import numpy as np, pandas as pd
        from nnlab import cache
        store = cache.Cache(ROOT)
        for i in range(15):
            store.get_or_compute("toy", "k1", lambda: {{"summary": pd.DataFrame({{"i": [i]}}),
                                                        "x": np.full(2000, i)}}, {{}}, force=True)
        open({str(done)!r}, "w").close()
    """, tmp_path)
    readers = [_subprocess(f"""
        import os, warnings
        warnings.simplefilter("error")
        from nnlab import cache
        store, reads = cache.Cache(ROOT), 0
        while not os.path.exists({str(done)!r}) or reads < 5:
            res = store.get("toy", "k1")
            assert res is not None and len(res["summary"]) >= 1
            reads += 1
        print(reads)
    """, tmp_path) for _ in range(2)]
    assert writer.wait(300) == 0
    for r in readers:
        r.communicate(timeout=300)
        assert r.returncode == 0
    assert store.get("toy", "k1")["summary"]["i"].tolist() == [14]


def test_two_processes_compute_once_and_only_one_says_it_computed(tmp_path):
    counter = tmp_path / "computations"
    code = f"""
        import time, numpy as np
        from nnlab import cache
        def compute():
            with open({str(counter)!r}, "a") as fh:
                fh.write("computed\\n")
            time.sleep(1.0)
            return {{"x": np.arange(5.0), "t": time.time()}}
        res = cache.Cache(ROOT).get_or_compute("toy", "k1", compute, {{}})
        print(res["t"], res.computed)
    """
    procs = [_subprocess(code, tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert counter.read_text().count("computed") == 1
    assert outputs[0][0] == outputs[1][0]  # both got the one stored result
    assert sorted(o[1] for o in outputs) == ["False", "True"]


# ------------------------------------------------------------------------------- reads never delete

def test_an_io_error_is_reported_and_deletes_nothing(tmp_path, monkeypatch):
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})

    def too_many_files(path):
        raise OSError(errno.EMFILE, "Too many open files", str(path))

    monkeypatch.setattr(cache, "_sha256", too_many_files)
    with pytest.raises(cache.UnreadableEntry, match="Too many open files"):
        store.get("toy", "k1")
    assert "Too many open files" in store.verify("toy", "k1")
    monkeypatch.undo()
    assert _same(store.get("toy", "k1"), VALUES)


def test_line_ending_conversion_is_reported_and_the_entry_kept_under_no_compute(toy_experiment, monkeypatch):
    p = cache.plan("toy", "full")
    cache.compute(p)
    csv = p.cache.path("toy", p.key) / "summary.csv"
    crlf = csv.read_bytes().replace(b"\n", b"\r\n")
    csv.write_bytes(crlf)                                  # what core.autocrlf does to a checkout
    monkeypatch.setenv("NNLAB_NO_COMPUTE", "1")
    with pytest.warns(UserWarning, match="corrupt"), \
            pytest.raises(cache.CacheMiss, match=r"'toy' \(profile full\) is corrupt"):
        cache.load("toy", "full")
    assert csv.read_bytes() == crlf and cache.status(p) == "corrupt"
    assert toy_experiment == [p.config]                    # computed once, not again


def test_gitattributes_keep_git_from_converting_cache_files():
    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "check-attr", "text", "diff", "--", "cache/softmax/0123/summary.csv"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    assert "text: unset" in out and "diff: unset" in out


# -------------------------------------------------------------------- serving only what was asked

@dataclass(frozen=True)
class ToyConfig:
    epochs: int = param(3, ge=1)
    sizes: tuple[int, ...] = param((2,), ge=1, each=True)


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
    monkeypatch.delenv("NNLAB_PROFILE", raising=False)
    monkeypatch.delenv("NNLAB_NO_COMPUTE", raising=False)
    return runs


def edit_code(monkeypatch):
    """What editing the experiment's code does: its sources' bytes and its fingerprint change."""
    monkeypatch.setattr(cache, "fingerprint", lambda module: "edited code")
    monkeypatch.setattr(cache, "source_state", lambda modules: "edited bytes")


@pytest.mark.parametrize("field, value", [("name", "perceptron"), ("profile", "smoke"), ("key", "0" * 20),
                                          ("config", {"epochs": 4, "sizes": [2]}), ("fingerprint", "other")])
def test_an_entry_recording_another_request_is_not_served(toy_experiment, field, value):
    p = cache.plan("toy", "full")
    cache.compute(p)
    _rewrite_meta(p.cache.path("toy", p.key), lambda m: m.update({field: value}))
    with pytest.warns(UserWarning, match=f"records {field}"):
        assert p.cache.get("toy", p.key, p.expect) is None
    assert cache.status(p) == "corrupt"
    assert cache.load("toy", "full")["curve"].shape == (3,) and len(toy_experiment) == 2   # recomputed


@pytest.mark.parametrize("change", [
    lambda m: m.update(files={}), lambda m: m["files"].pop("summary.csv"),
    lambda m: m.update(results={"summary": "table"}), lambda m: m.update(results={}),
    lambda m: m.update(files=list(m["files"])), lambda m: m.update(results={"summary": "pickle"}),
    lambda m: m.update(results={**m["results"], "../../outside": "table"}),
])
def test_an_entry_missing_a_result_or_its_file_is_corrupt(tmp_path, change):
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    _rewrite_meta(tmp_path / "toy" / "k1", change)
    with pytest.warns(UserWarning, match="corrupt"):
        assert store.get("toy", "k1") is None


def test_an_edited_meta_json_fails_its_own_checksum(tmp_path):
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {"seconds": 1.0})
    path = tmp_path / "toy" / "k1" / "meta.json"
    path.write_text(path.read_text().replace('"seconds": 1.0', '"seconds": 2.0'))
    assert "own checksum" in store.verify("toy", "k1")
    whitespace = json.dumps(json.loads(path.read_text().replace('"seconds": 2.0', '"seconds": 1.0')))
    path.write_text(whitespace.replace("\n", "\r\n"))      # only whitespace changed: still intact
    assert _same(store.get("toy", "k1"), VALUES)


@pytest.mark.parametrize("meta_text", ["[]", "null", "", "{", '"text"', '{"files": ["summary.csv"]}'])
def test_malformed_meta_json_is_reported_as_corrupt(tmp_path, meta_text):
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    (tmp_path / "toy" / "k1" / "meta.json").write_text(meta_text)
    with pytest.warns(UserWarning, match="corrupt"):
        assert store.get("toy", "k1") is None
    assert store.verify("toy", "k1")


@pytest.mark.parametrize("scalars", ["[1, 2]", "null", '{"best_epoch": 755}', "{"])
def test_a_scalars_json_of_the_wrong_shape_is_corrupt(tmp_path, scalars):
    store = cache.Cache(tmp_path)
    store.put("toy", "k1", VALUES, {})
    folder = tmp_path / "toy" / "k1"
    (folder / "scalars.json").write_text(scalars)
    _rewrite_meta(folder, lambda m: m["files"].update({"scalars.json": cache._sha256(folder / "scalars.json")}))
    with pytest.warns(UserWarning, match="corrupt"):
        assert store.get("toy", "k1") is None


# ----------------------------------------------------------------------------- plans, keys, state

def test_config_change_changes_key(toy_experiment):
    full, smoke = cache.plan("toy", "full"), cache.plan("toy", "smoke")
    assert full.key != smoke.key
    assert cache.plan("toy", "full", {"epochs": "4"}).key != full.key
    assert cache.plan("toy", "full", {"epochs": "3"}).key == full.key


def test_load_computes_once_then_serves(toy_experiment):
    first = cache.load("toy", "full")
    second = cache.load("toy", "full")
    assert len(toy_experiment) == 1 and first["curve"].shape == (3,) and first.computed
    assert second.meta["key"] == cache.plan("toy", "full").key and not second.computed
    assert second.meta["threads"] >= 1 and second.meta["cpu"] and second.meta["overrides"] == {}


def test_no_compute_names_experiment_and_command_and_commit_only_for_full(toy_experiment, monkeypatch):
    monkeypatch.setenv("NNLAB_NO_COMPUTE", "1")
    with pytest.raises(cache.CacheMiss, match=r"'toy'.*nnlab run toy --profile smoke`$"):
        cache.load("toy", "smoke")
    with pytest.raises(cache.CacheMiss, match=r"nnlab run toy --profile full` and commit cache/"):
        cache.load("toy", "full")
    with pytest.raises(cache.CacheMiss, match=r"--set epochs=5`$"):
        cache.load("toy", "full", epochs=5)
    assert toy_experiment == []


def test_status_moves_from_missing_to_fresh_to_stale(toy_experiment, monkeypatch):
    p = cache.plan("toy", "full")
    assert cache.status(p) == "missing"
    cache.compute(p)
    assert cache.status(p) == "fresh"
    edit_code(monkeypatch)
    assert cache.status(cache.resolve("toy", "full")) == "stale"


def test_entries_of_other_configs_do_not_make_a_result_stale(toy_experiment):
    cache.compute(cache.plan("toy", "full", {"epochs": "5"}))
    state, detail = cache.diagnose(cache.plan("toy", "full"))
    assert (state, detail) == ("missing", "1 entry with --set values only")


def test_bad_override_names_the_field_and_range(toy_experiment):
    with pytest.raises(cache.cfg.ConfigError, match=r"toy\.epochs = 0: allowed range is >= 1"):
        cache.plan("toy", "full", {"epochs": "0"})


def test_profile_comes_from_nnlab_profile_and_a_bad_one_names_the_variable(monkeypatch):
    monkeypatch.setenv("NNLAB_PROFILE", "smoke")
    assert cache.current_profile() == "smoke" and cache.current_profile("full") == "full"
    monkeypatch.setenv("NNLAB_PROFILE", "bogus")
    with pytest.raises(cache.cfg.ConfigError, match="NNLAB_PROFILE='bogus' is not a profile"):
        cache.current_profile()


def test_nnlab_cache_naming_a_file_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path / "file"))
    with pytest.raises(cache.CacheError, match="NNLAB_CACHE=.*is not a folder"):
        cache.base_dir()


def test_unknown_experiment_lists_known_names():
    with pytest.raises(experiments.UnknownExperiment) as err:
        experiments.get("no_such_experiment")
    assert "no_such_experiment" in str(err.value) and "known experiments" in str(err.value)


# -------------------------------------------------------------------------------------- discarding

def test_discard_tolerates_a_vanished_entry_and_spares_one_being_written(tmp_path):
    store = cache.Cache(tmp_path)
    assert store.discard("toy", "k1")                   # nothing there: fine
    store.put("toy", "k1", VALUES, {})
    held = tmp_path / "held"
    proc = _subprocess(f"""
        import time
        from nnlab import cache
        with cache.Cache(ROOT).lock("toy", "k1"):
            open({str(held)!r}, "w").close()
            time.sleep(120)
    """, tmp_path)
    try:
        _wait_for(held, proc)
        assert store.busy("toy", "k1") and not store.discard("toy", "k1")
        assert _same(store.get("toy", "k1"), VALUES)
    finally:
        proc.kill()
        proc.wait()
    assert store.discard("toy", "k1") and store.get("toy", "k1") is None
