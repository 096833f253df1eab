"""Where independent units of work run: in this process, or as tasks on a Dask cluster.

An experiment names its units (a student, a group of seeds, a cross-validation group) and a
top-level function that computes one; :func:`map_units` runs them. Inside a :func:`session` the
units are Dask tasks: on a ``LocalCluster`` of one-thread worker processes, one per core, or on an
existing scheduler (``session(scheduler="tcp://host:8786")`` or $NNLAB_SCHEDULER). Outside a
session, and in a session of one local worker, they run one after another in this process: a
cluster costs seconds to start, which a chapter or a test in the smoke profile need not pay.

Results never depend on that choice: every unit runs with one torch thread and one BLAS thread,
with the caller's NNLAB_DEVICE, and seeds its own generators; results come back to the caller,
which alone writes the cache.

    with session(workers=2):
        results = map_units(fit_group, groups, experiment="lab2")
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import uuid
from typing import Callable, Iterator, Sequence

from threadpoolctl import threadpool_limits

from nnlab.progress import bar

_session = None  # the open session: where its units go and, once started, its Client

# glibc's allocation in the local cluster's workers. Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536,
# which also pins glibc's mmap threshold at 128 kB: every larger array is mapped and unmapped, and
# units ran 3-4x slower than in a plain process. Speed only, never results.
WORKER_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": str(256 << 20), "MALLOC_MMAP_THRESHOLD_": str(64 << 20)}


class UnitFailed(RuntimeError):
    """A unit of an experiment raised; the message names the experiment and the unit."""


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _positive(value, what: str) -> int | None:
    if value is None or value == "":
        return None
    if not str(value).isdigit() or int(value) < 1:
        raise ValueError(f"{what} = {value!r}: must be a positive integer")
    return int(value)


class _Session:
    """Where a session's units go; the cluster or the connection is made at the first units."""

    def __init__(self, scheduler: str | None, workers: int | None):
        self.scheduler, self.workers = scheduler, workers
        self.stack, self.client = contextlib.ExitStack(), None

    def connect(self):
        """The session's Client, started now if this is its first use."""
        if self.client is not None:
            return self.client
        import dask
        from dask.distributed import Client, LocalCluster

        if self.scheduler is None:
            environ = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENVIRON.items()}
            with dask.config.set(environ):
                cluster = self.stack.enter_context(LocalCluster(  # any free port for the dashboard
                    n_workers=self.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=":0", silence_logs=logging.ERROR))
            self.client = self.stack.enter_context(Client(cluster))
            where = f"a local Dask cluster of {self.workers} worker processes"
        else:
            self.client = self.stack.enter_context(Client(self.scheduler, timeout="30s"))
            where = f"the Dask scheduler at {self.scheduler}"
        link = _dashboard(self.client)
        where += f"; dashboard {link}" if link else " (no dashboard: install bokeh for one)"
        print(f"nnlab: units run on {where}", file=sys.stderr)
        return self.client


@contextlib.contextmanager
def session(scheduler: str | None = None, workers: int | None = None) -> Iterator[None]:
    """Run :func:`map_units` on Dask until the block ends.

    ``scheduler``: address of a running scheduler (default $NNLAB_SCHEDULER); otherwise a local
    cluster of ``workers`` one-thread processes (default $NNLAB_WORKERS, else one per core),
    started when the first units arrive and closed at the end. One local worker: no cluster,
    units run in this process. A session inside a session changes nothing.
    """
    global _session
    scheduler = scheduler or os.environ.get("NNLAB_SCHEDULER") or None
    workers = _positive(workers, "workers") or _positive(os.environ.get("NNLAB_WORKERS"), "NNLAB_WORKERS") \
        or available_cores()
    if _session is not None or (scheduler is None and workers == 1):
        yield
        return
    _session = _Session(scheduler, workers)
    try:
        with _session.stack:
            yield
    finally:
        _session = None


def _dashboard(client) -> str | None:
    """The dashboard address, when bokeh is there to serve it."""
    if not importlib.util.find_spec("bokeh"):
        return None
    try:
        return client.dashboard_link
    except Exception:  # no dashboard on this scheduler
        return None


def workers() -> int:
    """Worker processes the units are spread over (1: in this process)."""
    if _session is None:
        return 1
    return max(1, len(_session.connect().scheduler_info().get("workers", {})))


def run_unit(fn: Callable, unit, device: str | None = None):
    """``fn(unit)`` with one torch and one BLAS thread and the caller's NNLAB_DEVICE: how every
    unit runs, in this process or on a worker."""
    import torch  # here, not at the top: this module is in the cache key of numpy-only experiments

    before = os.environ.get("NNLAB_DEVICE"), torch.get_num_threads()
    if device is not None:
        os.environ["NNLAB_DEVICE"] = device
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return fn(unit)
    finally:
        torch.set_num_threads(before[1])
        if before[0] is None:
            os.environ.pop("NNLAB_DEVICE", None)
        else:
            os.environ["NNLAB_DEVICE"] = before[0]


def _describe(unit) -> str:
    text = repr(unit)
    return text if len(text) <= 200 else text[:197] + "..."


def map_units(fn: Callable, units: Sequence, *, experiment: str) -> list:
    """``[fn(unit) for unit in units]``, in the order of ``units``, each unit a Dask task in a
    :func:`session` (else run here, one after another).

    ``fn`` must be a picklable top-level function whose result depends on ``unit`` alone. A unit
    that raises stops the run with :class:`UnitFailed` naming the experiment and the unit; a worker
    that dies mid-task is replaced and its task re-run (Dask's own retry).
    """
    units = list(units)
    device = os.environ.get("NNLAB_DEVICE")
    if _session is None or (_session.scheduler is None and len(units) < 2):  # no cluster for one unit
        results = []
        for i, unit in enumerate(bar(units, desc=experiment, unit="unit")):
            try:
                results.append(run_unit(fn, unit, device))
            except Exception as err:
                raise UnitFailed(f"{experiment}: unit {i} of {len(units)} failed ({type(err).__name__}: "
                                 f"{err}); unit = {_describe(unit)}") from err
        return results

    from dask.distributed import as_completed

    client, token = _session.connect(), uuid.uuid4().hex[:8]
    futures = [client.submit(run_unit, fn, unit, device, key=f"{experiment}-unit-{i}-{token}", pure=False)
               for i, unit in enumerate(units)]
    index = {f.key: i for i, f in enumerate(futures)}
    results = [None] * len(units)
    try:
        with bar(total=len(units), desc=experiment, unit="unit") as progress:
            for future in as_completed(futures):
                i = index[future.key]
                try:
                    results[i] = future.result()
                except Exception as err:
                    raise UnitFailed(f"{experiment}: unit {i} of {len(units)} failed "
                                     f"({type(err).__name__}: {err}); unit = {_describe(units[i])}") from err
                progress.update()
    finally:
        client.cancel(futures)  # a failure: drop the other tasks; success: free the results
    return results
