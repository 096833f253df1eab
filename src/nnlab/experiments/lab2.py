"""Lab 2: a from-scratch network fitted to a noisy 1-D function, chosen by a 4-fold CV grid search.

The seed's 120 train / 25 test points are not available; the stand-in is ``target`` on [-5, 5] plus
Gaussian noise. Every grid configuration is trained on each fold in the batched numpy network
(``nnlab.scratch_net``): all configurations of one layer shape and activation, with their folds,
form one batch. Constant-learning-rate configurations that differ only in their number of epochs
are one run read at each epoch count (their first E epochs are the same arithmetic); a decaying
rate depends on the total number of epochs, so those configurations are runs of their own.
The top configurations by mean validation loss are retrained on the whole training set and
compared on the test set, as the seed did.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import KFold

from nnlab import scratch_net
from nnlab.config import param
from nnlab.execute import map_units

CHAPTER = "chapters/lab2-function-estimation.qmd"
X_RANGE = (-5.0, 5.0)
HYPER = ("nh1", "nh2", "activation", "l1", "epochs", "lr", "decay", "lr_final")
RUN_KEY = ("nh1", "nh2", "activation", "l1", "lr", "decay", "lr_final", "run_epochs")
CHUNK = 48          # models per batch: large enough to amortise Python, small enough for the cache


def target(x):
    """The stand-in for the seed's unknown function: f(x) = 3 sin(1.5 x) exp(-x^2 / 25)."""
    return 3.0 * np.sin(1.5 * x) * np.exp(-x ** 2 / 25.0)


@dataclass(frozen=True)
class Config:
    n_train: int = param(120, ge=8)
    n_test: int = param(25, ge=1)
    noise_sd: float = param(0.5, ge=0)
    data_seed: int = param(2019, ge=0)
    nh1: tuple[int, ...] = param((10, 40), ge=1, each=True)
    nh2: tuple[int, ...] = param((10, 40), ge=1, each=True)
    activations: tuple[str, ...] = param(tuple(scratch_net.ACTIVATIONS),
                                         choices=tuple(scratch_net.ACTIVATIONS), each=True)
    l1: tuple[float, ...] = param((0.0, 1e-4, 1e-3), ge=0, each=True)
    epochs: tuple[int, ...] = param((250, 1000), ge=1, each=True)
    lr: tuple[float, ...] = param((0.03, 0.1, 0.3, 1.0), gt=0, each=True)
    lr_final: tuple[float, ...] = param((0.001,), gt=0, each=True)   # decay targets (< lr)
    clip_norm: float = param(5.0, gt=0)
    folds: int = param(4, ge=2)
    top: int = param(20, ge=1)
    seed: int = param(0, ge=0)                  # initial weights and fold split
    dtype: str = param("float32", choices=("float32", "float64"))
    dense_points: int = param(401, ge=11)       # where fitted functions are drawn and compared to f


PROFILES = {
    "full": Config(),
    "smoke": Config(nh1=(6,), nh2=(5,), l1=(0.0, 1e-3), epochs=(10, 20), lr=(0.03,), top=4,
                    dense_points=51),
}


# -------------------------------------------------------------------------------- data and grid

def make_data(config: Config) -> dict[str, np.ndarray]:
    """Training and test points (x uniform on X_RANGE, y = target + N(0, noise_sd^2)), fixed seed."""
    rng = np.random.default_rng(config.data_seed)
    data = {}
    for split, n in (("train", config.n_train), ("test", config.n_test)):
        x = rng.uniform(*X_RANGE, n)
        data[f"x_{split}"], data[f"y_{split}"] = x, target(x) + rng.normal(0.0, config.noise_sd, n)
    return data


def noise_mse(data, split: str) -> float:
    """The MSE of the noiseless target itself on a split: the floor no network can beat on average."""
    return float(np.mean((data[f"y_{split}"] - target(data[f"x_{split}"])) ** 2))


def noise_quantile(data, split: str, noise_sd: float) -> float | None:
    """P(the noise MSE of a split's n points <= the observed one): n * MSE / sigma^2 ~ chi^2_n."""
    n = len(data[f"x_{split}"])
    return float(stats.chi2.cdf(n * noise_mse(data, split) / noise_sd ** 2, n)) if noise_sd > 0 else None


