"""Challenge 2A: three students learn a frozen random ReLU teacher from fresh batches (seed 000 §A).

The teacher T (100 -> 75 -> 50 -> 10 -> 1, every weight and bias N(0, 1)) labels inputs drawn from
U[0, 2]^100. Its outputs are large and off-centre, so the students learn the standardised target
(y - mean) / std, with mean and std measured on a calibration sample, from standardised inputs
(x - 1) * sqrt(3); every loss is also reported in the teacher's units (x std^2), and both affine
maps are folded back into a student's first and last layers before its parameters are compared
with the teacher's (the folded network computes the same function of the raw input).

Per student, one engine call trains every (learning rate, seed) pair on fresh batches for a sweep
budget; the learning rate with the lowest seed-averaged training loss over the last fifth of the
sweep wins (the batches are fresh, so that loss is an unbiased estimate of the population loss and
the test set stays untouched). A second engine call trains the seeds for the full budget, logging
the test loss: at that learning rate until ``anneal_start`` of the steps, then decaying it
geometrically by ``anneal_factor`` until ``anneal_end`` and holding it there, so that the last two
fifths can show whether the run has settled. Then come the quasi-stationarity check, the parameter
distributions (raw and after fixing the rescaling symmetry) and the Hungarian matching of first-layer
units. The students train in ``workers`` processes, one thread each; the result does not depend on
their number.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.special import ndtr, ndtri

from nnlab.config import ConfigError, param
from nnlab.models import Net, evaluate, forward, init_params
from nnlab.train import fresh_batches, num_threads, step_decay, train

CHAPTER = "chapters/teacher-student.qmd"
N_IN, X_MAX = 100, 2.0                   # inputs are uniform on [0, X_MAX]^N_IN
X_MEAN, X_STD = X_MAX / 2, X_MAX / 12 ** 0.5   # mean and sd of each input coordinate
TEACHER = Net((N_IN, 75, 50, 10, 1))
STUDENTS = {"S_u": Net((N_IN, 10, 1)), "S_e": TEACHER, "S_o": Net((N_IN, 200, 200, 200, 100, 1))}
LRS = tuple(float(10.0 ** e) for e in (-4, -3.5, -3, -2.5, -2))   # Adam learning rates swept
STREAM_OFFSET = 10_000                   # data stream of seed s: torch.Generator seeded STREAM_OFFSET + s
CURVE_POINTS = 400                       # training-loss curves are stored as this many block means


@dataclass(frozen=True)
class Config:
    teacher_seed: int = param(0, ge=0)
    data_seed: int = param(1, ge=0)                  # calibration and test inputs
    test_size: int = param(60_000, ge=100)
    batch_size: int = param(128, ge=1)
    seeds: tuple[int, ...] = param((0, 1, 2), ge=0, each=True)
    lrs: tuple[float, ...] = param(LRS, gt=0, each=True)
    optimizer: str = param("adam", choices=("adam", "sgd"))
    sweep_steps: tuple[int, ...] = param((10_000, 12_000, 4_000), ge=10, each=True)   # S_u, S_e, S_o
    steps: tuple[int, ...] = param((30_000, 120_000, 50_000), ge=10, each=True)       # S_u, S_e, S_o
    anneal_start: float = param(0.5, ge=0, le=1)     # final runs: constant lr until this fraction of steps,
    anneal_end: float = param(0.6, ge=0, le=1)       # then geometric decay until this fraction,
    anneal_factor: float = param(1e-3, gt=0, le=1)   # to lr * anneal_factor, held to the end
    evals: int = param(30, ge=5)                     # test-loss evaluations per final run
    stationary_tol: float = param(0.01, gt=0)        # "quasi-stationary": last-fifth change below this
    match_cos: float = param(0.9, gt=0, lt=1)        # a teacher unit is recovered above this cosine
    standardise_inputs: bool = True                  # students see (x - X_MEAN) / X_STD
    input_ablation: bool = True                      # also sweep S_e on raw inputs (first seed)
    workers: int = param(2, choices=(1, 2))          # processes: S_o in one, S_u and S_e in the other


PROFILES = {"full": Config(),
            "smoke": Config(test_size=2_000, seeds=(0, 1), lrs=(1e-3, 1e-2),
                            sweep_steps=(20, 20, 20), steps=(50, 50, 50), evals=5, workers=1)}


def check(config: Config) -> None:
    """Constraints between fields that the per-field bounds cannot express."""
    for field in ("sweep_steps", "steps"):
        if len(getattr(config, field)) != len(STUDENTS):
            raise ConfigError(f"teacher_student.{field} = {getattr(config, field)!r}: needs one value per student "
                              f"({', '.join(STUDENTS)})")
    if config.anneal_start > config.anneal_end:
        raise ConfigError(f"teacher_student.anneal_start = {config.anneal_start}: must not exceed "
                          f"anneal_end = {config.anneal_end}")
    if min(config.steps) < config.evals:
        raise ConfigError(f"teacher_student.evals = {config.evals}: must not exceed the smallest of steps {config.steps}")
    for field in ("seeds", "lrs"):
        values = getattr(config, field)
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(f"teacher_student.{field} = {values!r}: repeats {repeated}")


# ------------------------------------------------------------------------------- teacher and data

def make_teacher(seed: int):
    """The frozen teacher: init_params with std=1, i.e. every weight and bias i.i.d. N(0, 1)."""
    return init_params(TEACHER, [seed], std=1.0)


def draw_inputs(generator: torch.Generator, n: int) -> torch.Tensor:
    """n inputs from U[0, X_MAX]^N_IN."""
    return X_MAX * torch.rand(n, N_IN, generator=generator)


@torch.no_grad()
def label(teacher, x: torch.Tensor) -> torch.Tensor:
    """The teacher's outputs (n, 1) on inputs (n, N_IN)."""
    return forward(TEACHER, teacher, x.unsqueeze(0))[0]


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Inputs with zero mean and unit variance per coordinate: what a student sees."""
    return (x - X_MEAN) / X_STD


def online_sampler(teacher, mean: float, std: float, standardise_inputs: bool = True):
    """``sample(generator, n)`` for fresh_batches: new inputs (standardised if asked) and their
    standardised teacher labels (y - mean) / std."""
    def sample(generator, n):
        x = draw_inputs(generator, n)
        return (standardise(x) if standardise_inputs else x), (label(teacher, x) - mean) / std
    return sample


@torch.no_grad()
def teacher_activity(teacher, x: torch.Tensor) -> list[np.ndarray]:
    """For every hidden layer, the fraction of the inputs on which each teacher unit is active."""
    a, out = x, []
    for W, b in teacher[:-1]:
        a = torch.relu(a @ W[0].T + b[0])
        out.append((a > 0).double().mean(0).numpy())
    return out


def linear_baseline_mse(X_fit, y_fit, X_test, y_test) -> float:
    """Test MSE of the least-squares affine predictor fitted on (X_fit, y_fit): what no hidden unit buys."""
    def design(X):
        return torch.cat([X, torch.ones(len(X), 1)], 1).double()
    coef = torch.linalg.lstsq(design(X_fit), y_fit.double()).solution
    return float((design(X_test) @ coef - y_test.double()).square().mean())


# ------------------------------------------------------------------------------- parameter analysis

def count_params(net: Net) -> int:
    """Learnable parameters (weights and biases) of one network."""
    return net.n_params()


def model_params(params, m: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Model m of the engine's stacked parameters, as float64 numpy (W (out, in), b (out,)) per layer."""
    return [(W[m].detach().double().numpy(), b[m].detach().double().numpy()) for W, b in params]


