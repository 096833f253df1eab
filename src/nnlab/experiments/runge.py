"""The Runge function 1/(1 + 25x^2) on [-1, 1]: a 1-64-64-1 tanh network against polynomials.

The network is set up as the seed's Keras script (seed 004, exercise 3): 100 equispaced points split
70/15/15 by scikit-learn with ``random_state=4``, MSE, Adam with lr 0.01, 500 epochs of shuffled
mini-batches of 32 (Keras ``fit``'s default, last batch of 6 kept), Glorot-uniform weights and zero
biases (Keras' default initialisation). All seeds train at once in the batched engine.

Beyond the seed: the same runs with torch's default initialisation, and the Glorot networks trained
on through a few learning-rate schedules, the one with the lowest validation MSE kept. Beside the
networks: polynomial interpolation through the same 70 training nodes (a random subset of an
equispaced grid: Runge's phenomenon), in double precision and exactly, through 70 Chebyshev points,
and a least-squares polynomial on the training nodes whose degree is chosen on the validation split.

Controls and comparisons beyond the seed: the seed's constant rate continued for as many epochs as
the decay (``network_constant_<total epochs>``), the same recipe trained on Chebyshev points instead
(``network_chebyshev_points``: does the network care where the data lie?), a cubic spline through
the training points and a least-squares Chebyshev series with as many coefficients as the network
has parameters. A separate study (table ``monomial``) measures how the error of one hidden layer
approximating x^k falls with its width.

The summary has one row per (model, seed); the models without a seed carry seed = -1.
"""
from __future__ import annotations

import inspect
import itertools
import warnings
from dataclasses import dataclass

import mpmath
import numpy as np
import pandas as pd
import torch
from numpy.polynomial import Chebyshev
from numpy.polynomial import chebyshev as cheb
from numpy.polynomial import polynomial as mono
from scipy.interpolate import CubicSpline
from sklearn.model_selection import train_test_split

from nnlab.config import ConfigError, param
from nnlab.models import Net, forward, init_params
from nnlab.train import Adam, shuffled_epochs, step_decay, train

CHAPTER = "chapters/runge.qmd"
INITS = ("glorot", "torch")
MODEL_NAME = {"glorot": "network", "torch": "network_torch_init"}
SHUFFLE_OFFSET = 10_000   # later phases shuffle with seed + k * offset: no epoch order repeats


@dataclass(frozen=True)
class Config:
    n_points: int = param(100, ge=20)
    split_seed: int = param(4, ge=0)
    hidden: tuple[int, ...] = param((64, 64), ge=1, each=True)
    lr: float = param(0.01, gt=0)
    epochs: int = param(500, ge=1)
    batch_size: int = param(32, ge=1)
    seeds: tuple[int, ...] = param(tuple(range(10)), ge=0, each=True)
    inits: tuple[str, ...] = param(INITS, choices=INITS, each=True)
    grid_points: int = param(10001, ge=101)     # dense grid on which max errors are measured
    plot_points: int = param(2001, ge=101)      # grid stored for the figures
    sweep_degrees: tuple[int, ...] = param(tuple(range(4, 70, 5)), ge=1, each=True)
    exact_digits: int = param(50, ge=30)        # precision of the exact-arithmetic interpolant
    # beyond the seed: continue the Glorot networks through each schedule ('lr:epochs+...'), keep
    # the one with the lowest validation MSE
    schedules: tuple[str, ...] = ("1e-3:500", "1e-4:500", "1e-3:250+1e-4:250", "1e-3:1000")
    # one hidden layer against x^k: powers, widths, seeds, activations, training points, Adam steps
    monomial_powers: tuple[int, ...] = param((2, 3, 4, 5, 6), ge=1, each=True)
    monomial_widths: tuple[int, ...] = param((4, 8, 16, 32, 64), ge=1, each=True)
    monomial_seeds: tuple[int, ...] = param((0, 1, 2), ge=0, each=True)
    monomial_activations: tuple[str, ...] = param(("relu", "tanh"), choices=("relu", "tanh"), each=True)
    monomial_points: int = param(401, ge=3)
    monomial_steps: int = param(8000, ge=1)
    monomial_lr: float = param(0.01, gt=0)


