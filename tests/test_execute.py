"""The executor: units give the same results to the last bit wherever they run (in this process, on a
local Dask cluster, on a separately started scheduler and workers); a killed worker's task is re-run;
a failing unit names itself and leaves the cache untouched."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import execute_units as units
from nnlab import cache, cli, execute
from nnlab.experiments import lab2

SEED_GROUPS = [[0, 1], [2], [3, 4, 5]]
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def reference():
    """The units run one after another in this process, outside any session."""
    return execute.map_units(units.train_seeds, SEED_GROUPS, experiment="reference")


def test_outside_a_session_units_run_here_in_order_with_one_thread(reference):
    torch.set_num_threads(2)
    try:
        assert [r["threads"] for r in reference] == [1, 1, 1]
        again = execute.map_units(units.train_seeds, SEED_GROUPS, experiment="again")
        assert all(units.same(a, b) for a, b in zip(reference, again))
        assert torch.get_num_threads() == 2  # the caller's thread count is restored
    finally:
        torch.set_num_threads(1)
    assert [r["train_loss"].shape[0] for r in reference] == [2, 1, 3]  # in the order of the units
    with execute.session(workers=1):  # one local worker: no cluster is started
        assert execute._session is None and execute.workers() == 1


def test_bad_worker_count_is_named(monkeypatch):
    monkeypatch.setenv("NNLAB_WORKERS", "zero")
    with pytest.raises(ValueError, match="NNLAB_WORKERS = 'zero'"):
        with execute.session():
            pass


def compare_results(a: cache.Result, b: cache.Result):
    """Every array, table and scalar equal to the last bit, timing values excepted."""
    assert set(a) == set(b)
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True)
        elif isinstance(x, np.ndarray):
            assert np.array_equal(x, y, equal_nan=True), key
        elif "seconds" not in key:
            assert x == y or (x != x and y != y), key


def run_lab2(folder: Path, *options) -> cache.Result:
    """`nnlab run lab2 --profile smoke OPTIONS` into a cache of its own, and its result."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNLAB_CACHE", str(folder))
        assert cli.main(["run", "lab2", "--profile", "smoke", *options]) == 0
        return cache.load("lab2", "smoke")


@pytest.fixture(scope="module")
def lab2_here(tmp_path_factory):
    """lab2 (smoke) with one worker: its units run one after another in this process."""
    return run_lab2(tmp_path_factory.mktemp("one"), "--workers", "1")


def test_lab2_on_two_local_workers_is_identical_to_one(lab2_here, tmp_path, capsys):
    two = run_lab2(tmp_path, "--workers", "2")
    assert "local Dask cluster of 2 worker processes" in capsys.readouterr().err
    compare_results(lab2_here, two)


@pytest.fixture(scope="module")
def local_cluster():
    """Two one-thread worker processes with nannies (which restart a dead worker), as session() makes."""
    from dask.distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_units_on_two_local_workers_are_identical(local_cluster, reference):
    with execute.session(scheduler=local_cluster):
        assert execute.workers() == 2
        done = execute.map_units(units.train_seeds, SEED_GROUPS, experiment="local")
        where = execute.map_units(units.pid, range(4), experiment="pids")
    assert all(units.same(a, b) for a, b in zip(reference, done))
    assert os.getpid() not in where


def test_a_local_session_prints_its_dashboard_address(capsys):
    with execute.session(workers=2):
        execute.map_units(abs, [-1, -2], experiment="dashboard")
    err = capsys.readouterr().err
    assert "dashboard http://127.0.0.1:" in err, err


def test_local_workers_get_the_allocation_environment(monkeypatch):
    """Without it Dask's nanny pins glibc's mmap threshold (MALLOC_TRIM_THRESHOLD_=65536): units 3-4x slower."""
    for name in execute.WORKER_ENVIRON:  # Dask leaves the variables in this process: start without them
        monkeypatch.delenv(name, raising=False)
    with execute.session(workers=2):
        seen = execute.map_units(units.environ, [list(execute.WORKER_ENVIRON)] * 2, experiment="environ")
    assert seen == [execute.WORKER_ENVIRON] * 2


def test_a_killed_worker_is_replaced_and_its_task_rerun(local_cluster, reference, tmp_path):
    marker = tmp_path / "killed"
    with execute.session(scheduler=local_cluster):
        done = execute.map_units(units.die_once_then_train, [(seeds, str(marker)) for seeds in SEED_GROUPS],
                                 experiment="faults")
    killed = int(marker.read_text())
    assert all(r["pid"] != killed for r in done)  # every unit finished on a living worker
    assert all(units.same(a, {k: v for k, v in b.items() if k != "pid"}) for a, b in zip(reference, done))


def test_a_failing_unit_names_experiment_and_unit(local_cluster):
    with execute.session(scheduler=local_cluster):
        with pytest.raises(execute.UnitFailed, match=r"odd numbers: unit 1 of 4 failed \(ValueError: odd unit 1\)"):
            execute.map_units(units.fail_on_odd, [0, 1, 2, 4], experiment="odd numbers")
    with pytest.raises(execute.UnitFailed, match="unit = 3"):
        execute.map_units(units.fail_on_odd, [0, 2, 3], experiment="here")


def test_a_failing_unit_writes_nothing_to_the_cache(tmp_path, monkeypatch, capsys):
    def broken(args):
        raise FloatingPointError("broken group")
    monkeypatch.setattr(lab2, "_fit_group", broken)  # serial (one worker): the patch is seen
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path))
    assert cli.main(["run", "lab2", "--profile", "smoke", "--workers", "1"]) == 1
    assert "lab2 grid: unit 0 of" in capsys.readouterr().err
    p = cache.plan("lab2", "smoke")
    assert cache.status(p) == "missing" and p.cache.keys("lab2") == []


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, torn down at the end."""
    folder = tmp_path_factory.mktemp("dask")
    dask = str(Path(sys.executable).parent / "dask")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    scheduler_file = folder / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(scheduler_file)], cwd=folder, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        procs += [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                    "--host", "127.0.0.1", "--name", f"w{i}"], cwd=folder, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
        from dask.distributed import Client
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_separately_started_scheduler_and_workers_give_identical_results(dask_processes, reference):
    with execute.session(scheduler=dask_processes):
        assert execute.workers() == 2
        done = execute.map_units(units.train_seeds, SEED_GROUPS, experiment="remote")
        assert os.getpid() not in execute.map_units(units.pid, range(4), experiment="pids")
    assert all(units.same(a, b) for a, b in zip(reference, done))


def test_nnlab_run_sends_units_to_the_scheduler(dask_processes, lab2_here, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NNLAB_SCHEDULER", dask_processes)
    remote = run_lab2(tmp_path)
    assert f"the Dask scheduler at {dask_processes}" in capsys.readouterr().err
    compare_results(lab2_here, remote)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_units_train_on_the_gpu_when_asked(monkeypatch, local_cluster):
    monkeypatch.setenv("NNLAB_DEVICE", "cuda")
    with execute.session(scheduler=local_cluster):
        assert execute.map_units(units.on_device, range(2), experiment="gpu") == ["cuda", "cuda"]
        assert {r["device"] for r in execute.map_units(units.train_seeds, SEED_GROUPS, experiment="gpu")} == {"cuda"}