def to_teacher_units(layers, mean: float, std: float, standardised_inputs: bool = True):
    """The same function in the teacher's coordinates: raw inputs x and outputs y.

    A student maps z = (x - X_MEAN) / X_STD (or x itself) to (y - mean) / std; its first layer
    W z + b equals (W / X_STD) x + b - (W / X_STD) X_MEAN 1, and its output layer is multiplied by
    std and shifted by mean. These exact rewrites make its parameters comparable with the teacher's.
    """
    layers = list(layers)
    if standardised_inputs:
        W, b = layers[0]
        layers[0] = (W / X_STD, b - (W / X_STD).sum(1) * X_MEAN)
    W, b = layers[-1]
    layers[-1] = (W * std, b * std + mean)
    return layers


def canonical(layers):
    """Fix the positive-rescaling symmetry of a ReLU network without changing its function.

    Each hidden unit's incoming (w, b) is scaled to the norm sqrt(fan_in + 1) that an N(0, 1)
    vector of that length has on average, and the inverse factor is moved into the next layer's
    weights; the output layer absorbs the product of all factors.
    """
    out, carry = [], None
    for l, (W, b) in enumerate(layers):
        W = W * carry[None, :] if carry is not None else W
        if l < len(layers) - 1:
            norm = np.sqrt((W ** 2).sum(1) + b ** 2)
            scale = np.where(norm > 0, np.sqrt(W.shape[1] + 1) / np.where(norm > 0, norm, 1), 1.0)
            W, b, carry = W * scale[:, None], b * scale, 1 / scale
        out.append((W, b))
    return out


