"""How much faster do an experiment's units finish on 2 Dask workers than on 1?

The experiment is lab2's cross-validation grid (full profile: 576 configurations x 4 folds, one unit
per layer shape and activation). One worker runs the units one after another in this process; two
workers are a local Dask cluster started (and warmed up, not timed) beforehand. Both give the same
validation losses to the last bit (checked). Wall time, best of ``--repeats``; last line:

    scaling: 2 workers xN faster than 1 on lab2 grid

    .venv/bin/python benchmarks/bench_scaling.py [--repeats 2] [--workers 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from nnlab import execute
from nnlab.experiments import lab2


def grid_seconds(config, data, grid, repeats: int) -> tuple[float, dict]:
    best, cv = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        cv = lab2.cross_validate(grid, data, config)
        best = min(best, time.perf_counter() - start)
    return best, cv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    config = lab2.PROFILES["full"]
    data, grid = lab2.make_data(config), lab2.make_grid(config)
    one, cv_one = grid_seconds(config, data, grid, args.repeats)
    print(f"1 worker (this process): {one:.1f} s (the units' own CPU time {cv_one['cpu_seconds']:.1f} s)")
    with execute.session(workers=args.workers):
        execute.map_units(abs, range(args.workers), experiment="start the cluster")  # not timed
        many, cv_many = grid_seconds(config, data, grid, args.repeats)
    print(f"{args.workers} workers (local Dask cluster): {many:.1f} s (the units' own CPU time "
          f"{cv_many['cpu_seconds']:.1f} s)")
    same = all(np.array_equal(cv_one[k], cv_many[k]) for k in ("train", "val"))
    print(f"validation losses identical to the last bit: {same}")
    print(f"scaling: {args.workers} workers x{one / many:.2f} faster than 1 on lab2 grid")


if __name__ == "__main__":
    main()