PROFILES = {
    "full": Config(),
    "smoke": Config(epochs=5, seeds=(0, 1), schedules=("1e-3:2", "1e-3:1+1e-4:1"), grid_points=1001,
                    plot_points=201, sweep_degrees=(4, 9, 19), exact_digits=30,
                    monomial_powers=(2, 3), monomial_widths=(4, 16), monomial_seeds=(0,),
                    monomial_points=41, monomial_steps=200),
}


def runge(x):
    """f(x) = 1 / (1 + 25 x^2)."""
    return 1.0 / (1.0 + 25.0 * x ** 2)


def split(n_points: int = 100, seed: int = 4) -> dict[str, np.ndarray]:
    """The seed's data: ``n_points`` equispaced x in [-1, 1], split 70/15/15 exactly as its script."""
    x = np.linspace(-1, 1, n_points).reshape(-1, 1)
    x_train, x_rest = train_test_split(x, test_size=0.3, random_state=seed)
    x_val, x_test = train_test_split(x_rest, test_size=0.5, random_state=seed)
    return {"train": x_train.ravel(), "val": x_val.ravel(), "test": x_test.ravel()}


def chebyshev_points(n: int) -> np.ndarray:
    """The n Chebyshev points of the first kind, cos((2k+1)pi/(2n)), in increasing order."""
    return np.cos((2 * np.arange(n) + 1) * np.pi / (2 * n))[::-1].copy()


def interpolant(nodes: np.ndarray) -> Chebyshev:
    """The polynomial of degree len(nodes)-1 through (nodes, f(nodes)), solved in the Chebyshev basis.

    ``Chebyshev.fit`` solves the Vandermonde system in least squares; with as many coefficients as
    nodes it interpolates, up to the conditioning of that system (see :func:`vandermonde_conditions`).
    """
    return least_squares(nodes, len(nodes) - 1)