def distances_to_normal(x) -> tuple[float, float]:
    """Exact 1-Wasserstein and Kolmogorov-Smirnov distances of the empirical distribution of x to N(0, 1).

    W1 = int_0^1 |F_n^-1(u) - Phi^-1(u)| du; on the i-th quantile cell [a, b] = [(i-1)/n, i/n] the
    integral is closed-form because int Phi^-1(u) du = -phi(Phi^-1(u)). KS = sup |F_n - Phi|.
    """
    x = np.sort(np.asarray(x, dtype=float).ravel())
    n = len(x)
    edges = np.arange(n + 1) / n
    cdf = ndtr(x)
    a, b = edges[:-1], edges[1:]
    q = np.clip(cdf, a, b)                           # where x crosses Phi^-1 inside its cell

    def phi(u):
        return np.exp(-ndtri(u) ** 2 / 2) / np.sqrt(2 * np.pi)   # 0 at u = 0 and u = 1

    phi_edges = phi(edges)
    below = x * (q - a) - (phi_edges[:-1] - phi(q))  # int_a^q (x - Phi^-1)
    above = (phi(q) - phi_edges[1:]) - x * (b - q)   # int_q^b (Phi^-1 - x)
    ks = max(np.max(b - cdf), np.max(cdf - a))
    return float(np.sum(below + above)), float(ks)


def describe(sample, reference=None) -> dict:
    """Moments of a parameter sample and its distances to a reference sample and to N(0, 1)."""
    sample = np.asarray(sample, dtype=float).ravel()
    row = {"n": sample.size, "mean": sample.mean(), "std": sample.std(),
           "kurtosis": stats.kurtosis(sample) if sample.size > 1 else np.nan,
           "w1_teacher": np.nan, "ks_teacher": np.nan}
    row["w1_normal"], row["ks_normal"] = distances_to_normal(sample)
    if reference is not None:
        reference = np.asarray(reference, dtype=float).ravel()
        row["w1_teacher"] = stats.wasserstein_distance(sample, reference)
        row["ks_teacher"] = stats.ks_2samp(sample, reference).statistic
    return {k: float(v) if k != "n" else int(v) for k, v in row.items()}


def distribution_rows(layers, teacher_layers) -> list[dict]:
    """Per layer and pooled, weights and biases described against the teacher's.

    A layer is compared with the teacher layer of identical shape, if there is one (for S_e every
    layer; for S_u its 10 -> 1 output layer); the pooled rows compare with all teacher parameters.
    """
    shapes = {W.shape: l for l, (W, _) in enumerate(teacher_layers)}
    rows = []
    for l, (W, b) in enumerate(layers):
        t = shapes.get(W.shape)
        for kind, values, ref in (("weight", W, None if t is None else teacher_layers[t][0]),
                                  ("bias", b, None if t is None else teacher_layers[t][1])):
            rows.append({"layer": f"L{l + 1}", "kind": kind, **describe(values, ref)})

    def pooled(ls, which):
        return np.concatenate([np.ravel(p[i]) for p in ls for i in which])
    for kind, which in (("weight", (0,)), ("bias", (1,)), ("all", (0, 1))):
        rows.append({"layer": "all", "kind": kind,
                     **describe(pooled(layers, which), pooled(teacher_layers, which))})
    return rows


