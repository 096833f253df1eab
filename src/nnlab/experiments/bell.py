"""Challenge 2B: a residual network learns the Bell polynomial B6 and scrambled counterparts (seed 000 §B).

The polynomials, as terms ``(coefficient, exponents)``, live in :mod:`nnlab.polynomials` (re-exported
here). Every run follows the seed's protocol (Adam, batch 20, 30 epochs) as its main phase and then
decays the learning rate geometrically for a few epochs, so that its final network is settled
rather than a snapshot between loss spikes.

* **main** / **sobol_matched**: per polynomial (B6, the scrambles ``SCRAMBLES[i]`` and the
  Sobol-matched control), the residual net on ``n_train`` points at every rate of a grid with every
  seed; the grid is extended while the best rate (lowest mean log training MSE) is at its edge. The
  runs at the chosen rate are probed along one-variable sweeps (steps 6-7) and by Sobol indices.
* **size_sweep**: B6 and the first scrambles at every training-set size, for the residual net and
  a one-hidden-layer net with the same number of parameters, at the rate chosen on ``n_train``.

A unit of work (one polynomial's grid, one architecture and size) is one batched training program,
run through :func:`nnlab.execute.map_units`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from nnlab.config import ConfigError, param
from nnlab.execute import map_units
from nnlab.models import Net, evaluate, forward, init_params
from nnlab.polynomials import (  # noqa: F401  (re-exported: the chapter and the tests use bell.*)
    B6_TERMS, HIGH, LOW, N_VARS, SCRAMBLE_SIGMAS, SCRAMBLES, SOBOL_MATCHED, SOBOL_MATCHED_SIGMAS,
    b6, derivative, draw_sigmas, evaluate_terms, exact_mean, exact_sobol, exact_variance, gradient,
    latex_monomial, moment, scramble, scramble_violations, sobol_indices, to_sympy)
from nnlab.train import num_threads, shuffled_epochs, step_decay, train

CHAPTER = "chapters/bell-polynomials.qmd"
ARCHITECTURES = ("resnet", "shallow")


@dataclass(frozen=True)
class Config:
    n_train: int = param(10_000, ge=1)        # main comparison
    n_test: int = param(60_000, ge=1)
    n_test_curve: int = param(10_000, ge=1)   # test points of the per-epoch curve (final: all)
    epochs: int = param(30, ge=1)             # the seed's main phase at a constant rate...
    decay_epochs: int = param(3, ge=0)        # ...then the rate decays geometrically...
    decay_factor: float = param(0.01, gt=0, le=1)   # ...to this fraction of itself
    batch_size: int = param(20, ge=1)
    width: int = param(50, ge=1)
    hidden_layers: int = param(8, ge=2)       # 8 hidden layers = 9 weight layers, 7 of them skipped
    scrambles: int = param(10, ge=1, le=len(SCRAMBLES))
    lrs: tuple[float, ...] = param((1e-3, 2e-3, 4e-3), gt=0, each=True)
    extend: int = param(2, ge=0)              # at most this many rates added beyond an edge
    seeds: tuple[int, ...] = param((0, 1, 2), ge=0, each=True)
    sizes: tuple[int, ...] = param((1000, 3000, 10_000, 30_000, 100_000), ge=1, each=True)
    min_steps: int = param(16_500, ge=1)      # size sweep: small sets train for more epochs
    size_scrambles: int = param(2, ge=0, le=len(SCRAMBLES))
    size_seeds: tuple[int, ...] = param((0, 1), ge=0, each=True)   # a subset of seeds
    shallow_lrs: tuple[float, ...] = param((1e-3, 2e-3, 4e-3), gt=0, each=True)
    data_seed: int = param(2024, ge=0)
    base_points: int = param(100, ge=1)       # step 7 (the first one is step 6's)
    grid_points: int = param(201, ge=2)
    sobol_samples: int = param(2 ** 14, ge=2)
    curve_points: int = param(200, ge=1)      # windows of the per-step training loss kept


PROFILES = {
    "full": Config(),
    "smoke": Config(n_train=200, n_test=200, n_test_curve=100, epochs=2, decay_epochs=1,
                    scrambles=2, lrs=(1e-3, 3e-3), extend=1, seeds=(0, 1), sizes=(100, 200, 400),
                    min_steps=20, size_scrambles=1, size_seeds=(0, 1), shallow_lrs=(1e-3, 3e-3), base_points=3,
                    grid_points=11, sobol_samples=256, curve_points=10),
}


def check(config: Config) -> None:
    """Constraints between fields that the per-field bounds cannot express."""
    for field in ("lrs", "seeds", "sizes", "shallow_lrs", "size_seeds"):
        values = getattr(config, field)
        if not values or len(set(values)) < len(values):
            raise ConfigError(f"bell.{field} = {values!r}: must be non-empty and without repeats")
    if not set(config.size_seeds) <= set(config.seeds):
        raise ConfigError(f"bell.size_seeds = {config.size_seeds}: must be among seeds {config.seeds}")
    if config.n_train not in config.sizes:
        raise ConfigError(f"bell.n_train = {config.n_train}: must be one of sizes {config.sizes}")
    if min(config.sizes) < config.batch_size:
        raise ConfigError(f"bell.sizes = {config.sizes}: every size must be >= batch_size "
                          f"({config.batch_size})")
    if config.n_test_curve > config.n_test:
        raise ConfigError(f"bell.n_test_curve = {config.n_test_curve}: must be <= n_test "
                          f"({config.n_test})")


def polynomials(config: Config) -> dict[str, tuple]:
    """Name -> terms: "B6", the scrambles "0", "1", ... and the Sobol-matched control "sobol"."""
    return ({"B6": B6_TERMS} | {str(i): SCRAMBLES[i] for i in range(config.scrambles)}
            | {"sobol": SOBOL_MATCHED})


def kind_of(name: str) -> str:
    return "sobol_matched" if name == "sobol" else "main"


def network(config: Config, architecture: str = "resnet") -> Net:
    """resnet: 6 -> width, hidden_layers - 1 residual layers width -> width, width -> 1 (linear).
    shallow: 6 -> h -> 1 with h chosen so that it has (about) as many parameters."""
    resnet = Net(widths=(N_VARS,) + (config.width,) * config.hidden_layers + (1,),
                 activation="relu", residual=True)
    if architecture == "resnet":
        return resnet
    if architecture == "shallow":
        return Net((N_VARS, round((resnet.n_params() - 1) / (N_VARS + 2)), 1), activation="relu")
    raise ValueError(f"architecture = {architecture!r}: allowed are {', '.join(ARCHITECTURES)}")


# ------------------------------------------------------------------------------ data and training

def sample_inputs(n: int, rng: np.random.Generator) -> np.ndarray:
    """n points of U[0, 2]^6, drawn in float32 (the network's precision) and returned as float64."""
    return rng.uniform(LOW, HIGH, (n, N_VARS)).astype(np.float32).astype(np.float64)


def inputs(config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training inputs (a size-n set is the first n rows), test inputs and the base points of
    steps 6-7 (bases[0] is step 6's)."""
    rng = np.random.default_rng(config.data_seed)
    return (sample_inputs(max(config.sizes), rng), sample_inputs(config.n_test, rng),
            sample_inputs(config.base_points, rng))


@dataclass(frozen=True)
class TargetScale:
    """Standardisation of a polynomial's targets: the network learns (y - mean) / std."""
    mean: float
    std: float

    @staticmethod
    def of(terms, X: np.ndarray) -> TargetScale:
        y = evaluate_terms(terms, X)
        return TargetScale(float(y.mean()), float(y.std()))

    def to_net(self, y: np.ndarray) -> torch.Tensor:
        return torch.tensor((y - self.mean) / self.std, dtype=torch.float32)


class PerModelTargets:
    """Minibatches of shared inputs with a target per model: model m sees the sample order of
    ``shuffled_epochs(..., seeds)[m]`` and its own targets ``T[m]`` (M, N), so a model trains
    exactly as it would alone on ``(X, T[m])``."""

    def __init__(self, X: torch.Tensor, T: torch.Tensor, batch_size: int, seeds):
        self.inner = shuffled_epochs(X, torch.arange(len(X)), batch_size, seeds)
        self.T, self.n_models = T, len(self.inner.seeds)
        self.steps_per_epoch = self.inner.steps_per_epoch

    def to(self, device):
        self.inner.to(device)
        self.T = self.T.to(device)
        return self

    def __iter__(self):
        for x, index in self.inner:
            yield x, torch.gather(self.T, 1, index).unsqueeze(-1)


def schedule(config: Config, n: int) -> tuple[int, int, np.ndarray]:
    """(main-phase epochs, total steps, per-step lr factors) for a training set of n points: at
    least ``config.epochs`` epochs and ``min_steps`` steps at a constant rate, then
    ``decay_epochs`` epochs of geometric decay to ``decay_factor``."""
    per_epoch = math.ceil(n / config.batch_size)
    epochs = config.epochs if n == config.n_train else max(config.epochs, math.ceil(config.min_steps / per_epoch))
    main, steps = epochs * per_epoch, (epochs + config.decay_epochs) * per_epoch
    return epochs, steps, step_decay(steps, main / steps, 1.0, config.decay_factor)


@dataclass
class Runs:
    """M trained networks (one architecture and training set) and their logs; MSEs in original units."""
    names: list               # (M,) polynomial of each model
    lrs: np.ndarray           # (M,)
    seeds: np.ndarray         # (M,)
    params: list              # stacked (W, b) per layer, as the engine returns them
    epoch_train: np.ndarray   # (M, epochs) mean minibatch loss of every epoch
    fine_train: np.ndarray    # (M, curve_points) mean minibatch loss over windows of steps
    epoch_test: np.ndarray    # (M, epochs + 1) test MSE (first n_test_curve points) per epoch; or (M, 0)
    final_train: np.ndarray   # (M,) MSE of the final network on its whole training set
    final_test: np.ndarray    # (M,) MSE of the final network on the whole test set
    diverged_at: np.ndarray   # (M,) first non-finite step, -1 if never

    def take(self, index) -> Runs:
        index = list(index)
        return Runs([self.names[i] for i in index], self.lrs[index], self.seeds[index],
                    [(W[index], b[index]) for W, b in self.params],
                    *(getattr(self, k)[index] for k in ("epoch_train", "fine_train", "epoch_test",
                                                        "final_train", "final_test", "diverged_at")))

    @staticmethod
    def concat(runs: list[Runs]) -> Runs:
        cat = lambda k: np.concatenate([getattr(r, k) for r in runs])
        params = [(torch.cat([r.params[l][0] for r in runs]), torch.cat([r.params[l][1] for r in runs]))
                  for l in range(len(runs[0].params))]
        return Runs(sum((r.names for r in runs), []), cat("lrs"), cat("seeds"), params,
                    *(cat(k) for k in ("epoch_train", "fine_train", "epoch_test", "final_train",
                                       "final_test", "diverged_at")))


def window_means(losses: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of the per-step losses (M, steps) over n consecutive windows, and window centres."""
    chunks = np.array_split(np.arange(losses.shape[1]), min(n, losses.shape[1]))
    centres = np.array([c.mean() + 1 for c in chunks])
    return np.stack([losses[:, c].mean(1) for c in chunks], 1), centres


def fit(config: Config, architecture: str, n: int, models: list[tuple[str, float, int]],
        curve: bool = False) -> Runs:
    """Train the models (polynomial name, lr, seed) on the first n training inputs in one engine
    call; model m starts from, and shuffles with, its seed. ``curve=True`` (one polynomial only)
    logs the test MSE on the first ``n_test_curve`` test points after every epoch."""
    names, lrs, seeds = (list(v) for v in zip(*models))
    terms = polynomials(config)
    X_all, X_test, _ = inputs(config)
    X = X_all[:n]
    scales = {p: TargetScale.of(terms[p], X) for p in set(names)}
    targets = {p: scales[p].to_net(evaluate_terms(terms[p], X)) for p in set(names)}
    test_targets = {p: scales[p].to_net(evaluate_terms(terms[p], X_test)) for p in set(names)}
    net, as_net = network(config, architecture), lambda a: torch.tensor(a, dtype=torch.float32)
    epochs, steps, lr_scale = schedule(config, n)
    per_epoch = math.ceil(n / config.batch_size)
    stream = PerModelTargets(as_net(X), torch.stack([targets[p] for p in names]), config.batch_size, seeds)
    eval_data = None
    if curve:
        if len(set(names)) > 1:
            raise ValueError("a per-epoch test curve needs one polynomial per engine call")
        k = config.n_test_curve
        eval_data = (as_net(X_test[:k]), test_targets[names[0]][:k, None])
    result = train(net, init_params(net, seeds), stream, steps=steps, lr=lrs, lr_scale=lr_scale,
                   optimizer="adam", loss="mse", eval_every=per_epoch if curve else 0,
                   eval_data=eval_data)
    var = np.array([scales[p].std ** 2 for p in names])
    final = lambda Xs, T: np.array([
        evaluate(net, [(W[[m]], b[[m]]) for W, b in result.params], as_net(Xs), T[p][:, None])[0]
        for m, p in enumerate(names)])
    fine, _ = window_means(result.train_loss, config.curve_points)
    epoch_train = result.train_loss[:, :epochs * per_epoch].reshape(len(names), epochs, per_epoch).mean(2)
    return Runs(names, np.array(lrs, float), np.array(seeds), result.params,
                epoch_train * var[:, None], (fine * var[:, None]).astype(np.float32),
                result.eval_loss * var[:, None] if curve else np.zeros((len(names), 0)),
                final(X, targets) * var, final(X_test, test_targets) * var, result.diverged_at)


def lr_score(runs: Runs) -> dict[float, float]:
    """Per learning rate: the mean over seeds of log final training MSE (inf if any run diverged)."""
    score = {}
    for lr in np.unique(runs.lrs):
        at = runs.lrs == lr
        ok = np.all(runs.diverged_at[at] < 0) and np.all(np.isfinite(runs.final_train[at]))
        score[float(lr)] = float(np.mean(np.log(runs.final_train[at]))) if ok else math.inf
    return score


def choose_lr(runs: Runs) -> float:
    """The rate with the lowest :func:`lr_score` (the seed: tuned to minimise training error)."""
    score = lr_score(runs)
    if not np.isfinite(min(score.values())):
        raise RuntimeError("every learning rate of the grid diverged")
    return min(score, key=score.get)


def tune(config: Config, architecture: str, n: int, names: list[str], lrs, curve: bool,
         seeds=None) -> Runs:
    """Every (polynomial, rate, seed) (``seeds``: default ``config.seeds``); while a polynomial's
    best rate is at an edge of its grid, add the next rate beyond it (grid ratio), up to
    ``config.extend`` times."""
    seeds = config.seeds if seeds is None else seeds
    runs = fit(config, architecture, n, [(p, lr, s) for p in names for lr in lrs for s in seeds], curve)
    lrs = sorted(lrs)
    ratio = lrs[1] / lrs[0] if len(lrs) > 1 else 2.0
    for _ in range(config.extend):
        extra = []
        for p in names:
            mine = runs.take([m for m, q in enumerate(runs.names) if q == p])
            grid, best = sorted(set(mine.lrs)), choose_lr(mine)
            if best == grid[0]:
                extra.append((p, best / ratio))
            elif best == grid[-1]:
                extra.append((p, best * ratio))
        if not extra:
            break
        runs = Runs.concat([runs, fit(config, architecture, n,
                                      [(p, lr, s) for p, lr in extra for s in seeds], curve)])
    return runs


# ------------------------------------------------------------------- steps 6-7: one-variable sweeps

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
    return {"target": target, "target_partial": target_partial,
            "model": model.reshape((M,) + shape),
            "model_partial": along_sweeps(model_grad.reshape((M,) + points.shape))}


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


def t_quantile(p: float, df: int) -> float:
    """The p-quantile (p > 1/2) of Student's t with df degrees of freedom: bisection on its CDF,
    integrated by Simpson's rule (exact to about 1e-6; no scipy import for one number)."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x):
        t = np.linspace(0, x, 4001)
        f = np.exp(log_c - (df + 1) / 2 * np.log1p(t ** 2 / df))
        return 0.5 + (t[1] - t[0]) / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())

    low, high = 0.0, 1.0
    while cdf(high) < p:
        low, high = high, 2 * high
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


def interval(samples: np.ndarray, axis: int = 0, level: float = 0.95) -> tuple:
    """Mean and Student-t confidence half-width of the mean along ``axis`` (nan for one sample)."""
    samples = np.asarray(samples, float)
    n = samples.shape[axis]
    if n < 2:
        return samples.mean(axis), np.nan
    return samples.mean(axis), t_quantile(0.5 + level / 2, n - 1) * samples.std(axis, ddof=1) / np.sqrt(n)


def per_variable_table(name: str, errors: dict, sensitivity: pd.DataFrame) -> pd.DataFrame:
    """Step 7 per variable: mean over base points (of the seed-averaged error) with its 95 %
    t-interval over base points, for each error; the shape error relative to the target's spread
    along the sweep and the derivative error relative to the target's mean |df/dx_j|."""
    rows = []
    for j in range(N_VARS):
        row = {"polynomial": name, "variable": f"x{j + 1}",
               "S_exact": float(sensitivity["S_exact"][j]), "T_exact": float(sensitivity["T_exact"][j])}
        for key in ("value_error", "shape_error", "partial_error"):
            mean, half = interval(errors[key][..., j].mean(0))     # seeds averaged, bases = samples
            row |= {key: float(mean), f"{key}_ci": float(half)}
        for key in ("value_scale", "partial_scale"):
            row[key] = float(errors[key][..., j].mean())
        row["shape_error_rel"] = row["shape_error"] / row["value_scale"]
        row["partial_error_rel"] = row["partial_error"] / row["partial_scale"]
        rows.append(row)
    return pd.DataFrame(rows)


def sensitivity_rows(name: str, terms, net, params, scale, config: Config) -> list[dict]:
    """Exact, Monte Carlo (target) and Monte Carlo (networks) first-order and total indices."""
    first, total = exact_sobol(terms)
    mc_first, mc_total = sobol_indices(lambda x: evaluate_terms(terms, x),
                                       config.sobol_samples, config.data_seed)
    net_first, net_total = sobol_indices(lambda x: network_outputs(net, params, x, scale),
                                         config.sobol_samples, config.data_seed)
    return [{"polynomial": name, "variable": f"x{j + 1}",
             "S_exact": first[j], "S_mc": mc_first[j],
             "S_net": net_first[:, j].mean(), "S_net_sd": net_first[:, j].std(ddof=1) if len(net_first) > 1 else 0.0,
             "T_exact": total[j], "T_mc": mc_total[j],
             "T_net": net_total[:, j].mean(), "T_net_sd": net_total[:, j].std(ddof=1) if len(net_total) > 1 else 0.0}
            for j in range(N_VARS)]


# ---------------------------------------------------------------------------------- the units

def main_unit(config: Config, name: str) -> dict:
    """One polynomial of the main comparison: the residual net at every rate and seed (grid
    extended at its edges), then steps 6-7 and sensitivity indices of the runs at the chosen rate."""
    terms = polynomials(config)[name]
    runs = tune(config, "resnet", config.n_train, [name], config.lrs, curve=True)
    chosen = choose_lr(runs)
    final = runs.take([m for m in range(len(runs.lrs)) if runs.lrs[m] == chosen])
    order = [list(final.seeds).index(s) for s in config.seeds]
    final = final.take(order)
    X_all, _, bases = inputs(config)
    scale = TargetScale.of(terms, X_all[:config.n_train])
    net, grid = network(config), np.linspace(LOW, HIGH, config.grid_points)
    probes = probe(terms, net, final.params, scale, bases, grid)
    errors = sweep_errors(probes)
    sensitivity = sensitivity_rows(name, terms, net, final.params, scale, config)
    return {"runs": _drop_params(runs), "chosen": chosen, "final": _drop_params(final), "scale": scale, "errors": errors,
            "sensitivity": sensitivity,
            "per_variable": per_variable_table(name, errors, pd.DataFrame(sensitivity)),
            "step6": {k: v[..., 0, :, :] if k.startswith("model") else v[0] for k, v in probes.items()}}


def _drop_params(runs: Runs) -> Runs:
    """The runs without their parameters (all the results keep of a network)."""
    return Runs(runs.names, runs.lrs, runs.seeds, [], runs.epoch_train, runs.fine_train,
                runs.epoch_test, runs.final_train, runs.final_test, runs.diverged_at)


def size_unit(config: Config, architecture: str, n: int, chosen: dict[str, float]) -> dict:
    """The size-sweep polynomials at one training-set size, every seed at its polynomial's rate."""
    runs = fit(config, architecture, n, [(p, lr, s) for p, lr in chosen.items() for s in config.size_seeds])
    return {"runs": _drop_params(runs)}


def compute(task: tuple) -> dict:
    """One unit of work (top-level, so that an executor can ship it): ``(config, kind, *args)``.
    One torch thread; every generator is seeded from the config and the unit."""
    config, kind, *args = task
    start = time.perf_counter()
    with num_threads(1):
        torch.manual_seed(config.data_seed)
        if kind == "main":
            out = main_unit(config, *args)
        elif kind == "shallow_tune":
            out = {"runs": _drop_params(tune(config, "shallow", config.n_train, *args,
                                             config.shallow_lrs, curve=False, seeds=config.size_seeds))}
        else:
            out = size_unit(config, *args)
    return out | {"seconds": time.perf_counter() - start}


def size_names(config: Config) -> list[str]:
    """The polynomials of the size sweep: B6 and the first ``size_scrambles`` scrambles."""
    return ["B6"] + [str(i) for i in range(config.size_scrambles)]


def run_rows(runs: Runs, kind, architecture: str, n: int, chosen: dict, config: Config) -> list[dict]:
    """One row per run (``kind``: a string, or a function of the polynomial's name)."""
    terms = polynomials(config)
    epochs, steps, _ = schedule(config, n)
    rows = []
    for m, p in enumerate(runs.names):
        var = exact_variance(terms[p])
        rows.append({"polynomial": p, "kind": kind(p) if callable(kind) else kind,
                     "architecture": architecture, "n_train": n, "seed": int(runs.seeds[m]),
                     "lr": float(runs.lrs[m]), "chosen": bool(runs.lrs[m] == chosen.get(p)),
                     "epochs": epochs + config.decay_epochs, "steps": steps,
                     "final_train_mse": float(runs.final_train[m]),
                     "final_test_mse": float(runs.final_test[m]),
                     "final_train_mse_rel": float(runs.final_train[m] / var),
                     "final_test_mse_rel": float(runs.final_test[m] / var),
                     "diverged_at": int(runs.diverged_at[m])})
    return rows


def gaps(summary: pd.DataFrame) -> pd.DataFrame:
    """Per scramble (and the Sobol-matched control) and seed: the relative test MSE at its chosen
    rate over B6's with the same seed (same initial weights, inputs and sample order); ratio > 1:
    B6 is learnt better."""
    main = summary[(summary.kind != "size_sweep") & summary.chosen]
    b6 = main[main.polynomial == "B6"].set_index("seed").final_test_mse_rel
    rows = [{"polynomial": r.polynomial, "kind": r.kind, "seed": r.seed,
             "ratio": r.final_test_mse_rel / b6[r.seed],
             "train_ratio": r.final_train_mse_rel / main[(main.polynomial == "B6") & (main.seed == r.seed)]
             .final_train_mse_rel.item()}
            for r in main[main.polynomial != "B6"].itertuples()]
    return pd.DataFrame(rows)


def size_rows(summary: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The runs of the sample-size experiment: the size-sweep polynomials at their chosen rates with
    the size seeds; at n_train the residual net's runs are those of the main comparison."""
    return summary[summary.polynomial.isin(size_names(config)) & summary.chosen &
                   summary.seed.isin(config.size_seeds) &
                   ((summary.kind == "size_sweep") | (summary.n_train == config.n_train))]


def slopes(summary: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, polynomial and seed: the least-squares slope of log relative test MSE
    against log n over the sizes (the rate at which the error falls with the sample size)."""
    runs = summary[summary.chosen & (summary.architecture.isin(ARCHITECTURES))]
    rows = []
    for (arch, p, seed), g in runs.groupby(["architecture", "polynomial", "seed"]):
        if g.n_train.nunique() < 3:
            continue
        g = g.sort_values("n_train")
        slope, intercept = np.polyfit(np.log10(g.n_train), np.log10(g.final_test_mse_rel), 1)
        rows.append({"architecture": arch, "polynomial": p, "seed": seed, "slope": slope,
                     "intercept": intercept})
    return pd.DataFrame(rows)


def run(config: Config) -> dict:
    """Main comparison and Sobol-matched control (phase 1, with the shallow net's rate tuning),
    then the size sweep at the chosen rates (phase 2); every unit through map_units."""
    check(config)
    start = time.perf_counter()
    names, sized = list(polynomials(config)), size_names(config)
    first = map_units(compute, [(config, "main", p) for p in names] + [(config, "shallow_tune", sized)],
                      experiment="bell")
    main, shallow = dict(zip(names, first[:-1])), first[-1]
    chosen = {"resnet": {p: main[p]["chosen"] for p in sized},
              "shallow": {p: choose_lr(shallow["runs"].take(
                  [m for m, q in enumerate(shallow["runs"].names) if q == p])) for p in sized}}
    plan = sorted(((a, n) for a in ARCHITECTURES for n in config.sizes if n != config.n_train),
                  key=lambda an: -an[1])
    second = map_units(compute, [(config, "size", a, n, chosen[a]) for a, n in plan], experiment="bell")

    rows = []
    for p in names:
        rows += run_rows(main[p]["runs"], kind_of, "resnet", config.n_train, {p: main[p]["chosen"]}, config)
    rows += run_rows(shallow["runs"], "size_sweep", "shallow", config.n_train, chosen["shallow"], config)
    for (a, n), out in zip(plan, second):
        rows += run_rows(out["runs"], "size_sweep", a, n, chosen[a], config)
    summary = pd.DataFrame(rows)

    arrays = {}
    for key in ("epoch_train", "epoch_test", "fine_train"):
        arrays[key] = np.stack([getattr(main[p]["final"], key) for p in names]).astype(np.float32)
    for key in ("value_error", "shape_error", "partial_error", "value_scale", "partial_scale"):
        arrays[key] = np.stack([main[p]["errors"][key] for p in names]).astype(np.float32)
    for key in ("target", "target_partial", "model", "model_partial"):
        arrays["step6_" + key] = np.stack([main[p]["step6"][key] for p in names]).astype(np.float32)
    _, steps, lr_scale = schedule(config, config.n_train)
    X_all, _, bases = inputs(config)
    unit_seconds = {f"main {p}": main[p]["seconds"] for p in names} | {"shallow tuning": shallow["seconds"]} \
        | {f"size {a} {n}": out["seconds"] for (a, n), out in zip(plan, second)}
    return arrays | {
        "summary": summary, "gaps": gaps(summary), "slopes": slopes(size_rows(summary, config)),
        "sensitivity": pd.DataFrame([r for p in names for r in main[p]["sensitivity"]]),
        "per_variable": pd.concat([main[p]["per_variable"] for p in names], ignore_index=True),
        "polynomials": np.array(names, dtype="U8"), "seeds": np.array(config.seeds),
        "grid": np.linspace(LOW, HIGH, config.grid_points).astype(np.float32),
        "base_point": bases[0], "fine_steps": window_means(np.zeros((1, steps)), config.curve_points)[1],
        "lr_scale": lr_scale[::max(1, steps // 1000)].astype(np.float32),
        "target_scale": {p: {"mean": main[p]["scale"].mean, "std": main[p]["scale"].std,
                             "exact_mean": exact_mean(polynomials(config)[p]),
                             "exact_variance": exact_variance(polynomials(config)[p])} for p in names},
        "chosen_lr": {a: c for a, c in chosen.items()} | {"main": {p: main[p]["chosen"] for p in names}},
        "main_epochs": config.epochs, "steps_per_epoch": math.ceil(config.n_train / config.batch_size),
        "unit_seconds": unit_seconds, "wall_seconds": time.perf_counter() - start}
