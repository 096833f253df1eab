"""How much faster do an experiment's units finish on 2 Dask workers than on 1?

Two experiments' real units, run through ``nnlab.execute.map_units``:

- ``bell``: eight units of Challenge 2B's size sweep (``bell.compute`` "size" tasks: the residual and the
  shallow net, B6 and two scrambles, one seed per unit, 1,000 training points, 3,000 steps), torch
  engine, compute-bound;
- ``lab2``: lab 2's cross-validation grid (full profile: 576 configurations x 4 folds, one unit per
  layer shape and activation), small numpy networks, memory-bound.

One worker runs the units one after another in this process; two workers are a local Dask cluster
(``execute.session``, the one ``nnlab run`` starts) started and warmed up beforehand, not timed. Both
give the same results to the last bit (checked). Wall time, best of ``--repeats``; last line:

    scaling: 2 workers xN faster than 1 on bell size sweep

    .venv/bin/python benchmarks/bench_scaling.py [--experiment bell|lab2] [--repeats 2] [--workers 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from nnlab import execute
from nnlab.experiments import bell, lab2


def bell_units():
    """Eight size-sweep units of equal size (2 architectures x 4 seeds), and a comparison of results."""
    config = dataclasses.replace(bell.PROFILES["full"], min_steps=3000)
    chosen = {p: 2e-3 for p in bell.size_names(dataclasses.replace(config, size_scrambles=2))}
    units = [(dataclasses.replace(config, size_seeds=(seed,)), "size", architecture, 1000, chosen)
             for architecture in bell.ARCHITECTURES for seed in (0, 1, 2, 3)]

    def run():
        return execute.map_units(bell.compute, units, experiment="bell")

    def same(a, b):
        return all(np.array_equal(x["runs"].final_test, y["runs"].final_test) and
                   np.array_equal(x["runs"].fine_train, y["runs"].fine_train) for x, y in zip(a, b))
    return run, same


def lab2_units():
    """Lab 2's cross-validation grid, and a comparison of results."""
    config = lab2.PROFILES["full"]
    data, grid = lab2.make_data(config), lab2.make_grid(config)

    def same(a, b):
        return all(np.array_equal(a[k], b[k]) for k in ("train", "val"))
    return lambda: lab2.cross_validate(grid, data, config), same


EXPERIMENTS = {"bell": ("bell size sweep", bell_units), "lab2": ("lab2 grid", lab2_units)}


def best_seconds(run, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", choices=EXPERIMENTS, default="bell")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    label, make = EXPERIMENTS[args.experiment]
    run, same = make()
    one, result_one = best_seconds(run, args.repeats)
    print(f"1 worker (this process): {one:.1f} s")
    with execute.session(workers=args.workers):
        execute.map_units(abs, range(args.workers), experiment="start the cluster")  # not timed
        many, result_many = best_seconds(run, args.repeats)
    print(f"{args.workers} workers (local Dask cluster): {many:.1f} s")
    print(f"results identical to the last bit: {same(result_one, result_many)}")
    print(f"scaling: {args.workers} workers x{one / many:.2f} faster than 1 on {label}")


if __name__ == "__main__":
    main()