def match_units(student_W, teacher_W) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of teacher units to distinct student units by incoming-weight cosine.

    Returns, per teacher unit, the matched student unit (-1 if the student has fewer units) and the
    cosine similarity of their normalised incoming weight vectors (NaN if unmatched). The cosine is
    blind to positive rescaling, and the assignment to the permutation of hidden units.
    """
    def unit(V):
        V = np.asarray(V, dtype=float)
        return V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-300)
    cos = unit(teacher_W) @ unit(student_W).T
    rows, cols = linear_sum_assignment(cos, maximize=True)
    match, best = np.full(len(cos), -1), np.full(len(cos), np.nan)
    match[rows], best[rows] = cols, cos[rows, cols]
    return match, best


# ------------------------------------------------------------------------------- loss curves

def last_fifth_change(values, steps, total: int) -> float:
    """Relative change (A - B) / B of the mean loss B over the last fifth of training against its
    mean A over the fifth before; the quasi-stationarity criterion is |change| < tol."""
    values, steps = np.asarray(values, dtype=float), np.asarray(steps)
    earlier = values[(steps >= 0.6 * total) & (steps < 0.8 * total)]
    last = values[steps >= 0.8 * total]
    if earlier.size == 0 or last.size == 0:
        raise ValueError(f"need losses in both of the last two fifths of {total} steps")
    return float((earlier.mean() - last.mean()) / last.mean())


def schedule(config: Config, steps: int) -> np.ndarray:
    """The final runs' learning-rate factor at every step (constant, geometric decay, hold)."""
    return step_decay(steps, config.anneal_start, config.anneal_end, config.anneal_factor)


def constant_steps(config: Config, steps: int) -> int:
    """Number of steps of a final run at the full, constant learning rate."""
    return int(np.count_nonzero(schedule(config, steps) == 1))


def last_fifth_mean(train_loss) -> np.ndarray:
    """Mean training loss over the last fifth of the steps, per model (inf where a run diverged)."""
    train_loss = np.asarray(train_loss, dtype=float)
    tail = train_loss[..., int(0.8 * train_loss.shape[-1]):].mean(-1)
    return np.where(np.isfinite(tail), tail, np.inf)