def least_squares(nodes: np.ndarray, degree: int) -> Chebyshev:
    """The least-squares polynomial of the given degree through (nodes, f(nodes)).

    numpy warns (RankWarning) when the system is ill-conditioned; the chapter measures that instead.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        return Chebyshev.fit(nodes, runge(nodes), deg=degree)


def vandermonde_conditions(nodes: np.ndarray) -> dict[str, float]:
    """2-norm condition numbers of the interpolation matrix in the Chebyshev and monomial bases."""
    deg = len(nodes) - 1
    return {"chebyshev_basis": float(np.linalg.cond(cheb.chebvander(nodes, deg))),
            "monomial_basis": float(np.linalg.cond(mono.polyvander(nodes, deg)))}


def exact_interpolant(nodes: list, x: np.ndarray, digits: int) -> np.ndarray:
    """The interpolant through (nodes, f(nodes)) evaluated at x in ``digits``-digit arithmetic.

    Barycentric formula with weights 1/prod(x_j - x_k); nodes are given as exact fractions
    (numerator, denominator) so that the only rounding is at ``digits`` digits.
    """
    with mpmath.workdps(digits):
        xs = [mpmath.mpf(p) / q for p, q in nodes]
        fs = [1 / (1 + 25 * t ** 2) for t in xs]
        ws = [1 / mpmath.fprod(xj - xk for k, xk in enumerate(xs) if k != j) for j, xj in enumerate(xs)]
        at_node = dict(zip(xs, fs))
        out = np.empty(len(x))
        for i, t in enumerate(map(mpmath.mpf, np.asarray(x, dtype=float))):
            if t in at_node:
                out[i] = float(at_node[t])
                continue
            cs = [w / (t - xj) for w, xj in zip(ws, xs)]
            out[i] = float(mpmath.fdot(cs, fs) / mpmath.fsum(cs))
    return out


def equispaced_fractions(x: np.ndarray, n_points: int) -> list[tuple[int, int]]:
    """Points of the grid linspace(-1, 1, n_points) as exact fractions (2k - (n-1), n-1)."""
    k = np.rint((np.asarray(x) + 1) * (n_points - 1) / 2).astype(int)
    return [(int(2 * kk - (n_points - 1)), n_points - 1) for kk in np.sort(k)]


def cubic_spline(nodes: np.ndarray, values: np.ndarray) -> CubicSpline:
    """The cubic spline through (nodes, values) with not-a-knot ends: as many free coefficients as
    nodes, exact for cubics, and an error of order h^4 for smooth f (h: the largest gap)."""
    order = np.argsort(nodes)
    return CubicSpline(nodes[order], values[order], bc_type="not-a-knot")


def chebyshev_least_squares(nodes: np.ndarray, values: np.ndarray, n_coefficients: int) -> Chebyshev:
    """The least-squares Chebyshev series sum_k c_k T_k(x), k < ``n_coefficients``, on [-1, 1].

    With more coefficients than nodes the system has infinitely many exact solutions; ``lstsq``
    returns the one of least coefficient norm.
    """
    V = cheb.chebvander(nodes, n_coefficients - 1)
    return Chebyshev(np.linalg.lstsq(V, values, rcond=None)[0])


def piecewise_linear_error(k: int, width: int, x: np.ndarray) -> float:
    """Max error on x of the piecewise-linear interpolant of x^k with one kink per unit: ``width``
    kinks, ``width + 1`` equal pieces of [-1, 1]. For x^2 it is 1/(width + 1)^2, and no function with
    that many kinks (no ReLU layer of that width) gets below half of it."""
    knots = np.linspace(-1, 1, width + 2)
    return float(np.max(np.abs(np.interp(x, knots, knots ** k) - x ** k)))


def monomial_study(c: Config, grid: np.ndarray) -> pd.DataFrame:
    """Max and mean-square error on ``grid`` of 1-width-1 networks fitted to x^k on [-1, 1].

    Per (activation, width) one batched run: every (power, seed) pair is a model with its own
    target, trained by full-batch Adam on ``monomial_points`` equispaced points, the rate decaying
    geometrically to 1/100 of ``monomial_lr`` over the second half of the steps.
    """
    x = np.linspace(-1, 1, c.monomial_points)
    pairs = list(itertools.product(c.monomial_powers, c.monomial_seeds))
    X = column(x).expand(len(pairs), -1, -1)
    Y = torch.stack([column(x ** k) for k, _ in pairs])
    rows = []
    for act, width in itertools.product(c.monomial_activations, c.monomial_widths):
        net = Net((1, width, 1), activation=act)
        res = train(net, init_params(net, [s for _, s in pairs]), itertools.repeat((X, Y)),
                    steps=c.monomial_steps, lr=c.monomial_lr, optimizer="adam", loss="mse",
                    lr_scale=step_decay(c.monomial_steps, 0.5, 1.0, 0.01), progress=f"monomial {act}",
                    threads=1)
        pred = predict(net, res.params, grid)
        for m, (k, seed) in enumerate(pairs):
            err = pred[m] - grid ** k
            rows.append({"activation": act, "power": k, "width": width, "seed": seed,
                         "max_err": float(np.max(np.abs(err))), "mse": float(np.mean(err ** 2)),
                         "piecewise_linear_max_err": piecewise_linear_error(k, width, grid),
                         "diverged": bool(res.diverged_at[m] >= 0)})
    return pd.DataFrame(rows)


def convergence_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Per (activation, power): the least-squares slope of log(max error) against log(width), median
    over seeds, for the networks and for the piecewise-linear interpolant of the same width."""
    rows = []
    for (act, k), g in table.groupby(["activation", "power"]):
        med = g.groupby("width")[["max_err", "mse", "piecewise_linear_max_err"]].median()
        logw = np.log(med.index.to_numpy(dtype=float))
        slope = lambda col: float(np.polyfit(logw, np.log(med[col]), 1)[0]) if len(med) > 1 else np.nan  # noqa: E731
        rows.append({"activation": act, "power": k, "max_err_slope": slope("max_err"),
                     "mse_slope": slope("mse"), "piecewise_linear_slope": slope("piecewise_linear_max_err")})
    return pd.DataFrame(rows)


