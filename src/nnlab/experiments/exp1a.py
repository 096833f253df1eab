"""Experiment 1A (seed 001): the basic network learning f1 and f2, every run of the seed reproduced.

Runs are written ``f/h/lr/epochs[/data]`` ("f2/8/0.1/1200/R1"); ``data`` is ``standard`` (the seed
notebook's datasets and initial weights) or ``R<i>`` (new data from ``random_data_seeds[i−1]``, new
weights from ``random_weight_seeds[i−1]``). Runs that differ only in their number of epochs share one
training (the shorter is a prefix of the longer). Beyond the seed:

* sharpness — the largest eigenvalue of the Hessian of the training loss — along four runs, against
  the stability limit 2/lr of gradient descent (Cohen et al. 2021);
* variants of two oscillating runs that differ only in the last bits of their arithmetic (samples
  summed in reverse order, no fused multiply-add, float32), to show where the trajectories separate;
* a grid of data seeds × weight seeds, to test the seed's claim that the data matter more;
* a fixed learning rate below 2/(largest sharpness met at lr 0.1), for f1, run short and long.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from nnlab import basic_net as bn
from nnlab.config import ConfigError, param
from nnlab.progress import bar

CHAPTER = "chapters/experiment-1a.qmd"

SEED_RUNS = (
    "f1/3/1/1000", "f1/3/2/1000", "f1/3/5/1000", "f1/3/0.1/10000", "f1/2/0.1/1000", "f1/3/0.1/1000",
    "f1/5/0.1/1000", "f1/8/0.1/1000", "f2/3/0.1/1000", "f2/6/0.1/1000", "f2/8/0.1/1200",
    "f2/8/1.5/1000", "f2/8/1/1000", "f2/8/0.05/1000", "f2/8/0.05/10000", "f2/12/0.05/10000",
    "f2/8/0.1/1200/R1", "f2/8/0.1/1000/R2",
)
# Ours: seed fig. 3's last panel (new data and weights); lr 0.1 against 0.05 at 1000 epochs; a fixed
# learning rate below 2/(largest sharpness of the lr = 0.1 run), for as long (lr·epochs) and 10x longer.
OWN_RUNS = ("f1/3/1/1000/R1", "f2/8/0.1/1000", "f1/3/0.8/1250", "f1/3/0.8/12500")
SHARPNESS_RUNS = ("f1/3/1/1000", "f1/3/0.1/10000", "f2/8/0.1/1200", "f2/8/1/1000", "f1/3/0.8/12500")
VARIANTS = {"reversed": {"order": "reversed"}, "no_fma": {"fma": False}, "float32": {"dtype": np.float32}}

# What the seed reports (quoted from seed 001, §4): (run, summary column, value).
SEED_CLAIMS = (
    ("f1/2/0.1/1000", "final_test_error", 0.0051),
    ("f1/3/0.1/1000", "final_test_error", 0.0068),
    ("f1/5/0.1/1000", "final_test_error", 0.0100),
    ("f1/8/0.1/1000", "final_test_error", 0.0121),
    ("f1/3/2/1000", "final_test_error", 2.7e4),
    ("f1/3/1/1000", "argmin_epoch", 755),
    ("f2/8/0.1/1200", "min_test_error", 1.0889),
    ("f2/8/0.05/10000", "final_test_error", 1.0156),
)
SEED_HALVING = ("f2/12/0.05/10000", "f2/8/0.05/10000")   # "you halve the end error"


class Run(NamedTuple):
    f: str
    h: int
    lr: float
    epochs: int          # epochs trained (the spec's, times epoch_scale)
    data: str
    label: str           # the run as the seed writes it, e.g. "f2/8/0.1/1200/R1"

    @property
    def training(self) -> str:
        """Key of the training this run reads (runs differing only in epochs share it)."""
        return f"{self.f}_h{self.h}_lr{self.lr:g}_{self.data}"


def parse(spec: str) -> Run:
    """``"f2/8/0.1/1200/R1"`` -> Run; ConfigError for a malformed spec."""
    parts = spec.split("/")
    try:
        f, h, lr, epochs = parts[0], int(parts[1]), float(parts[2]), int(parts[3])
        data = parts[4] if len(parts) == 5 else "standard"
        ok = (f in bn.TARGETS and h >= 2 and lr > 0 and epochs >= 1 and len(parts) in (4, 5)
              and (data == "standard" or (data[:1] == "R" and data[1:].isdigit() and int(data[1:]) >= 1)))
    except (IndexError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"run {spec!r}: expected f/h/lr/epochs[/data] with f in {sorted(bn.TARGETS)}, "
                          "h >= 2, lr > 0, epochs >= 1, data 'standard' or R1, R2, …")
    tail = "" if data == "standard" else f"/{data}"
    return Run(f, h, lr, epochs, data, f"{f}/{h}/{lr:g}/{epochs}{tail}")


@dataclass(frozen=True)
class Config:
    runs: tuple[str, ...] = param(SEED_RUNS + OWN_RUNS)
    epoch_scale: float = param(1.0, gt=0, le=1)           # < 1 shortens every run (smoke profile)
    random_data_seeds: tuple[int, ...] = param((1, 2, 3, 4, 5), ge=0, each=True)     # R1, R2, …
    random_weight_seeds: tuple[int, ...] = param((11, 12, 13, 14, 15), ge=0, each=True)
    sharpness_runs: tuple[str, ...] = param(SHARPNESS_RUNS)
    sharpness_points: int = param(1001, ge=2)             # Hessians per sharpness run, evenly spaced
    variant_runs: tuple[str, ...] = param(("f1/3/1/1000", "f2/8/0.1/1200"))
    grid_run: str = param("f2/8/0.1/1000")                # data seeds x weight seeds study
    grid_size: int = param(6, ge=2)                       # standard + (grid_size − 1) random seeds
    store_every: int = param(10, ge=1)                    # weights of runs > 2000 epochs: every n-th


PROFILES = {
    "full": Config(),
    "smoke": Config(epoch_scale=0.2, sharpness_points=12, grid_size=2),   # lr 5 still diverges
}


# ------------------------------------------------------------------------------------------ data

def dataset(run: Run, config: Config):
    """Inputs, targets and initial weights of a run: (x_train, y_train, x_test, y_test, U0, V0)."""
    if run.data == "standard":
        (x_train, x_test), (U, V) = bn.data(), bn.initial_weights(run.h)
    else:
        i = int(run.data[1:]) - 1
        if i >= min(len(config.random_data_seeds), len(config.random_weight_seeds)):
            raise ConfigError(f"run {run.label}: no seeds for {run.data}; add random_data_seeds and "
                              "random_weight_seeds")
        x_train, x_test = bn.data(config.random_data_seeds[i])
        U, V = bn.initial_weights(run.h, config.random_weight_seeds[i])
    f = bn.TARGETS[run.f]
    return x_train, f(x_train), x_test, f(x_test), U, V


def scaled(run: Run, config: Config) -> Run:
    return run._replace(epochs=max(2, round(run.epochs * config.epoch_scale)))


def train_runs(runs: list[Run], config: Config) -> dict[str, bn.Trajectory]:
    """One trajectory per distinct training (longest epochs), runs of equal h and length batched."""
    longest: dict[str, Run] = {}
    for run in runs:
        if run.training not in longest or run.epochs > longest[run.training].epochs:
            longest[run.training] = run
    groups: dict[tuple, list[Run]] = {}
    for run in longest.values():
        groups.setdefault((run.h, run.epochs), []).append(run)
    out = {}
    for (h, epochs), group in bar(groups.items(), desc="exp1a runs"):
        sets = [dataset(run, config) for run in group]
        x_tr, y_tr, x_te, y_te, U0, V0 = (np.stack(a) for a in zip(*sets))
        traj = bn.train(U0, V0, x_tr, y_tr, x_te, y_te, [r.lr for r in group], epochs)
        for i, run in enumerate(group):
            out[run.training] = _one(traj, i)
    return out


def train_batch(U0, V0, x_tr, y_tr, x_te, y_te, lr, epochs, order="notebook", fma=True,
                dtype=np.float64) -> bn.Trajectory:
    """``bn.train`` with a numerical variant: training samples in reverse ``order``, no fma, float32."""
    if order == "reversed":
        x_tr, y_tr = x_tr[..., ::-1], y_tr[..., ::-1]
    return bn.train(U0, V0, x_tr, y_tr, x_te, y_te, lr, epochs, dtype=dtype, fma=fma)


def _one(traj: bn.Trajectory, i: int) -> bn.Trajectory:
    return bn.Trajectory(traj.h, traj.lr[i:i + 1], *(a[i:i + 1] for a in (
        traj.test_error, traj.train_error, traj.params, traj.gradient)), traj.diverged_at[i:i + 1])


# ------------------------------------------------------------------------------------- analysis

def oscillation_onset(train_error) -> int:
    """First epoch at which the training loss goes up (−1 if it never does): where GD stops descending."""
    up = np.flatnonzero(np.diff(train_error) > 0)
    return int(up[0] + 1) if up.size else -1


def store(trajs: dict[str, bn.Trajectory], config: Config) -> dict:
    """Per training: error curves (float64), weights (float32; every ``store_every`` epochs for runs
    over 2000 epochs), gradient norm and angle (float32)."""
    out = {}
    for key, traj in trajs.items():
        E = traj.test_error.shape[1] - 1
        every = config.store_every if E > 2000 else 1
        out[f"{key}__test_error"] = traj.test_error[0]
        out[f"{key}__train_error"] = traj.train_error[0]
        out[f"{key}__params"] = traj.params[0, ::every].astype(np.float32)
        out[f"{key}__params_epochs"] = np.arange(0, E + 1, every)
        out[f"{key}__gradient_norm"] = traj.gradient_norm[0].astype(np.float32)
        out[f"{key}__gradient_angle"] = traj.gradient_angle[0].astype(np.float32)
    return out


def summary_row(run: Run, traj: bn.Trajectory) -> dict:
    test = traj.test_error[0, : run.epochs + 1]
    train = traj.train_error[0, : run.epochs + 1]
    finite = np.isfinite(test) & np.isfinite(train)
    diverged = int(np.argmin(finite)) if not finite.all() else None
    return {"run": run.label, "f": run.f, "h": run.h, "lr": run.lr, "epochs": run.epochs, "data": run.data,
            "initial_test_error": test[0], "final_test_error": test[-1],
            "min_test_error": np.nanmin(test), "argmin_epoch": int(np.nanargmin(test)),
            "final_train_error": train[-1], "diverged_at": diverged,
            "oscillation_onset": oscillation_onset(train[finite]) if finite.any() else -1}


def sharpness(h: int, params, x, y, chunk: int = 50) -> np.ndarray:
    """Largest eigenvalue of the exact Hessian of the mean training loss (``bn.hessian``) at each
    parameter vector of ``params`` (K, 3h−2)."""
    params = np.asarray(params, float)
    # The matrices are small: BLAS threads only fight over the cores (a 1000x slowdown under load).
    with threadpool_limits(1, user_api="blas"):
        return np.concatenate([np.linalg.eigvalsh(bn.hessian(params[i: i + chunk], h, x, y))[:, -1]
                               for i in range(0, len(params), chunk)])


def amplification(lam, lr) -> np.ndarray:
    """log10 of the largest growth ∏|1 − lr·λ_s| over s ≤ t of a perturbation along the sharpest
    direction, for sharpness λ_t at every epoch (a perturbation older than the last stable stretch
    has been damped, hence the running max: A_t = max(A_{t−1}, 0) + log10|1 − lr λ_t|)."""
    out = np.empty(len(lam))
    a = 0.0
    with np.errstate(divide="ignore"):
        steps = np.log10(np.abs(1 - lr * np.asarray(lam, float)))
    for t, step in enumerate(steps):
        a = max(a, 0.0) + step
        out[t] = a
    return out


def variant_row(run: Run, variant: str, test_error, train_error, amplification=None) -> dict:
    """Where a numerical variant of ``run`` has its best test error and starts to oscillate; with the
    sharpness-based amplification (log10) the oscillation had reached by then, when known."""
    onset = oscillation_onset(train_error)
    return {"run": run.label, "variant": variant, "argmin_epoch": int(np.nanargmin(test_error)),
            "min_test_error": float(np.nanmin(test_error)), "final_test_error": float(test_error[-1]),
            "oscillation_onset": onset,
            "amplification_at_onset": float(amplification[onset]) if amplification is not None and onset >= 0
            else np.nan}


def upcrossings(values, level, quiet: int = 50) -> list[int]:
    """Epochs t at which ``values`` reaches ``level`` after ``quiet`` epochs below it (or t = 0): the
    starts of the episodes above the level."""
    above = np.asarray(values) >= level
    return [int(t) for t in np.flatnonzero(above) if not above[max(t - quiet, 0): t].any()]


def separation(params_a, params_b) -> np.ndarray:
    """Relative distance ‖θ_a − θ_b‖ / ‖θ_a‖ between two weight trajectories, per epoch."""
    return np.linalg.norm(params_a - params_b, axis=-1) / np.linalg.norm(params_a, axis=-1)


def compare_with_seed(summary: pd.DataFrame) -> pd.DataFrame:
    """Each number the seed quotes beside ours (runs missing from the summary are left out)."""
    row = summary.set_index("run")
    rows = [{"run": run, "quantity": column, "seed": value, "ours": float(row.loc[run, column])}
            for run, column, value in SEED_CLAIMS if run in row.index]
    if set(SEED_HALVING) <= set(row.index):
        big, small = (row.loc[r, "final_test_error"] for r in SEED_HALVING)
        rows.append({"run": " / ".join(SEED_HALVING), "quantity": "final_test_error ratio",
                     "seed": 0.5, "ours": float(big / small)})
    table = pd.DataFrame(rows, columns=["run", "quantity", "seed", "ours"])
    table["relative_difference"] = table["ours"] / table["seed"] - 1
    return table


# ------------------------------------------------------------------------------------------- run

def run(config: Config) -> dict:
    runs = [scaled(parse(s), config) for s in config.runs]
    sharp_runs = [scaled(parse(s), config) for s in config.sharpness_runs]
    variant_runs = [scaled(parse(s), config) for s in config.variant_runs]
    grid_run = scaled(parse(config.grid_run), config)
    trajs = train_runs(runs + sharp_runs + variant_runs, config)

    out: dict = {}
    with np.errstate(over="ignore", invalid="ignore"):     # diverged runs hold inf and NaN
        out.update(store(trajs, config))
    summary = pd.DataFrame([summary_row(r, trajs[r.training]) for r in runs])
    summary["diverged_at"] = summary["diverged_at"].astype("Int64")
    out["summary"] = summary
    out["runs"] = [r.label for r in runs]
    out["trainings"] = {r.label: r.training for r in runs + sharp_runs + variant_runs}

    sharp_rows, episodes = [], []
    for r in bar(sharp_runs, desc="sharpness"):
        traj, x_tr, y_tr = trajs[r.training], *dataset(r, config)[:2]
        epochs = np.unique(np.linspace(0, r.epochs, config.sharpness_points).round().astype(int))
        lam = sharpness(r.h, traj.params[0, epochs], x_tr, y_tr)
        lam_every = np.interp(np.arange(r.epochs + 1), epochs, lam)
        amp = amplification(lam_every, r.lr)
        out[f"{r.training}__sharpness_epochs"] = epochs
        out[f"{r.training}__sharpness"] = lam
        out[f"{r.training}__amplification"] = amp
        train = traj.train_error[0, : r.epochs + 1]
        rises = np.flatnonzero(np.diff(train) > 0) + 1
        for crossing in upcrossings(lam_every, 2 / r.lr):
            onset = rises[rises >= crossing]
            onset = int(onset[0]) if onset.size else -1
            episodes.append({"run": r.label, "crossing": crossing, "onset": onset,
                             "amplification_at_onset": amp[onset] if onset >= 0 else np.nan})
        sharp_rows.append({"run": r.label, "lr": r.lr, "two_over_lr": 2 / r.lr,
                           "initial_sharpness": lam[0], "max_sharpness": lam.max(),
                           "final_sharpness": lam[-1], "first_loss_increase": oscillation_onset(train)})
    out["sharpness"] = pd.DataFrame(sharp_rows)
    out["episodes"] = pd.DataFrame(episodes, columns=["run", "crossing", "onset", "amplification_at_onset"])

    var_rows = []
    for r in variant_runs:
        x_tr, y_tr, x_te, y_te, U0, V0 = dataset(r, config)
        main = trajs[r.training]
        amp = out.get(f"{r.training}__amplification")
        var_rows.append(variant_row(r, "notebook", main.test_error[0, : r.epochs + 1],
                                    main.train_error[0, : r.epochs + 1], amp))
        for name, kw in VARIANTS.items():
            v = train_batch(U0, V0, x_tr, y_tr, x_te, y_te, r.lr, r.epochs, **kw)
            key = f"{r.training}__{name}"
            out[f"{key}__test_error"] = v.test_error[0].astype(np.float64)
            out[f"{key}__separation"] = separation(main.params[0, : r.epochs + 1],
                                                   v.params[0].astype(np.float64))
            var_rows.append(variant_row(r, name, v.test_error[0], v.train_error[0], amp))
    out["variants"] = pd.DataFrame(var_rows)

    out.update(randomness_grid(grid_run, config))

    out["seed_check"] = compare_with_seed(summary)
    return out


def randomness_grid(r: Run, config: Config) -> dict:
    """Final and best test errors of ``r`` for every (data seed, weight seed); index 0 is standard."""
    n = config.grid_size
    if n - 1 > min(len(config.random_data_seeds), len(config.random_weight_seeds)):
        raise ConfigError(f"grid_size {n} needs {n - 1} random_data_seeds and random_weight_seeds")
    datas = [bn.data()] + [bn.data(s) for s in config.random_data_seeds[: n - 1]]
    weights = [bn.initial_weights(r.h)] + [bn.initial_weights(r.h, s) for s in config.random_weight_seeds[: n - 1]]
    f = bn.TARGETS[r.f]
    pairs = [(d, w) for d in datas for w in weights]
    traj = bn.train(np.stack([w[0] for _, w in pairs]), np.stack([w[1] for _, w in pairs]),
                    np.stack([d[0] for d, _ in pairs]), np.stack([f(d[0]) for d, _ in pairs]),
                    np.stack([d[1] for d, _ in pairs]), np.stack([f(d[1]) for d, _ in pairs]),
                    r.lr, r.epochs)
    return {"grid_final_test_error": traj.test_error[:, -1].reshape(n, n),
            "grid_min_test_error": np.nanmin(traj.test_error, axis=1).reshape(n, n),
            "grid_final_train_error": traj.train_error[:, -1].reshape(n, n),
            "grid_run": r.label}