def fold_indices(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train, validation) index pairs: shuffled K-fold, every point validated exactly once."""
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.arange(n)))


def fold_of_point(n: int, k: int, seed: int) -> np.ndarray:
    """The fold in which each training point is held out."""
    fold = np.full(n, -1)
    for i, (_, val) in enumerate(fold_indices(n, k, seed)):
        fold[val] = i
    return fold


def make_grid(config: Config) -> pd.DataFrame:
    """Every configuration; lr_final is NaN for a constant rate and only values below lr decay."""
    schedules = [(False, np.nan)] + [(True, f) for f in config.lr_final]
    rows = [dict(zip(HYPER, (nh1, nh2, act, l1, epochs, lr, decay, lr_final)))
            for nh1, nh2, act, l1, epochs, lr, (decay, lr_final) in itertools.product(
                config.nh1, config.nh2, config.activations, config.l1, config.epochs, config.lr,
                schedules)
            if not decay or lr_final < lr]
    return pd.DataFrame(rows)


def with_runs(grid: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct gradient-descent runs behind a grid and, per configuration, the index of its run.

    A constant-rate configuration is read off the longest constant-rate run with the same other
    values; a decaying one is its own run.
    """
    grid = grid.copy()
    same = ["nh1", "nh2", "activation", "l1", "lr", "decay"]
    longest = grid.groupby(same)["epochs"].transform("max")
    grid["run_epochs"] = np.where(grid["decay"], grid["epochs"], longest)
    codes = grid.groupby(list(RUN_KEY), dropna=False, sort=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    return grid.iloc[first].reset_index(drop=True), codes


# ------------------------------------------------------------------------------------ training

def initial_params(config: Config, nh1: int, nh2: int, stream: int):
    """One network's initial weights, a function of (seed, shape, stream) only: every configuration
    of a shape starts from the same weights on a given fold (stream = fold; K = full training set)."""
    rng = np.random.default_rng([config.seed, nh1, nh2, stream])
    return scratch_net.init_params(rng, 1, nh1, nh2)


def fit(runs: pd.DataFrame, sets: list[dict], config: Config, test_every: int = 1
        ) -> scratch_net.Trained:
    """Train every run (one shape and activation) on every data set, in batches of CHUNK models.

    ``sets[s]`` holds x_train, y_train, x_test, y_test and the init ``stream``; model r * S + s is
    run r on set s. Losses come back as (epochs + 1, runs, sets).
    """
    nh1, nh2, act = runs.iloc[0][["nh1", "nh2", "activation"]]
    n_sets = len(sets)
    run_of = np.repeat(np.arange(len(runs)), n_sets)
    set_of = np.tile(np.arange(n_sets), len(runs))
    inits = [initial_params(config, nh1, nh2, s["stream"]) for s in sets]
    column = {c: runs[c].to_numpy()[run_of] for c in ("epochs", "lr", "decay", "lr_final", "l1")}
    column["epochs"] = runs["run_epochs"].to_numpy()[run_of]
    column["lr_final"] = np.nan_to_num(column["lr_final"])
    parts = []
    for start in range(0, len(run_of), CHUNK):
        idx = slice(start, start + CHUNK)
        sel = set_of[idx]
        params = {k: np.concatenate([inits[s][k] for s in sel]) for k in scratch_net.PARAMS}
        data = [np.stack([sets[s][key] for s in sel])
                for key in ("x_train", "y_train", "x_test", "y_test")]
        parts.append(scratch_net.train(
            params, *data, activation_name=act, epochs=column["epochs"][idx], lr=column["lr"][idx],
            decay=column["decay"][idx], lr_final=column["lr_final"][idx], l1=column["l1"][idx],
            clip_norm=config.clip_norm, dtype=np.dtype(config.dtype), test_every=test_every))
    n_epochs = int(column["epochs"].max())

    def joined(name):
        curves = np.full((n_epochs + 1, len(run_of)), np.nan)
        start = 0
        for part in parts:
            a = getattr(part, name)
            curves[: a.shape[0], start: start + a.shape[1]] = a
            start += a.shape[1]
        return curves.reshape(n_epochs + 1, len(runs), n_sets)

    params = {k: np.concatenate([p.params[k] for p in parts]) for k in scratch_net.PARAMS}
    clipped = np.concatenate([p.clipped for p in parts]).reshape(len(runs), n_sets)
    return scratch_net.Trained(params, joined("train_loss"), joined("test_loss"), clipped)


def _fit_group(args):
    """One unit of the grid: :func:`fit` of a (shape, activation) group, and its CPU seconds."""
    start = time.process_time()
    return fit(*args), time.process_time() - start


def fold_sets(data, config: Config) -> list[dict]:
    """The K cross-validation data sets: train on K-1 folds, 'test' on the held-out one."""
    x, y = data["x_train"], data["y_train"]
    return [dict(x_train=x[tr], y_train=y[tr], x_test=x[va], y_test=y[va], stream=k)
            for k, (tr, va) in enumerate(fold_indices(len(x), config.folds, config.seed))]


def cross_validate(grid: pd.DataFrame, data, config: Config) -> dict:
    """Final training and validation MSE of every configuration on every fold, (configs, K) each.

    Each group (shape, activation) is one unit of :func:`nnlab.execute.map_units`.
    """
    runs, run_index = with_runs(grid)
    sets = fold_sets(data, config)
    groups = [g for _, g in runs.groupby(["nh1", "nh2", "activation"], sort=False)]
    groups.sort(key=lambda g: -(g["nh1"].iloc[0] * g["nh2"].iloc[0] * g["run_epochs"].sum()))
    test_every = int(np.gcd.reduce(grid["epochs"].to_numpy()))   # validation loss only where read
    done = map_units(_fit_group, [(g, sets, config, test_every) for g in groups], experiment="lab2 grid")
    fitted = [trained for trained, _ in done]
    final = {"train": np.empty((len(grid), config.folds)), "val": np.empty((len(grid), config.folds))}
    for g, trained in zip(groups, fitted):
        for local, run in enumerate(g.index):
            for row in np.flatnonzero(run_index == run):
                e = grid["epochs"].iloc[row]
                final["train"][row] = trained.train_loss[e, local]
                final["val"][row] = trained.test_loss[e, local]
    final["n_runs"] = len(runs) * config.folds
    final["cpu_seconds"] = sum(seconds for _, seconds in done)
    return final


def retrain(configs: pd.DataFrame, data, grid_x, config: Config) -> dict:
    """Train configurations on the whole training set; curves, clipping and fitted functions."""
    full = [dict(x_train=data["x_train"], y_train=data["y_train"], x_test=data["x_test"],
                 y_test=data["y_test"], stream=config.folds)]
    n_epochs = int(configs["epochs"].max())
    out = {"train_curve": np.full((n_epochs + 1, len(configs)), np.nan),
           "test_curve": np.full((n_epochs + 1, len(configs)), np.nan),
           "clipped": np.zeros(len(configs)), "fitted": np.zeros((len(configs), len(grid_x)))}
    for _, group in configs.assign(run_epochs=configs["epochs"]).groupby(
            ["nh1", "nh2", "activation"], sort=False):
        trained = fit(group, full, config)
        cols = configs.index.get_indexer(group.index)
        out["train_curve"][: trained.train_loss.shape[0], cols] = trained.train_loss[:, :, 0]
        out["test_curve"][: trained.test_loss.shape[0], cols] = trained.test_loss[:, :, 0]
        out["clipped"][cols] = trained.clipped[:, 0] / group["epochs"].to_numpy()
        x = np.broadcast_to(grid_x[None, :, None], (len(group), len(grid_x), 1))
        act = scratch_net.activation(group["activation"].iloc[0])
        out["fitted"][cols] = scratch_net.forward(trained.params, x, act)[0][:, :, 0]
    return out


def clipping_check(data, config: Config) -> pd.DataFrame:
    """Constant-rate runs of the largest shape on the whole training set, with clipping and without."""
    nh1, nh2, epochs = max(config.nh1), max(config.nh2), max(config.epochs)
    init = initial_params(config, nh1, nh2, config.folds)
    params = {k: np.repeat(v, len(config.lr), axis=0) for k, v in init.items()}
    rows = []
    for act in config.activations:
        for clip_norm in (config.clip_norm, np.inf):
            with np.errstate(over="ignore", invalid="ignore"):     # unclipped runs may overflow
                t = scratch_net.train(params, data["x_train"], data["y_train"], data["x_test"],
                                      data["y_test"], activation_name=act, epochs=epochs,
                                      lr=np.array(config.lr), clip_norm=clip_norm,
                                      dtype=np.dtype(config.dtype), test_every=epochs)
            for i, lr in enumerate(config.lr):
                bad = np.flatnonzero(~np.isfinite(t.train_loss[:, i]))
                rows.append({"activation": act, "lr": lr, "clip_norm": clip_norm, "epochs": epochs,
                             "final_train": t.train_loss[-1, i], "worst_train": np.nanmax(t.train_loss[:, i]),
                             "diverged_at": int(bad[0]) if len(bad) else -1,
                             "clipped_frac": t.clipped[i] / epochs})
    return pd.DataFrame(rows)


def schedule_twin(best: pd.Series, config: Config) -> pd.Series:
    """The same configuration with the other learning-rate schedule (constant <-> decaying)."""
    twin = best.copy()
    twin["decay"] = not best["decay"]
    twin["lr_final"] = np.nan if best["decay"] else min(config.lr_final)
    return twin


# ------------------------------------------------------------------------------------- analysis

def effects(grid: pd.DataFrame) -> pd.DataFrame:
    """For each hyper-parameter value: the best and the median mean validation MSE over the grid."""
    schedule = np.where(grid["decay"], "decay to " + grid["lr_final"].astype(str), "constant")
    table = grid.assign(schedule=schedule)
    rows = []
    for name in ("nh1", "nh2", "activation", "l1", "epochs", "lr", "schedule"):
        for value, g in table.groupby(name, sort=True):
            rows.append({"parameter": name, "value": str(value), "configs": len(g),
                         "best_val": g["val_mean"].min(), "median_val": g["val_mean"].median()})
    return pd.DataFrame(rows)


def _plain(value):
    """A table cell as a JSON value (numpy scalars unwrapped, NaN as None)."""
    return None if pd.isna(value) else getattr(value, "item", lambda: value)()


def run(config: Config) -> dict:
    data = make_data(config)
    grid = make_grid(config)
    start = time.perf_counter()
    cv = cross_validate(grid, data, config)
    grid_seconds, grid_cpu = time.perf_counter() - start, cv["cpu_seconds"]
    grid["val_mean"] = cv["val"].mean(axis=1)
    grid["val_sd"] = cv["val"].std(axis=1, ddof=1)
    grid["train_mean"] = cv["train"].mean(axis=1)
    for k in range(config.folds):
        grid[f"val_{k}"] = cv["val"][:, k]
    grid = grid.sort_values("val_mean", kind="stable").reset_index(drop=True)
    grid.insert(0, "rank", np.arange(1, len(grid) + 1))
    gap = grid[[f"val_{k}" for k in range(config.folds)]].to_numpy()
    gap = gap - gap[0]                            # paired, fold by fold, against rank 1
    grid["gap_mean"], grid["gap_se"] = gap.mean(axis=1), gap.std(axis=1, ddof=1) / np.sqrt(config.folds)

    x_dense = np.linspace(*X_RANGE, config.dense_points)
    top = grid.head(config.top).copy()
    refit = retrain(top, data, x_dense, config)
    top["train_loss"] = refit["train_curve"][top["epochs"], np.arange(len(top))]
    top["test_loss"] = refit["test_curve"][top["epochs"], np.arange(len(top))]
    top["f_error"] = ((refit["fitted"] - target(x_dense)) ** 2).mean(axis=1)
    top["clipped_frac"] = refit["clipped"]
    twin = schedule_twin(top.iloc[0], config)
    twin_fit = retrain(pd.DataFrame([twin]).reset_index(drop=True), data, x_dense, config)
    summary = top[["rank", *HYPER, "val_mean", "val_sd", "train_loss", "test_loss", "f_error",
                   "clipped_frac"]].reset_index(drop=True)
    return {
        "summary": summary,
        "grid": grid,
        "effects": effects(grid),
        "clipping": clipping_check(data, config),
        **{k: v.astype(np.float32) for k, v in data.items()},
        "x_dense": x_dense.astype(np.float32),
        "f_dense": target(x_dense).astype(np.float32),
        "top_fitted": refit["fitted"].astype(np.float32),
        "top_train_curve": refit["train_curve"].astype(np.float32),
        "top_test_curve": refit["test_curve"].astype(np.float32),
        "twin": {k: _plain(twin[k]) for k in HYPER},
        "twin_train_curve": twin_fit["train_curve"][:, 0].astype(np.float32),
        "twin_test_curve": twin_fit["test_curve"][:, 0].astype(np.float32),
        "fold_of_point": fold_of_point(config.n_train, config.folds, config.seed),
        "best_by_test": int(summary["test_loss"].idxmin()),
        "n_configs": len(grid),
        "n_trainings": len(grid) * config.folds,
        "n_runs": int(cv["n_runs"]),
        "grid_seconds": float(grid_seconds),
        "grid_cpu_seconds": float(grid_cpu),
        "noise_train_mse": noise_mse(data, "train"),
        "noise_test_mse": noise_mse(data, "test"),
        "noise_test_quantile": noise_quantile(data, "test", config.noise_sd),
    }