def glorot_params(net: Net, seeds) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keras' default initialisation: W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)), b = 0."""
    layers = []
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    for n_in, n_out in net.layers:
        a = (6.0 / (n_in + n_out)) ** 0.5
        W = torch.stack([(torch.rand(n_out, n_in, generator=g) * 2 - 1) * a for g in gens])
        layers.append((W, torch.zeros(len(seeds), n_out)))
    return layers


def epoch_means(step_loss: np.ndarray, n: int, batch_size: int) -> np.ndarray:
    """Per-epoch training loss as Keras reports it: the batch-size-weighted mean of the batch losses."""
    sizes = np.full(-(-n // batch_size), batch_size, dtype=float)
    sizes[-1] = n - batch_size * (len(sizes) - 1)
    per_epoch = step_loss.reshape(step_loss.shape[0], -1, len(sizes))
    return (per_epoch * sizes).sum(-1) / n


def column(a) -> torch.Tensor:
    """A float32 column (n, 1) for the engine."""
    return torch.tensor(np.asarray(a), dtype=torch.float32).reshape(-1, 1)


def fit(net: Net, params, data: dict, c: Config, lr: float, epochs: int, seeds):
    """Keras-style ``fit``: shuffled mini-batches, Adam, validation loss after every epoch."""
    stream = shuffled_epochs(column(data["train"]), column(runge(data["train"])), c.batch_size, seeds)
    return train(net, params, stream, steps=epochs * stream.steps_per_epoch, lr=lr, optimizer="adam",
                 loss="mse", eval_every=stream.steps_per_epoch,
                 eval_data=(column(data["val"]), column(runge(data["val"]))), progress="runge",
                 threads=1)   # small matrices: one thread is faster than two


@torch.no_grad()
def predict(net: Net, params, x: np.ndarray) -> np.ndarray:
    """Outputs (M, len(x)) of the M networks on the points x."""
    M = params[0][0].shape[0]
    return forward(net, params, column(x).expand(M, -1, -1))[..., 0].numpy()


def parse_schedule(text: str) -> list[tuple[float, int]]:
    """'1e-3:250+1e-4:250' -> [(0.001, 250), (0.0001, 250)]: phases of (learning rate, epochs)."""
    try:
        phases = [(float(lr), int(ep)) for lr, ep in (p.split(":") for p in text.split("+"))]
    except ValueError:
        phases = []
    if not phases or any(lr <= 0 or ep < 1 for lr, ep in phases):
        raise ConfigError(f"runge.schedules: {text!r} is not of the form 'lr:epochs+lr:epochs'")
    return phases


def check(config: Config) -> None:
    """Every schedule parses, before anything trains."""
    for text in config.schedules:
        parse_schedule(text)


def continue_training(net: Net, params, data: dict, c: Config, schedule: str) -> dict:
    """Train on through the phases of ``schedule``, each with a fresh Adam (as a Keras re-compile)
    and new shuffling orders (seeds offset by ``SHUFFLE_OFFSET`` times the phase number)."""
    train_curves, val_curves = [], []
    for k, (lr, epochs) in enumerate(parse_schedule(schedule), start=1):
        res = fit(net, params, data, c, lr, epochs, [s + k * SHUFFLE_OFFSET for s in c.seeds])
        params = res.params
        train_curves.append(epoch_means(res.train_loss, len(data["train"]), c.batch_size))
        val_curves.append(res.eval_loss[:, 1:])
    return {"params": params, "train_loss": np.concatenate(train_curves, 1),
            "val_loss": np.concatenate(val_curves, 1)}      # after epochs 1, 2, ... of the schedule


def train_networks(c: Config, data: dict) -> dict:
    """The seed's recipe for every (init, seed), then the Glorot networks trained on at lower rates.

    Phase 1 trains len(inits) x len(seeds) networks in one batched run (seed s shuffles alike for
    every init). Then every schedule of ``c.schedules`` continues the Glorot networks; the schedule
    with the lowest mean validation MSE becomes ``network_decay``.
    """
    net = Net((1, *c.hidden, 1), activation="tanh")
    starts = [glorot_params(net, c.seeds) if i == "glorot" else init_params(net, c.seeds) for i in c.inits]
    params = [(torch.cat([p[l][0] for p in starts]), torch.cat([p[l][1] for p in starts]))
              for l in range(len(net.layers))]
    first = fit(net, params, data, c, c.lr, c.epochs, [s for _ in c.inits for s in c.seeds])
    runs = {}
    for k, init in enumerate(c.inits):
        keep = slice(k * len(c.seeds), (k + 1) * len(c.seeds))
        runs[MODEL_NAME[init]] = {
            "params": [(W[keep], b[keep]) for W, b in first.params],
            "train_loss": epoch_means(first.train_loss[keep], len(data["train"]), c.batch_size),
            "val_loss": first.eval_loss[keep][:, 1:]}      # after epochs 1, 2, ...
    schedules, best = [], ""
    if "glorot" in c.inits:
        tried = {text: continue_training(net, runs["network"]["params"], data, c, text) for text in c.schedules}
        test_mse = lambda p: ((predict(net, p, data["test"]) - runge(data["test"])) ** 2).mean(1)  # noqa: E731
        schedules = [{"schedule": text, "val_mse_mean": float(t["val_loss"][:, -1].mean()),
                      "val_mse_sd": float(np.std(t["val_loss"][:, -1], ddof=1)) if len(c.seeds) > 1 else 0.0,
                      "test_mse_mean": float(test_mse(t["params"]).mean())}
                     for text, t in tried.items()]
        if tried:
            best = min(schedules, key=lambda r: r["val_mse_mean"])["schedule"]
            runs["network_decay"] = tried[best]
            # the control: the seed's constant rate for as many further epochs as the decay took
            more = sum(epochs for _, epochs in parse_schedule(best))
            runs[f"network_constant_{c.epochs + more}"] = continue_training(
                net, runs["network"]["params"], data, c, f"{c.lr:g}:{more}")
        # the seed's recipe on Chebyshev points: the same seeds, initial weights and number of points
        moved = {**data, "train": chebyshev_points(len(data["train"]))}
        at_chebyshev = fit(net, glorot_params(net, c.seeds), moved, c, c.lr, c.epochs, c.seeds)
        runs["network_chebyshev_points"] = {
            "params": at_chebyshev.params, "val_loss": at_chebyshev.eval_loss[:, 1:],
            "train_loss": epoch_means(at_chebyshev.train_loss, len(moved["train"]), c.batch_size)}
    return {"net": net, "runs": runs, "decay_schedule": best,
            "schedules": pd.DataFrame(schedules, columns=["schedule", "val_mse_mean", "val_mse_sd", "test_mse_mean"])}


def _metrics(pred: dict, y: dict) -> dict[str, float]:
    """The summary's error columns from predictions on the validation, test and grid points."""
    err = {k: pred[k] - y[k] for k in ("val", "test", "grid")}
    return {"val_mse": float(np.mean(err["val"] ** 2)), "test_mse": float(np.mean(err["test"] ** 2)),
            "test_max_err": float(np.max(np.abs(err["test"]))),
            "grid_max_err": float(np.max(np.abs(err["grid"]))),
            "grid_rmse": float(np.sqrt(np.mean(err["grid"] ** 2)))}


def run(c: Config) -> dict:
    check(c)
    d = split(c.n_points, c.split_seed)
    d["grid"], d["plot"] = np.linspace(-1, 1, c.grid_points), np.linspace(-1, 1, c.plot_points)
    y = {k: runge(v) for k, v in d.items()}
    n_train = len(d["train"])
    parts = ("val", "test", "grid", "plot")

    nets = train_networks(c, d)
    rows, curves, plots = [], {}, {}
    for name, r in nets["runs"].items():
        pred = {k: predict(nets["net"], r["params"], d[k]) for k in parts}
        for m, seed in enumerate(c.seeds):
            rows.append({"model": name, "seed": seed, "n_params": nets["net"].n_params(),
                         **_metrics({k: v[m] for k, v in pred.items()}, y)})
        plots[f"{name}_plot"] = pred["plot"].astype(np.float32)
        curves[f"{name}_train_loss"] = r["train_loss"].astype(np.float32)
        curves[f"{name}_val_loss"] = r["val_loss"].astype(np.float32)

    # polynomials: interpolation through the training nodes and through Chebyshev points, least squares
    cheb_nodes = chebyshev_points(n_train)
    polys = {"poly_equispaced": interpolant(d["train"]), "poly_chebyshev": interpolant(cheb_nodes)}
    lsq_val_mse = np.array([np.mean((least_squares(d["train"], k)(d["val"]) - y["val"]) ** 2)
                            for k in range(1, n_train)])
    lsq_degree = int(np.argmin(lsq_val_mse)) + 1
    polys["poly_lsq"] = least_squares(d["train"], lsq_degree)
    # what a numerical analyst would fit to the same points: a cubic spline, and a least-squares
    # Chebyshev series with as many coefficients as the network has parameters (underdetermined)
    polys["spline"] = cubic_spline(d["train"], y["train"])
    polys["chebyshev_lsq"] = chebyshev_least_squares(d["train"], y["train"], nets["net"].n_params())
    polys["spline_chebyshev_points"] = cubic_spline(cheb_nodes, runge(cheb_nodes))
    preds = {name: {k: p(d[k]) for k in parts} for name, p in polys.items()}
    # the same interpolant through the training nodes, in exact arithmetic
    train_fracs = equispaced_fractions(d["train"], c.n_points)
    preds["poly_equispaced_exact"] = {k: exact_interpolant(train_fracs, d[k], c.exact_digits) for k in parts}
    sizes = {**{name: len(p.coef) for name, p in polys.items() if isinstance(p, Chebyshev)},
             "spline": n_train, "spline_chebyshev_points": n_train, "poly_equispaced_exact": n_train}
    for name, pred in preds.items():
        rows.append({"model": name, "seed": -1, "n_params": sizes[name], **_metrics(pred, y)})
        plots[f"{name}_plot"] = pred["plot"]

    # max error against degree: equispaced interpolation (exact), Chebyshev interpolation, least squares
    sweep = []
    for deg in c.sweep_degrees:
        equi = exact_interpolant([(2 * k - deg, deg) for k in range(deg + 1)], d["plot"], c.exact_digits)
        maxerr = lambda p: float(np.max(np.abs(p - y["plot"])))  # noqa: E731
        sweep.append({"degree": deg, "equispaced_exact": maxerr(equi),
                      "chebyshev": maxerr(interpolant(chebyshev_points(deg + 1))(d["plot"])),
                      "lsq_train_nodes": maxerr(least_squares(d["train"], min(deg, n_train - 1))(d["plot"]))})

    monomial = monomial_study(c, d["grid"])
    cheb_fit = polys["chebyshev_lsq"]
    return {
        "summary": pd.DataFrame(rows),
        "degree_sweep": pd.DataFrame(sweep),
        "monomial": monomial,
        "monomial_rates": convergence_rates(monomial),
        "constant_model": next((m for m in nets["runs"] if m.startswith("network_constant_")), ""),
        "chebyshev_lsq_residual_at_nodes": float(np.max(np.abs(cheb_fit(d["train"]) - y["train"]))),
        "chebyshev_lsq_coef_norm": float(np.linalg.norm(cheb_fit.coef)),
        "schedules": nets["schedules"],
        "decay_schedule": nets["decay_schedule"],
        "x_train": d["train"], "x_val": d["val"], "x_test": d["test"], "x_plot": d["plot"],
        **plots, **curves,
        "lsq_val_mse": lsq_val_mse,
        "lsq_degree": lsq_degree,
        "cond_train_nodes": vandermonde_conditions(d["train"]),
        "cond_chebyshev_points": vandermonde_conditions(cheb_nodes),
        "equispaced_residual_at_nodes": float(np.max(np.abs(polys["poly_equispaced"](d["train"]) - y["train"]))),
        "adam_eps": inspect.signature(Adam).parameters["eps"].default,
    }
