"""Challenge 2B: a residual network learns the Bell polynomial B6 and a scrambled B̃6 (seed 000 §B).

The polynomials, as terms ``(coefficient, exponents)``, live in :mod:`nnlab.polynomials` and are
re-exported here (``bell.b6``, ``bell.b6_scrambled``, ``bell.B6_SCRAMBLED_TERMS``). Per polynomial,
the batched engine trains a full-length learning-rate sweep with one seed, then the other seeds at the chosen rate;
the two polynomials train side by side in two processes. The final networks are probed along
one-variable sweeps (steps 6-7) and by Monte Carlo sensitivity indices.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from nnlab.config import ConfigError, param
from nnlab.polynomials import (  # noqa: F401  (re-exported: the chapter and the tests use bell.*)
    B6_SCRAMBLED_TERMS, B6_TERMS, HIGH, LOW, N_VARS, POLYNOMIALS, SIGMAS, b6, b6_scrambled,
    derivative, draw_sigmas, evaluate_terms, exact_mean, exact_sobol, exact_variance, gradient,
    latex_monomial, moment, scramble, scramble_violations, sobol_indices, to_sympy)
from nnlab.models import Net, evaluate, forward, init_params
from nnlab.train import num_threads, shuffled_epochs, train

CHAPTER = "chapters/bell-polynomials.qmd"

# ----------------------------------------------------------------------------- data and training

@dataclass(frozen=True)
class Config:
    n_train: int = param(100_000, ge=1)
    n_test: int = param(60_000, ge=1)
    epochs: int = param(30, ge=1)
    batch_size: int = param(20, ge=1)
    width: int = param(50, ge=1)
    hidden_layers: int = param(8, ge=2)      # 8 hidden layers = 9 weight layers, 7 of them skipped
    lrs: tuple[float, ...] = param((2e-5, 5e-5, 1e-4, 2e-4, 5e-4), gt=0, each=True)
    sweep_seed: int = param(0, ge=0)          # the lr sweep's seed; its run at the chosen lr is reused
    seeds: tuple[int, ...] = param((0, 1, 2), ge=0, each=True)   # final runs at the chosen lr
    data_seed: int = param(2024, ge=0)
    base_points: int = param(100, ge=1)       # step 7 (the first one is step 6's)
    grid_points: int = param(201, ge=2)
    sobol_samples: int = param(2 ** 15, ge=2)
    curve_points: int = param(300, ge=1)      # windows of the per-step training loss kept
    workers: int = param(2, choices=(1, 2))   # processes: the two polynomials train side by side


PROFILES = {
    "full": Config(),
    "smoke": Config(n_train=400, n_test=200, epochs=2, lrs=(1e-3, 3e-3), seeds=(0, 1),
                    base_points=3, grid_points=11, sobol_samples=256, curve_points=10, workers=1),
}


def check(config: Config) -> None:
    """Constraints between fields that the per-field bounds cannot express."""
    for field in ("lrs", "seeds"):
        values = getattr(config, field)
        if not values or len(set(values)) < len(values):
            raise ConfigError(f"bell.{field} = {values!r}: must be non-empty and without repeats")
    if config.n_train < config.batch_size:
        raise ConfigError(f"bell.n_train = {config.n_train}: must be >= batch_size "
                          f"({config.batch_size})")


def network(config: Config) -> Net:
    """6 -> width (no skip), hidden_layers - 1 residual layers width -> width, width -> 1 (linear)."""
    return Net(widths=(N_VARS,) + (config.width,) * config.hidden_layers + (1,),
               activation="relu", residual=True)


def sample_inputs(n: int, rng: np.random.Generator) -> np.ndarray:
    """n points of U[0, 2]^6, drawn in float32 (the network's precision) and returned as float64."""
    return rng.uniform(LOW, HIGH, (n, N_VARS)).astype(np.float32).astype(np.float64)


@dataclass(frozen=True)
class TargetScale:
    """Standardisation of the targets: the network learns (y - mean) / std."""
    mean: float
    std: float

    def to_net(self, y: np.ndarray) -> torch.Tensor:
        return torch.tensor((y - self.mean) / self.std, dtype=torch.float32).unsqueeze(-1)

    def mse(self, scaled_mse):
        """An MSE in the network's units converted to original units."""
        return np.asarray(scaled_mse, float) * self.std ** 2


@dataclass(frozen=True)
class Dataset:
    """One polynomial's training and test sets, targets already scaled for the network."""
    X: torch.Tensor
    Y: torch.Tensor
    X_test: torch.Tensor
    Y_test: torch.Tensor
    scale: TargetScale


def make_dataset(terms, X: np.ndarray, X_test: np.ndarray) -> Dataset:
    """Label the inputs with the polynomial (float64) and standardise by the training targets."""
    y = evaluate_terms(terms, X)
    scale = TargetScale(float(y.mean()), float(y.std()))
    as_net = lambda a: torch.tensor(a, dtype=torch.float32)
    return Dataset(as_net(X), scale.to_net(y), as_net(X_test),
                   scale.to_net(evaluate_terms(terms, X_test)), scale)


@dataclass
class Runs:
    """M trained networks of one polynomial and their logs; losses in original units."""
    lrs: np.ndarray            # (M,)
    seeds: np.ndarray          # (M,)
    params: list               # stacked (W, b) per layer, as the engine returns them
    step_loss: np.ndarray      # (M, steps) loss of the minibatch at every step
    epoch_test: np.ndarray     # (M, epochs + 1) test MSE before training and after every epoch
    final_train: np.ndarray    # (M,) MSE of the final network on the whole training set
    diverged_at: np.ndarray    # (M,) first non-finite step, -1 if never

    def epoch_train(self, epochs: int) -> np.ndarray:
        """(M, epochs) mean minibatch loss of every epoch."""
        return self.step_loss.reshape(len(self.lrs), epochs, -1).mean(2)

    def take(self, index) -> Runs:
        """The runs at positions ``index``."""
        return Runs(self.lrs[index], self.seeds[index], select(self.params, index),
                    self.step_loss[index], self.epoch_test[index], self.final_train[index],
                    self.diverged_at[index])

    @staticmethod
    def concat(runs: list[Runs]) -> Runs:
        cat = lambda name: np.concatenate([getattr(r, name) for r in runs])
        params = [(torch.cat([r.params[l][0] for r in runs]), torch.cat([r.params[l][1] for r in runs]))
                  for l in range(len(runs[0].params))]
        return Runs(cat("lrs"), cat("seeds"), params, cat("step_loss"), cat("epoch_test"),
                    cat("final_train"), cat("diverged_at"))


def select(params, index) -> list:
    """The parameters of the models at ``index`` (a list of model positions)."""
    return [(W[index], b[index]) for W, b in params]


def fit(net: Net, data: Dataset, lrs, seeds, config: Config, label: str) -> Runs:
    """Train model m with lrs[m] from seeds[m] (initialisation and shuffling) in one engine call."""
    stream = shuffled_epochs(data.X, data.Y, config.batch_size, seeds)
    per_epoch = stream.steps_per_epoch
    result = train(net, init_params(net, seeds), stream, steps=config.epochs * per_epoch,
                   lr=list(lrs), optimizer="adam", loss="mse", eval_every=per_epoch,
                   eval_data=(data.X_test, data.Y_test), progress=f"bell {label}")
    mse = data.scale.mse
    return Runs(np.array(lrs, float), np.array(seeds), result.params,
                mse(result.train_loss).astype(np.float32), mse(result.eval_loss),
                mse(evaluate(net, result.params, data.X, data.Y)), result.diverged_at)


def choose_lr(runs: Runs, epochs: int) -> int:
    """Position of the run with the lowest mean minibatch loss over the last epoch (diverged = inf).

    Each minibatch loss estimates the training MSE at its step without bias, so the last epoch's
    mean estimates the expected training MSE of the network where training stops; the final
    network's MSE alone is one draw, which loss spikes spread over an order of magnitude.
    """
    last = runs.epoch_train(epochs)[:, -1]
    last = np.where(np.isfinite(last) & (runs.diverged_at < 0), last, np.inf)
    if not np.isfinite(last).any():
        raise RuntimeError("every learning rate of the sweep diverged")
    return int(np.argmin(last))


def final_runs(net: Net, data: Dataset, config: Config, label: str) -> tuple[Runs, Runs]:
    """The lr sweep (one seed, every lr) and the final runs (every seed, the chosen lr)."""
    sweep = fit(net, data, config.lrs, [config.sweep_seed] * len(config.lrs), config,
                f"{label} lr sweep")
    best = choose_lr(sweep, config.epochs)
    extra = [s for s in config.seeds if s != config.sweep_seed]
    parts = [sweep.take([best])] if config.sweep_seed in config.seeds else []
    if extra:
        parts.append(fit(net, data, [config.lrs[best]] * len(extra), extra, config, f"{label} seeds"))
    runs = Runs.concat(parts)
    order = [list(runs.seeds).index(s) for s in config.seeds]
    return sweep, runs.take(order)


def inputs(config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training inputs, test inputs and the base points of steps 6-7 (bases[0] is step 6's)."""
    rng = np.random.default_rng(config.data_seed)
    return (sample_inputs(config.n_train, rng), sample_inputs(config.n_test, rng),
            sample_inputs(config.base_points, rng))


def train_polynomial(name: str, config: Config) -> dict:
    """Label the data with one polynomial, sweep, and train its final runs, on one thread (so the
    result does not depend on ``config.workers``); top-level, so a worker process can run it."""
    start = time.perf_counter()
    with num_threads(1):
        X, X_test, _ = inputs(config)
        data = make_dataset(POLYNOMIALS[name], X, X_test)
        sweep, runs = final_runs(network(config), data, config, name)
    return {"scale": data.scale, "sweep": sweep, "runs": runs, "seconds": time.perf_counter() - start}


def train_all(config: Config) -> dict[str, dict]:
    """:func:`train_polynomial` for both polynomials, in ``config.workers`` processes."""
    names = list(POLYNOMIALS)
    if config.workers == 1:
        return {name: train_polynomial(name, config) for name in names}
    with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(names, pool.map(train_polynomial, names, [config] * len(names))))


def network_outputs(net: Net, params, x: np.ndarray, scale: TargetScale, with_gradient=False,
                    chunk: int = 8192):
    """Values (M, n) of the M networks at the rows of x, in original units; with_gradient=True
    also returns their input gradients (M, n, 6) by autograd."""
    M = params[0][0].shape[0]
    values, grads = [], []
    for s in range(0, len(x), chunk):
        xb = torch.tensor(x[s:s + chunk], dtype=torch.float32).expand(M, -1, -1).clone()
        with torch.set_grad_enabled(with_gradient):
            xb.requires_grad_(with_gradient)
            out = forward(net, params, xb)[..., 0]
            if with_gradient:
                grads.append(torch.autograd.grad(out.sum(), xb)[0].double().numpy())
        values.append(out.detach().double().numpy())
    values = scale.mean + scale.std * np.concatenate(values, 1)
    return (values, scale.std * np.concatenate(grads, 1)) if with_gradient else values


def window_means(losses: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of the per-step losses (M, steps) over n consecutive windows, and window centres."""
    chunks = np.array_split(np.arange(losses.shape[1]), min(n, losses.shape[1]))
    centres = np.array([c.mean() + 1 for c in chunks])
    return np.stack([losses[:, c].mean(1) for c in chunks], 1), centres


# ------------------------------------------------------------------- steps 6-7: one-variable sweeps

def sweep_points(bases: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Inputs (n_bases, 6, G, 6): base point b with variable j replaced by each grid value."""
    points = np.repeat(bases[:, None, None, :], N_VARS, 1).repeat(len(grid), 2)
    for j in range(N_VARS):
        points[:, j, :, j] = grid
    return points


def along_sweeps(values: np.ndarray) -> np.ndarray:
    """From (..., n_bases, 6, G, 6) gradients keep the derivative along each sweep's own variable."""
    return np.stack([values[..., j, :, j] for j in range(N_VARS)], -2)


def probe(terms, net, params, scale, bases, grid) -> dict:
    """Target and networks along every one-variable sweep from every base point (steps 6-7)."""
    points = sweep_points(bases, grid)
    flat = points.reshape(-1, N_VARS)
    shape = points.shape[:-1]
    target = evaluate_terms(terms, flat).reshape(shape)
    target_partial = along_sweeps(gradient(terms, flat).reshape(points.shape))
    model, model_grad = network_outputs(net, params, flat, scale, with_gradient=True)
    M = model.shape[0]
    model = model.reshape((M,) + shape)
    model_partial = along_sweeps(model_grad.reshape((M,) + points.shape))
    return {"target": target, "target_partial": target_partial,
            "model": model, "model_partial": model_partial}


def sweep_errors(probes: dict) -> dict:
    """Step 7 per (seed, base point, variable): mean absolute errors along the sweep of the value,
    of its shape (the error minus its mean along the sweep, i.e. without the network's local offset)
    and of the partial derivative; and the target's own scales along each sweep (bases, 6)."""
    error = probes["model"] - probes["target"]
    return {"value_error": np.abs(error).mean(-1),
            "shape_error": np.abs(error - error.mean(-1, keepdims=True)).mean(-1),
            "partial_error": np.abs(probes["model_partial"] - probes["target_partial"]).mean(-1),
            "value_scale": probes["target"].std(-1),
            "partial_scale": np.abs(probes["target_partial"]).mean(-1)}


def per_variable_table(name: str, errors: dict, sensitivity: pd.DataFrame) -> pd.DataFrame:
    """Step 7 aggregated per variable, next to the sensitivity indices: mean, sd and 90% quantile
    over seeds and base points of each error; the shape error relative to the target's spread along
    the sweep and the derivative error relative to the target's mean |df/dx_j|."""
    rows = []
    for j in range(N_VARS):
        row = {"polynomial": name, "variable": f"x{j + 1}",
               "S_exact": float(sensitivity["S_exact"][j]), "T_exact": float(sensitivity["T_exact"][j])}
        for key in ("value_error", "shape_error", "partial_error"):
            e = errors[key][..., j]
            row |= {key: float(e.mean()), f"{key}_sd": float(e.std()),
                    f"{key}_q90": float(np.quantile(e, 0.9))}
        for key in ("value_scale", "partial_scale"):
            row[key] = float(errors[key][..., j].mean())
        row["shape_error_rel"] = row["shape_error"] / row["value_scale"]
        row["partial_error_rel"] = row["partial_error"] / row["partial_scale"]
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- the run

def loss_rows(name: str, runs: Runs, variance: float) -> list[dict]:
    """One row per run: final training and test MSE, in original units and relative to Var f."""
    return [{"polynomial": name, "lr": float(runs.lrs[m]), "seed": int(runs.seeds[m]),
             "final_train_loss": float(runs.final_train[m]),
             "final_test_loss": float(runs.epoch_test[m, -1]),
             "final_train_rel": float(runs.final_train[m] / variance),
             "final_test_rel": float(runs.epoch_test[m, -1] / variance)}
            for m in range(len(runs.lrs))]


def sensitivity_rows(name: str, terms, net, runs: Runs, scale, config: Config) -> list[dict]:
    """Exact, Monte Carlo (target) and Monte Carlo (networks) first-order and total indices."""
    first, total = exact_sobol(terms)
    mc_first, mc_total = sobol_indices(lambda x: evaluate_terms(terms, x),
                                       config.sobol_samples, config.data_seed)
    net_first, net_total = sobol_indices(lambda x: network_outputs(net, runs.params, x, scale),
                                         config.sobol_samples, config.data_seed)
    return [{"polynomial": name, "variable": f"x{j + 1}",
             "S_exact": first[j], "S_mc": mc_first[j],
             "S_net": net_first[:, j].mean(), "S_net_sd": net_first[:, j].std(),
             "T_exact": total[j], "T_mc": mc_total[j],
             "T_net": net_total[:, j].mean(), "T_net_sd": net_total[:, j].std()}
            for j in range(N_VARS)]


def run(config: Config) -> dict:
    """Train both polynomials (sweep, chosen lr, final seeds), then probe the final networks:
    one-variable sweeps (steps 6-7) and sensitivity indices."""
    check(config)
    start = time.perf_counter()
    trained_all = train_all(config)
    training_wall = time.perf_counter() - start
    bases = inputs(config)[2]
    grid = np.linspace(LOW, HIGH, config.grid_points)
    net = network(config)
    summary, sweep_rows, sensitivity, per_variable = [], [], [], []
    arrays: dict[str, list] = {}
    scalars = {"target_scale": {}, "chosen_lr": {}, "train_seconds": {}, "analysis_seconds": {}}

    for name, terms in POLYNOMIALS.items():
        trained = time.perf_counter()
        scale, sweep, runs = (trained_all[name][k] for k in ("scale", "sweep", "runs"))
        variance = exact_variance(terms)
        summary += loss_rows(name, runs, variance)
        sweep_rows += [row | {"diverged_at": int(d)}
                       for row, d in zip(loss_rows(name, sweep, variance), sweep.diverged_at)]

        probes = probe(terms, net, runs.params, scale, bases, grid)
        errors = sweep_errors(probes)
        rows = sensitivity_rows(name, terms, net, runs, scale, config)
        sensitivity += rows
        per_variable.append(per_variable_table(name, errors, pd.DataFrame(rows)))
        fine, fine_steps = window_means(runs.step_loss, config.curve_points)
        for key, value in ({
            "sweep_epoch_train": sweep.epoch_train(config.epochs), "sweep_epoch_test": sweep.epoch_test,
            "epoch_train": runs.epoch_train(config.epochs), "epoch_test": runs.epoch_test,
            "fine_train": fine,
            "step6_target": probes["target"][0], "step6_model": probes["model"][:, 0],
            "step6_target_partial": probes["target_partial"][0],
            "step6_model_partial": probes["model_partial"][:, 0],
        } | errors).items():
            arrays.setdefault(key, []).append(np.asarray(value, np.float32))
        scalars["target_scale"][name] = {"mean": scale.mean, "std": scale.std,
                                         "exact_mean": exact_mean(terms), "exact_variance": variance}
        scalars["chosen_lr"][name] = float(runs.lrs[0])
        scalars["train_seconds"][name] = trained_all[name]["seconds"]
        scalars["analysis_seconds"][name] = time.perf_counter() - trained

    return {key: np.stack(value) for key, value in arrays.items()} | scalars | {
        "summary": pd.DataFrame(summary), "sweep": pd.DataFrame(sweep_rows),
        "sensitivity": pd.DataFrame(sensitivity),
        "per_variable": pd.concat(per_variable, ignore_index=True),
        "polynomials": np.array(list(POLYNOMIALS), dtype="U12"),
        "lrs": np.array(config.lrs), "seeds": np.array(config.seeds),
        "grid": grid.astype(np.float32), "base_point": bases[0],
        "fine_steps": fine_steps.astype(np.float32),
        "steps_per_epoch": -(-config.n_train // config.batch_size),
        "training_wall_seconds": training_wall}
