"""Time the lab2 grid search (4-fold CV over every configuration) batched, against one at a time.

Batched: ``lab2.cross_validate`` as ``run`` calls it (its units on ``--workers`` Dask workers, one thread each).
One at a time: the same code (``lab2.fit`` -> ``scratch_net.train``) with M = 1, one configuration
and one fold per call, each for its own number of epochs. Timing every configuration that way takes
minutes, so a random sample of configurations (all folds) is timed and scaled up to the grid; the
standard error of that estimate is printed. The ratio compares CPU seconds (what one core spends),
which the load of other processes on a shared machine disturbs far less than wall time.

    .venv/bin/python benchmarks/bench_lab2.py [--sample 60] [--workers 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nnlab import execute
from nnlab.experiments import lab2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=60, help="configurations timed one at a time")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config = lab2.PROFILES["full"]
    data, grid = lab2.make_data(config), lab2.make_grid(config)
    n_trainings = len(grid) * config.folds

    with execute.session(workers=args.workers):
        execute.map_units(abs, range(args.workers), experiment="start the cluster")  # not timed
        wall = time.perf_counter()
        cv = lab2.cross_validate(grid, data, config)
        wall, cpu = time.perf_counter() - wall, cv["cpu_seconds"]
    print(f"batched: {wall:.1f} s wall, {cpu:.1f} s CPU on {args.workers} processes for "
          f"{len(grid)} configurations x {config.folds} folds ({cv['n_runs']} runs of gradient descent)")

    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(grid), size=min(args.sample, len(grid)), replace=False))
    sets = lab2.fold_sets(data, config)
    per_config, worst = [], 0.0
    with threadpool_limits(limits=1, user_api="blas"):
        for row in sample:
            run = grid.iloc[[row]].assign(run_epochs=grid["epochs"].iloc[row])
            start = time.process_time()
            for k, fold in enumerate(sets):
                alone = lab2.fit(run, [fold], config, test_every=int(run["epochs"].iloc[0]))
                worst = max(worst, abs(alone.test_loss[run["epochs"].iloc[0], 0, 0] - cv["val"][row, k]))
            per_config.append(time.process_time() - start)
    per_config = np.array(per_config)
    scale = len(grid) / len(sample)
    one_at_a_time = per_config.sum() * scale
    stderr = len(grid) * per_config.std(ddof=1) / np.sqrt(len(sample)) * np.sqrt(1 - 1 / scale)
    print(f"one at a time (M = 1, one core): {per_config.sum():.1f} s CPU for a random sample of "
          f"{len(sample)} configurations x {config.folds} folds -> {one_at_a_time:.0f} +- "
          f"{stderr:.0f} s CPU for the grid (scaled by {scale:.2f})")
    print(f"largest |validation loss alone - batched| on the sample: {worst:.1e}")
    print(f"CPU ratio {one_at_a_time / cpu:.1f}; wall ratio (one process alone vs {args.workers} "
          f"batched processes) {one_at_a_time / wall:.1f}")
    print(f"lab2 grid: {wall:.1f} s for {n_trainings} trainings; "
          f"{one_at_a_time / cpu:.1f}x faster than one at a time")


if __name__ == "__main__":
    main()