def block_means(train_loss, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Per-step losses (..., steps) averaged over consecutive blocks: (means, block-centre steps)."""
    steps = train_loss.shape[-1]
    size = max(1, steps // points)
    n = steps // size
    means = train_loss[..., :n * size].reshape(*train_loss.shape[:-1], n, size).mean(-1)
    return means.astype(np.float32), (np.arange(n) * size + (size - 1) / 2).astype(np.float32)


# ------------------------------------------------------------------------------- the experiment

def sweep(name, net, sample, config, steps, seeds=None) -> tuple[float, pd.DataFrame, dict, float, object]:
    """Every (lr, seed) pair for ``steps`` fresh batches in one engine call; the winning lr."""
    seeds = config.seeds if seeds is None else seeds
    grid = [(lr, s) for lr in config.lrs for s in seeds]
    result = train(net, init_params(net, [s for _, s in grid]),
                   fresh_batches(sample, config.batch_size, [STREAM_OFFSET + s for _, s in grid]),
                   steps=steps, lr=[lr for lr, _ in grid], optimizer=config.optimizer,
                   progress=f"{name} lr sweep")
    tail = last_fifth_mean(result.train_loss).reshape(len(config.lrs), len(seeds))
    if not np.isfinite(tail.mean(1)).any():
        raise RuntimeError(f"{name}: at every learning rate of the sweep some run diverged")
    best = int(np.argmin(tail.mean(1)))
    table = pd.DataFrame({"student": name, "lr": [lr for lr, _ in grid], "seed": [s for _, s in grid],
                          "steps": steps, "tail_train_loss_std": tail.ravel(),
                          "diverged": result.diverged_at >= 0})
    curves, curve_steps = block_means(result.train_loss.reshape(len(config.lrs), len(seeds), -1))
    arrays = {f"{name}_sweep_train": curves, f"{name}_sweep_steps": curve_steps}
    return config.lrs[best], table, arrays, result.seconds, result


def input_ablation(teacher, mean, std, config, X_test, Y_test, standardised: pd.DataFrame) -> dict:
    """The S_e sweep repeated on raw inputs for the first seed: what standardising the inputs buys."""
    raw = online_sampler(teacher, mean, std, standardise_inputs=False)
    _, table, arrays, seconds, result = sweep("S_e_raw", TEACHER, raw, config, config.sweep_steps[1],
                                              seeds=config.seeds[:1])
    table["test_loss_std"] = evaluate(TEACHER, result.params, X_test, Y_test)
    same = standardised[standardised.seed == config.seeds[0]]
    table = pd.concat([same.assign(inputs="standardised"), table.assign(student="S_e", inputs="raw")],
                      ignore_index=True)
    return arrays | {"input_ablation": table, "input_ablation_seconds": seconds}


def compare(name: str, seed: int, stages: dict, teacher_layers) -> list[dict]:
    """Distance rows of one student model at every stage, raw and in canonical form."""
    teacher_canonical = canonical(teacher_layers)
    return [{"student": name, "seed": seed, "stage": stage, "form": form, **row}
            for stage, layers in stages.items()
            for form, ls, reference in (("raw", layers, teacher_layers),
                                        ("canonical", canonical(layers), teacher_canonical))
            for row in distribution_rows(ls, reference)]


def study(name, net, data: dict, config: Config, sweep_steps: int, steps: int) -> dict:
    """Sweep, final runs and parameter analysis of one student; its share of the result."""
    lr, table, arrays, sweep_seconds, swept = sweep(name, net, data["sample"], config, sweep_steps)
    table["test_loss_std"] = evaluate(net, swept.params, data["Z_test"], data["Y_test"])
    init = init_params(net, config.seeds)
    final = train(net, init, fresh_batches(data["sample"], config.batch_size,
                                           [STREAM_OFFSET + s for s in config.seeds]),
                  steps=steps, lr=lr, lr_scale=schedule(config, steps), optimizer=config.optimizer,
                  eval_every=max(1, steps // config.evals), eval_data=(data["Z_test"], data["Y_test"]),
                  progress=f"{name} lr={lr:.2g}")
    n_constant = constant_steps(config, steps)
    test_final = evaluate(net, final.params, data["Z_test"], data["Y_test"])
    out = arrays | {f"{name}_test": final.eval_loss.astype(np.float32), f"{name}_test_steps": final.eval_steps}
    out[f"{name}_train"], out[f"{name}_train_steps"] = block_means(final.train_loss)

    summary, distances, cos = [], [], {"init": [], "trained": []}
    mean, std, teacher_layers = data["mean"], data["std"], data["teacher_layers"]
    for m, seed in enumerate(config.seeds):
        stages = {stage: to_teacher_units(model_params(p, m), mean, std, config.standardise_inputs)
                  for stage, p in (("init", init), ("trained", final.params))}
        distances += compare(name, seed, stages, teacher_layers)
        for stage, layers in stages.items():
            cos[stage].append(match_units(layers[0][0], teacher_layers[0][0])[1])
        for l, (W, b) in enumerate(stages["trained"]):
            out.setdefault(f"{name}_weight_L{l + 1}", []).append(W.astype(np.float32))
            out.setdefault(f"{name}_bias_L{l + 1}", []).append(b.astype(np.float32))
        summary.append({
            "student": name, "params": count_params(net), "lr": lr, "seed": seed, "steps": steps,
            "final_test_loss": float(test_final[m]) * std ** 2,
            "final_test_loss_std": float(test_final[m]),
            "final_train_loss": float(last_fifth_mean(final.train_loss[m])) * std ** 2,
            "train_change": last_fifth_change(final.train_loss[m], np.arange(steps), steps),
            "constant_change": (last_fifth_change(final.train_loss[m, :n_constant], np.arange(n_constant),
                                                  n_constant) if n_constant >= 5 else float("nan")),
            "test_change": last_fifth_change(final.eval_loss[m], final.eval_steps, steps),
            "recovered": int(np.sum(cos["trained"][-1] > config.match_cos)),
            "recovered_init": int(np.sum(cos["init"][-1] > config.match_cos)),
            "diverged": bool(final.diverged_at[m] >= 0)})
    out = {k: np.stack(v) if isinstance(v, list) else v for k, v in out.items()}
    out[f"{name}_matched_cos"] = np.array(cos["trained"], dtype=np.float32)
    out[f"{name}_matched_cos_init"] = np.array(cos["init"], dtype=np.float32)
    return {"arrays": out, "summary": summary, "distances": distances, "sweep": table, "lr": lr,
            "seconds": {"sweep": sweep_seconds, "final": final.seconds}}


def prepare(config: Config) -> dict:
    """The teacher, the target scale, the test set and the online sampler every student learns from."""
    teacher = make_teacher(config.teacher_seed)
    g = torch.Generator().manual_seed(config.data_seed)
    X_cal, X_test = draw_inputs(g, config.test_size), draw_inputs(g, config.test_size)
    y_cal, y_test = label(teacher, X_cal), label(teacher, X_test)
    mean, std = float(y_cal.mean()), float(y_cal.std())
    return {"teacher": teacher, "mean": mean, "std": std, "teacher_layers": model_params(teacher, 0),
            "X_cal": X_cal, "y_cal": y_cal, "X_test": X_test, "y_test": y_test, "Y_test": (y_test - mean) / std,
            "Z_test": standardise(X_test) if config.standardise_inputs else X_test,   # what students see
            "sample": online_sampler(teacher, mean, std, config.standardise_inputs)}


def study_students(names: tuple[str, ...], config: Config) -> dict:
    """:func:`study` of the named students, and the input ablation after S_e, on one thread (so the
    result does not depend on ``config.workers``); top-level, so a worker process can run it."""
    with num_threads(1):
        data = prepare(config)
        index = list(STUDENTS)
        out = {name: study(name, STUDENTS[name], data, config, config.sweep_steps[index.index(name)],
                           config.steps[index.index(name)]) for name in names}
        if "S_e" in names and config.input_ablation and config.standardise_inputs:
            out["ablation"] = input_ablation(data["teacher"], data["mean"], data["std"], config,
                                             data["X_test"], data["Y_test"], out["S_e"]["sweep"])
    return out


def study_all(config: Config) -> tuple[dict, dict]:
    """Every student's study, in ``config.workers`` processes; (studies in STUDENTS order, ablation)."""
    jobs = [("S_o",), ("S_u", "S_e")] if config.workers == 2 else [tuple(STUDENTS)]
    if config.workers == 1:
        parts = [study_students(job, config) for job in jobs]
    else:
        with ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(study_students, jobs, [config] * len(jobs)))
    merged = {k: v for part in parts for k, v in part.items()}
    return {name: merged[name] for name in STUDENTS}, merged.get("ablation", {})


def run(config: Config) -> dict:
    check(config)
    data = prepare(config)
    teacher_layers, mean, std, y_test = data["teacher_layers"], data["mean"], data["std"], data["y_test"]
    out = {f"T_{kind}_L{l + 1}": p.astype(np.float32)
           for l, (W, b) in enumerate(teacher_layers) for kind, p in (("weight", W), ("bias", b))}
    out |= {f"teacher_activity_L{l + 1}": a.astype(np.float32)
            for l, a in enumerate(teacher_activity(data["teacher"], data["X_test"]))}
    studies, ablation = study_all(config)
    for s in studies.values():
        out |= s["arrays"]
    out |= ablation

    summary = pd.DataFrame([row for s in studies.values() for row in s["summary"]])
    summary["stationary"] = ((summary.train_change.abs() < config.stationary_tol)
                             & (summary.test_change.abs() < config.stationary_tol))
    distances = compare("T", config.teacher_seed, {"teacher": teacher_layers}, teacher_layers)
    distances += [row for s in studies.values() for row in s["distances"]]
    lrs = {name: s["lr"] for name, s in studies.items()}
    return out | {
        "summary": summary, "sweep": pd.concat([s["sweep"] for s in studies.values()], ignore_index=True),
        "distances": pd.DataFrame(distances),
        "lr": lrs, "lr_at_edge": {n: lr in (min(config.lrs), max(config.lrs)) for n, lr in lrs.items()},
        "train_seconds": {name: s["seconds"] for name, s in studies.items()},
        "params": {"T": count_params(TEACHER)} | {n: count_params(net) for n, net in STUDENTS.items()},
        "target_mean": mean, "target_std": std,
        "test_mean": float(y_test.mean()), "test_var": float(y_test.var(unbiased=False)),
        "linear_mse": linear_baseline_mse(data["X_cal"], data["y_cal"], data["X_test"], y_test),
        "mean_predictor_mse": float((y_test - mean).square().mean())}
