"""Challenge 2A at scale: students of eight sizes learn three frozen random ReLU teachers (seed 000 §A).

A teacher (100 -> 75 -> 50 -> 10 -> 1, every weight and bias N(0, 1), drawn from a ``teacher_seed``)
labels inputs drawn from U[0, 2]^100. Its outputs are large and off-centre, so a student learns the
standardised target (y - m) / s (m, s of that teacher, measured on a calibration sample) from
standardised inputs (x - 1) * sqrt(3); label noise, when asked for, is N(0, s^2 / snr) added to the
training labels only (test labels are clean). A student seed fixes the initialisation and the input
stream, and every teacher and every width sees the same stream for the same seed: comparisons are
paired. Losses are relative (MSE / s^2) or in the teacher's units (x s^2).

Students: S_u (one hidden layer of 10), S_o (200-200-200-100) and the teacher's three hidden layers
with every width multiplied by k (``scales``; k = 1 is S_e), from 0.09 to 10 times the teacher's
11,896 parameters. Every run follows one schedule: the rate held for ``anneal_start`` of the steps,
decayed geometrically by ``anneal_factor`` until ``anneal_end``, then held.

Stage 1 (the sweeps): every student and every learning rate of the quarter-decade grid ``lrs``, for
every teacher and the first seed, (a) for ``steps`` steps (equal steps) and (b) for the number of
steps whose FLOPs equal ``compute_reference``'s ``steps`` steps (equal compute). The rate of a
student and budget is the one with the lowest teacher-mean training loss over the last fifth of the
run: chosen at the horizon trained (fresh batches make that loss an unbiased estimate of the
population loss, so the test set stays untouched). Stage 2, at the chosen equal-steps rate: the
other seeds of S_u, S_e, S_o; every student with noisy labels; S_e and S_o re-run to steps/2,
steps/4, ... (the same run up to float rounding) to follow their first-layer overlap with the teacher.

Units of work run through :func:`nnlab.execute.map_units`, one torch thread each, their results
independent of where they run (large students train one teacher per unit, for balance).

Compute plan of the full profile (:func:`plan`). A step of one model costs flops_per_sample x 128
FLOP, about 6 x parameters x 128: 0.52 MFLOP for S_u, 7.1 for S_e, 87 for S_o. Stage 1 is 8 students
x 5 rates x 3 teachers at 4,000 steps (120 runs) plus 7 x 15 equal-compute runs of 28 GFLOP each
(what one S_e run costs; S_u takes 54,739 steps for it, S_o 327); stage 2 adds 18 seeds of S_u, S_e,
S_o, 24 noisy runs and the overlap re-runs (about one S_e and one S_o run per teacher): 278 runs,
about 19 TFLOP. Measured on this 2-core machine under load from other jobs, one thread spends about
3 ms per step on 15 S_u models (overhead-bound), 7.6 ms on 15 S_e models and 15 ms on 5 S_o models
(about 30 GFLOP/s): about 20 core-minutes under that load, so under 12 minutes on 2 workers when
the machine is otherwise idle. What was cut to fit: 4,000 steps for every run (the previous version
trained S_u, S_e, S_o for 30,000, 120,000 and 50,000 steps with one teacher), one seed per teacher
for the five in-between sizes, one noise level with one seed, a five-point rate grid.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scipy.special import ndtr, ndtri

from nnlab.config import ConfigError, param
from nnlab.execute import map_units
from nnlab.models import Net, evaluate, forward, init_params
from nnlab.specialisation import canonical, match_two_layers, match_units
from nnlab.train import num_threads, step_decay, train

CHAPTER = "chapters/teacher-student.qmd"
N_IN, X_MAX = 100, 2.0                   # inputs are uniform on [0, X_MAX]^N_IN
X_MEAN, X_STD = X_MAX / 2, X_MAX / 12 ** 0.5   # mean and sd of each input coordinate
TEACHER_HIDDEN = (75, 50, 10)
TEACHER = Net((N_IN, *TEACHER_HIDDEN, 1))
S_U, S_O = Net((N_IN, 10, 1)), Net((N_IN, 200, 200, 200, 100, 1))
CENTRAL = ("S_u", "S_e", "S_o")          # the seed's three students: every seed of the config
LRS = tuple(float(10.0 ** (e / 4)) for e in range(-12, -7))   # 1e-3 ... 1e-2 in quarter decades
STREAM_OFFSET, NOISE_OFFSET = 10_000, 20_000   # generators of seed s: inputs, label noise
CURVE_POINTS = 120                       # training-loss curves: means over log-spaced blocks of steps
STREAM_CHUNK = 50                        # batches drawn and labelled at once
HORIZONS = (0.2, 0.4, 0.6, 0.8, 1.0)      # constant-rate change as if the run had stopped here
LARGE = 20_000                           # students above this many parameters train one teacher per unit


@dataclass(frozen=True)
class Config:
    teacher_seeds: tuple[int, ...] = param((0, 1, 2), ge=0, each=True)
    seeds: tuple[int, ...] = param((0, 1, 2), ge=0, each=True)   # S_u, S_e, S_o; the others: the first
    scales: tuple[float, ...] = param((0.25, 0.5, 1.0, 1.5, 2.0, 3.0), gt=0, le=10, each=True)
    data_seed: int = param(1, ge=0)                  # calibration and test inputs
    test_size: int = param(10_000, ge=100)
    batch_size: int = param(128, ge=1)
    lrs: tuple[float, ...] = param(LRS, gt=0, each=True)
    steps: int = param(4_000, ge=10)                 # the equal-steps budget of every student
    compute_reference: str = param("S_e", choices=CENTRAL)   # equal compute: this student's FLOPs
    snrs: tuple[float, ...] = param((10.0,), gt=0, each=True)   # label noise: Var y / noise variance
    snapshots: int = param(8, ge=0)                  # S_e, S_o re-run to steps / 2, ..., steps / 2^n
    anneal_start: float = param(0.5, ge=0, le=1)     # constant lr until this fraction of steps,
    anneal_end: float = param(0.6, ge=0, le=1)       # then geometric decay until this fraction,
    anneal_factor: float = param(1e-3, gt=0, le=1)   # to lr * anneal_factor, held to the end
    stationary_tol: float = param(0.01, gt=0)        # "quasi-stationary": last-fifth change below this
    match_cos: float = param(0.9, gt=0, lt=1)        # a teacher unit is recovered above this overlap
    input_ablation: bool = True                      # also sweep S_e on raw inputs (first teacher, seed)


PROFILES = {"full": Config(),
            "smoke": Config(teacher_seeds=(0, 1), seeds=(0, 1), scales=(0.5, 1.0), test_size=500,
                            lrs=(1e-3, 1e-2), steps=20, snapshots=2)}


def check(config: Config) -> None:
    """Constraints between fields that the per-field bounds cannot express."""
    if 1.0 not in config.scales:
        raise ConfigError(f"teacher_student.scales = {config.scales!r}: must contain 1.0 (S_e, the teacher's shape)")
    if config.anneal_start > config.anneal_end:
        raise ConfigError(f"teacher_student.anneal_start = {config.anneal_start}: must not exceed "
                          f"anneal_end = {config.anneal_end}")
    for field in ("teacher_seeds", "seeds", "lrs", "scales", "snrs"):
        values = getattr(config, field)
        if not values:
            raise ConfigError(f"teacher_student.{field} is empty: give at least one value")
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(f"teacher_student.{field} = {values!r}: repeats {repeated}")


# ------------------------------------------------------------------------------- students, budgets

def scaled(k: float) -> Net:
    """The teacher's architecture with every hidden width multiplied by k (rounded, at least 1)."""
    return Net((N_IN, *(max(1, round(k * w)) for w in TEACHER_HIDDEN), 1))


def students(config: Config) -> dict[str, Net]:
    """Every student by name, in order of parameter count: S_u, the family k * teacher (k = 1 is
    S_e), S_o."""
    family = {("S_e" if k == 1 else f"k{k:g}"): scaled(k) for k in config.scales}
    nets = {"S_u": S_U, **family, "S_o": S_O}
    return dict(sorted(nets.items(), key=lambda item: item[1].n_params()))


def flops_per_step(net: Net, batch_size: int) -> int:
    """FLOPs of one training step of one model (forward and backward, multiply-adds x 2)."""
    return net.flops_per_sample() * batch_size


def horizon(config: Config, name: str, budget: str) -> int:
    """Steps of a run: ``steps`` at equal steps; at equal compute, as many steps as cost what
    ``compute_reference`` spends in ``steps`` steps (rounded, at least 10)."""
    if budget == "steps":
        return config.steps
    nets = students(config)
    ratio = nets[config.compute_reference].flops_per_sample() / nets[name].flops_per_sample()
    return max(10, round(config.steps * ratio))


def seeds_of(config: Config, name: str) -> tuple[int, ...]:
    """The seeds a student trains: all for S_u, S_e, S_o, the first for the other sizes."""
    return config.seeds if name in CENTRAL else config.seeds[:1]


def schedule(config: Config, steps: int) -> np.ndarray:
    """The learning-rate factor at every step (constant, geometric decay, hold)."""
    return step_decay(steps, config.anneal_start, config.anneal_end, config.anneal_factor)


def constant_steps(config: Config, steps: int) -> int:
    """Number of steps of a run at the full, constant learning rate."""
    return int(np.count_nonzero(schedule(config, steps) == 1))


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


def noise_sd(snr: float) -> float:
    """Label-noise sd in standardised units (target variance 1) for a signal-to-noise ratio
    Var y / Var noise = snr; 0 for snr = inf (clean labels)."""
    return 0.0 if snr == float("inf") else float(snr) ** -0.5


@dataclass(frozen=True)
class Run:
    """One model of a batched training program: its teacher, seed, learning rate and label SNR."""
    teacher: int
    seed: int
    lr: float
    snr: float = float("inf")


class TeacherStream:
    """Fresh batches for M students at once: model m sees the inputs of ``runs[m].seed`` (drawn from
    a generator seeded STREAM_OFFSET + seed, shared by every model with that seed), labelled by
    teacher ``runs[m].teacher`` and standardised with its mean and sd, plus N(0, noise_sd^2) noise
    from a generator seeded NOISE_OFFSET + seed. Each (teacher, seed) pair is labelled once per step,
    STREAM_CHUNK steps at a time."""

    def __init__(self, teachers: dict, runs: list[Run], batch_size: int, standardise_inputs: bool = True):
        self.runs, self.batch_size, self.standardise_inputs = runs, int(batch_size), standardise_inputs
        self.n_models = len(runs)
        self.seeds = sorted({r.seed for r in runs})
        self.pairs = sorted({(r.teacher, r.seed) for r in runs})
        self.pair_of = torch.tensor([self.pairs.index((r.teacher, r.seed)) for r in runs])
        self.seed_of = torch.tensor([self.seeds.index(r.seed) for r in runs])
        self.params = [(torch.cat([teachers[t]["params"][l][0] for t, _ in self.pairs]),
                        torch.cat([teachers[t]["params"][l][1] for t, _ in self.pairs]))
                       for l in range(len(TEACHER.layers))]
        self.pair_seed = torch.tensor([self.seeds.index(s) for _, s in self.pairs])
        self.mean = torch.tensor([teachers[t]["mean"] for t, _ in self.pairs])[:, None, None]
        self.std = torch.tensor([teachers[t]["std"] for t, _ in self.pairs])[:, None, None]
        self.noise = torch.tensor([noise_sd(r.snr) for r in runs])[:, None, None]
        self.noisy = bool(self.noise.any())

    def __iter__(self):
        inputs = [torch.Generator().manual_seed(STREAM_OFFSET + s) for s in self.seeds]
        noise = [torch.Generator().manual_seed(NOISE_OFFSET + s) for s in self.seeds]
        B, K = self.batch_size, STREAM_CHUNK
        while True:     # K steps' batches at a time: one labelling call instead of K
            x = torch.stack([draw_inputs(g, K * B) for g in inputs])             # (seeds, K B, N_IN)
            with torch.no_grad():
                y = (forward(TEACHER, self.params, x[self.pair_seed]) - self.mean) / self.std
            y = y[self.pair_of]
            if self.noisy:
                eps = torch.stack([torch.randn(K * B, 1, generator=g) for g in noise])
                y = y + self.noise * eps[self.seed_of]
            x = (standardise(x) if self.standardise_inputs else x)[self.seed_of]
            for k in range(K):
                yield x[:, k * B:(k + 1) * B], y[:, k * B:(k + 1) * B]


def prepare(config: Config, teachers=None) -> dict:
    """Per teacher its parameters, target mean and sd (calibration sample) and standardised test
    labels; the test inputs, raw and standardised (shared by all teachers)."""
    g = torch.Generator().manual_seed(config.data_seed)
    X_cal, X_test = draw_inputs(g, config.test_size), draw_inputs(g, config.test_size)
    out = {"X_cal": X_cal, "X_test": X_test, "Z_test": standardise(X_test), "teachers": {}}
    for t in (config.teacher_seeds if teachers is None else teachers):
        params = make_teacher(t)
        y_cal, y_test = label(params, X_cal), label(params, X_test)
        mean, std = float(y_cal.mean()), float(y_cal.std())
        out["teachers"][t] = {"params": params, "mean": mean, "std": std, "y_cal": y_cal, "y_test": y_test,
                              "Y_test": (y_test - mean) / std, "layers": model_params(params, 0)}
    return out


@torch.no_grad()
def teacher_activity(teacher, x: torch.Tensor) -> list[np.ndarray]:
    """For every hidden layer, the fraction of the inputs on which each teacher unit is active."""
    a, out = x, []
    for W, b in teacher[:-1]:
        a = torch.relu(a @ W[0].T + b[0])
        out.append((a > 0).double().mean(0).numpy())
    return out


def linear_baseline_mse(X_fit, y_fit, X_test, y_test) -> float:
    """Test MSE of the least-squares affine predictor fitted on (X_fit, y_fit): what no hidden unit buys.
    In numpy: torch's lstsq (MKL) rounds differently with the memory alignment of its inputs, so the
    same call gave up to ten different last bits in one process."""
    def design(X):
        X = np.asarray(X, dtype=np.float64)
        return np.hstack([X, np.ones((len(X), 1))])
    coef = np.linalg.lstsq(design(X_fit), np.asarray(y_fit, dtype=np.float64), rcond=None)[0]
    return float(np.square(design(X_test) @ coef - np.asarray(y_test, dtype=np.float64)).mean())


# ------------------------------------------------------------------------------- parameter analysis

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
    """Moments of a parameter sample, its distances to a reference sample (two-sample) and to
    N(0, 1) (one-sample)."""
    sample = np.asarray(sample, dtype=float).ravel()
    row = {"n": sample.size, "mean": sample.mean(), "std": sample.std(),
           "kurtosis": stats.kurtosis(sample) if sample.size > 1 else np.nan,
           "w1_teacher": np.nan, "ks_teacher": np.nan}
    row["w1_normal"], row["ks_normal"] = distances_to_normal(sample)
    if reference is not None:
        reference = np.asarray(reference, dtype=float).ravel()
        row["w1_teacher"] = stats.wasserstein_distance(sample, reference)
        row["ks_teacher"] = stats.ks_2samp(sample, reference, method="asymp" if min(sample.size, reference.size) > 100 else "exact").statistic
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


def compare(name: str, teacher: int, seed: int, stages: dict, teacher_layers) -> list[dict]:
    """Distance rows of one network at every stage, raw and in canonical form."""
    teacher_canonical = canonical(teacher_layers)
    return [{"student": name, "teacher_seed": teacher, "seed": seed, "stage": stage, "form": form, **row}
            for stage, layers in stages.items()
            for form, ls, reference in (("raw", layers, teacher_layers),
                                        ("canonical", canonical(layers), teacher_canonical))
            for row in distribution_rows(ls, reference)]


# ------------------------------------------------------------------------------- loss curves

def last_fifth_change(values) -> float:
    """Relative change (A - B) / B of the mean per-step loss B over the last fifth of the steps
    against its mean A over the fifth before; the quasi-stationarity criterion is |change| < tol."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    earlier, last = values[int(0.6 * n):int(0.8 * n)], values[int(0.8 * n):]
    if earlier.size == 0 or last.size == 0:
        raise ValueError(f"need losses in both of the last two fifths of {n} steps")
    return float((earlier.mean() - last.mean()) / last.mean())


def last_fifth_mean(train_loss) -> np.ndarray:
    """Mean training loss over the last fifth of the steps, per model (inf where a run diverged)."""
    train_loss = np.asarray(train_loss, dtype=float)
    tail = train_loss[..., int(0.8 * train_loss.shape[-1]):].mean(-1)
    return np.where(np.isfinite(tail), tail, np.inf)


def log_block_means(train_loss, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Per-step losses (M, steps) averaged over blocks whose lengths grow geometrically, for a log
    step axis from step 1 (the loss of the batch before update 1). Returns (means, centres), each
    (M, points) and (points,), NaN-padded where there are fewer blocks than points."""
    M, steps = train_loss.shape
    edges = np.unique(np.round(np.geomspace(1, steps + 1, points + 1)).astype(int)) - 1   # 0 ... steps
    sums = np.concatenate([np.zeros((M, 1)), np.cumsum(train_loss, 1, dtype=float)], 1)
    means = np.full((M, points), np.nan)
    centres = np.full(points, np.nan)
    n = len(edges) - 1
    means[:, :n] = (sums[:, edges[1:]] - sums[:, edges[:-1]]) / np.diff(edges)
    centres[:n] = (edges[:-1] + 1 + edges[1:]) / 2            # mean step number (1-based) of the block
    return means.astype(np.float32), centres.astype(np.float32)


# ------------------------------------------------------------------------------- units of work

@dataclass(frozen=True)
class Unit:
    """A batched training program: ``kind`` is "sweep" (every lr of the grid), "seeds" (the other
    seeds at the chosen lr), "noise" (noisy labels at the chosen lr), "overlap" (prefix re-runs) or
    "ablation" (S_e's sweep on raw inputs)."""
    kind: str
    student: str
    budget: str
    teachers: tuple[int, ...]
    lr: float
    config: Config

    def runs(self) -> list[Run]:
        c = self.config
        if self.kind in ("sweep", "ablation"):
            return [Run(t, c.seeds[0], lr) for t in self.teachers for lr in c.lrs]
        if self.kind == "seeds":
            return [Run(t, s, self.lr) for t in self.teachers for s in c.seeds[1:]]
        if self.kind == "noise":
            return [Run(t, c.seeds[0], self.lr, snr) for t in self.teachers for snr in c.snrs]
        return [Run(t, c.seeds[0], self.lr) for t in self.teachers]

    def steps(self) -> int:
        return horizon(self.config, self.student, self.budget)

    def cost(self) -> float:
        """Estimated FLOPs: the training steps (plus a per-step overhead of a small model's step)."""
        net = students(self.config)[self.student]
        steps = self.steps()               # overlap: the prefixes steps / 2, / 4, ... sum to about one run
        per_step = len(self.runs()) * flops_per_step(net, self.config.batch_size) + 3e6
        return steps * per_step


def fit(net: Net, runs: list[Run], steps: int, config: Config, data: dict, standardise_inputs: bool = True):
    """Train ``runs`` together for ``steps`` steps of the schedule (prefix of a longer one if
    ``steps`` is a tuple (steps, total))."""
    steps, total = steps if isinstance(steps, tuple) else (steps, steps)
    stream = TeacherStream(data["teachers"], runs, config.batch_size, standardise_inputs)
    return train(net, init_params(net, [r.seed for r in runs]), stream, steps=steps,
                 lr=[r.lr for r in runs], lr_scale=schedule(config, total)[:steps])


def test_losses(net: Net, params, runs: list[Run], data: dict, standardise_inputs: bool = True) -> np.ndarray:
    """Relative test MSE of every model against its own teacher's clean labels."""
    out = np.empty(len(runs))
    X = data["Z_test"] if standardise_inputs else data["X_test"]
    for t in sorted({r.teacher for r in runs}):
        idx = [m for m, r in enumerate(runs) if r.teacher == t]
        sub = [(W[idx], b[idx]) for W, b in params]
        out[idx] = evaluate(net, sub, X, data["teachers"][t]["Y_test"])
    return out


def run_rows(unit: Unit, runs: list[Run], result, test: np.ndarray, data: dict) -> pd.DataFrame:
    """One row per run: what ``nnlab show`` prints."""
    net, config, steps = students(unit.config)[unit.student], unit.config, unit.steps()
    n_constant = constant_steps(config, steps)
    loss = result.train_loss
    rows = []
    for m, r in enumerate(runs):
        s2 = data["teachers"][r.teacher]["std"] ** 2
        rows.append({
            "teacher_seed": r.teacher, "student": unit.student, "params": net.n_params(),
            "widths": "-".join(map(str, net.widths[1:-1])), "seed": r.seed, "budget": unit.budget,
            "steps": steps, "flops": float(steps * flops_per_step(net, config.batch_size)), "lr": r.lr,
            "noise": 1 / r.snr, "kind": unit.kind, "final_test_loss": float(test[m]) * s2,
            "final_test_loss_std": float(test[m]), "final_train_loss_std": float(last_fifth_mean(loss[m])),
            **{f"constant_change_{round(100 * f)}": last_fifth_change(loss[m, :int(f * n_constant)])
               if f * n_constant >= 5 else float("nan") for f in HORIZONS},
            "train_change": last_fifth_change(loss[m]), "diverged_at": int(result.diverged_at[m])})
    return pd.DataFrame(rows)


def overlap_series(unit: Unit, data: dict) -> dict:
    """Prefix re-runs of S_e or S_o to steps / 2^k: per teacher, the first-layer overlaps (Hungarian-
    matched cosines) at every snapshot, the initialisation included; the final step comes from the
    sweep run of the same teacher and seed (the caller adds it)."""
    net, config, runs = students(unit.config)[unit.student], unit.config, unit.runs()
    total = config.steps
    marks = sorted({max(1, total >> k) for k in range(1, config.snapshots + 1)})
    init = init_params(net, [r.seed for r in runs])
    overlaps = [[match_units(model_params(init, m)[0][0], data["teachers"][r.teacher]["layers"][0][0])[1]
                 for m, r in enumerate(runs)]]
    for steps in marks:
        result = fit(net, runs, (steps, total), config, data)
        overlaps.append([match_units(model_params(result.params, m)[0][0],
                                     data["teachers"][r.teacher]["layers"][0][0])[1] for m, r in enumerate(runs)])
    return {"steps": np.array([0, *marks]), "overlap": np.array(overlaps).transpose(1, 0, 2)}   # (runs, marks, units)


def work(unit: Unit) -> dict:
    """Compute one unit: top-level, seeds its own generators, one torch thread."""
    start = time.perf_counter()
    with num_threads(1):
        out = _work(unit)
    return out | {"seconds": time.perf_counter() - start}


def _work(unit: Unit) -> dict:
        data = prepare(unit.config, unit.teachers)
        net, runs = students(unit.config)[unit.student], unit.runs()
        if unit.kind == "overlap":
            return {"unit": unit, **overlap_series(unit, data)}
        standardised = unit.kind != "ablation"
        result = fit(net, runs, unit.steps(), unit.config, data, standardised)
        test = test_losses(net, result.params, runs, data, standardised)
        curves, centres = log_block_means(result.train_loss)
        out = {"unit": unit, "rows": run_rows(unit, runs, result, test, data), "curves": curves,
               "centres": centres}
        if unit.student in CENTRAL and unit.budget == "steps" and unit.kind in ("sweep", "seeds"):
            # trained parameters in the teacher's units, and the raw per-step loss of the first seed
            out["params"] = [to_teacher_units(model_params(result.params, m), data["teachers"][r.teacher]["mean"],
                                              data["teachers"][r.teacher]["std"]) for m, r in enumerate(runs)]
            out["raw_loss"] = result.train_loss
        return out


def sweep_units(config: Config) -> list[Unit]:
    """Stage 1: every student's lr grid at both budgets (S_e's two are the same run), and the ablation."""
    units = []
    for name, net in students(config).items():
        groups = [(t,) for t in config.teacher_seeds] if net.n_params() > LARGE else [config.teacher_seeds]
        for budget in ("steps", "compute") if name != config.compute_reference else ("steps",):
            units += [Unit("sweep", name, budget, g, 0.0, config) for g in groups]
    if config.input_ablation:
        units.append(Unit("ablation", "S_e", "steps", config.teacher_seeds[:1], 0.0, config))
    return units


def chosen_lrs(rows: pd.DataFrame) -> dict:
    """Per (student, budget): the grid rate with the lowest teacher-mean last-fifth training loss."""
    sweep = rows[rows.kind == "sweep"]
    tail = sweep.groupby(["student", "budget", "lr"]).final_train_loss_std.mean()
    return {key: float(group.idxmin()[2]) for key, group in tail.groupby(level=[0, 1]) if np.isfinite(group.min())}


def follow_up_units(config: Config, lrs: dict) -> list[Unit]:
    """Stage 2, at each student's chosen equal-steps rate: other seeds, noisy labels, overlaps."""
    units = []
    for name, net in students(config).items():
        lr = lrs.get((name, "steps"))
        if lr is None:
            continue       # every rate of the grid diverged: nothing to follow up
        groups = [(t,) for t in config.teacher_seeds] if net.n_params() > LARGE else [config.teacher_seeds]
        kinds = (["seeds"] if name in CENTRAL and len(config.seeds) > 1 else []) + ["noise"]
        kinds += ["overlap"] if name in ("S_e", "S_o") and config.snapshots else []
        units += [Unit(kind, name, "steps", g, lr, config) for kind in kinds for g in groups]
    return units


def plan(config: Config) -> pd.DataFrame:
    """The units of both stages (follow-ups at a placeholder rate) with their steps, models and
    estimated FLOPs: what the compute budget is planned on."""
    units = sweep_units(config) + follow_up_units(config, {(n, "steps"): 1e-3 for n in students(config)})
    return pd.DataFrame([{"kind": u.kind, "student": u.student, "budget": u.budget, "teachers": len(u.teachers),
                          "models": len(u.runs()), "steps": u.steps(), "flops": u.cost()} for u in units])


def execute(units: list[Unit]) -> list[dict]:
    """The units through the project's executor, the most expensive first (results in unit order)."""
    order = sorted(range(len(units)), key=lambda i: -units[i].cost())
    done = map_units(work, [units[i] for i in order], experiment="teacher_student")
    out = [None] * len(units)
    for i, result in zip(order, done):
        out[i] = result
    return out


# ------------------------------------------------------------------------------- the experiment

def collect(results: list[dict]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """All runs' rows (with a ``run`` index) and their curves, in unit order."""
    trained = [r for r in results if "rows" in r]
    rows = pd.concat([r["rows"] for r in trained], ignore_index=True)
    rows.insert(0, "run", np.arange(len(rows)))
    curves = np.concatenate([r["curves"] for r in trained])
    centres = np.concatenate([np.broadcast_to(r["centres"], r["curves"].shape) for r in trained])
    return rows, curves, centres


def specialisation(config: Config, data: dict, params: dict, overlap_results: list[dict]) -> dict:
    """First- and second-layer overlaps of the central students (trained and at initialisation) and
    the overlap series of S_e and S_o."""
    out = {}
    nets = students(config)
    for name in CENTRAL:
        trained, init, second, second_init = [], [], [], []
        for t in config.teacher_seeds:
            teacher = data["teachers"][t]["layers"]
            start = init_params(nets[name], config.seeds)
            for m, s in enumerate(config.seeds):
                layers = params[name, t, s]
                start_layers = to_teacher_units(model_params(start, m), data["teachers"][t]["mean"],
                                                data["teachers"][t]["std"])
                trained.append(match_units(layers[0][0], teacher[0][0])[1])
                init.append(match_units(start_layers[0][0], teacher[0][0])[1])
                if name != "S_u":
                    second.append(match_two_layers(layers, teacher)[1])
                    second_init.append(match_two_layers(start_layers, teacher)[1])
        shape = (len(config.teacher_seeds), len(config.seeds), -1)
        out[f"{name}_overlap_L1"] = np.array(trained, dtype=np.float32).reshape(shape)
        out[f"{name}_overlap_L1_init"] = np.array(init, dtype=np.float32).reshape(shape)
        if second:
            out[f"{name}_overlap_L2"] = np.array(second, dtype=np.float32).reshape(shape)
            out[f"{name}_overlap_L2_init"] = np.array(second_init, dtype=np.float32).reshape(shape)
    for name in ("S_e", "S_o"):
        parts = sorted((r for r in overlap_results if r["unit"].student == name), key=lambda r: r["unit"].teachers)
        if not parts:
            continue
        series = np.concatenate([r["overlap"] for r in parts])                 # (teachers, marks, units)
        final = np.stack([out[f"{name}_overlap_L1"][i, 0] for i in range(len(config.teacher_seeds))])
        out[f"{name}_overlap_series"] = np.concatenate([series, final[:, None]], 1).astype(np.float32)
        out["overlap_steps"] = np.append(parts[0]["steps"], config.steps)
    return out


def run(config: Config) -> dict:
    check(config)
    data = prepare(config)
    stage1 = execute(sweep_units(config))
    lrs = chosen_lrs(pd.concat([r["rows"] for r in stage1 if "rows" in r]))
    stage2 = execute(follow_up_units(config, lrs))
    results = stage1 + stage2
    rows, curves, centres = collect(results)
    key = list(zip(rows.student, rows.budget))
    rows["chosen"] = [lrs.get(k) == lr and kind != "ablation" for k, lr, kind in zip(key, rows.lr, rows.kind)]
    rows["stationary"] = rows.train_change.abs() < config.stationary_tol

    # trained parameters (teacher's units) of the central students at the chosen rate
    params = {}
    for r in results:
        if "params" in r:
            for layers, run_ in zip(r["params"], r["unit"].runs()):
                if run_.lr == lrs.get((r["unit"].student, "steps")):
                    params[r["unit"].student, run_.teacher, run_.seed] = layers
    out = specialisation(config, data, params, [r for r in results if r["unit"].kind == "overlap"])

    first_t, first_s = config.teacher_seeds[0], config.seeds[0]
    for r in results:     # the raw per-step loss of the first teacher and seed at the chosen rate
        u = r["unit"]
        if "raw_loss" in r and u.kind == "sweep" and first_t in u.teachers:
            m = u.runs().index(Run(first_t, first_s, lrs[u.student, "steps"]))
            out[f"{u.student}_raw_loss"] = r["raw_loss"][m].astype(np.float32)

    # parameter distributions: the first teacher's students (every seed), against that teacher; the
    # other teachers against it give the two-sample floor of the distances
    distances, nets = [], students(config)
    teachers = data["teachers"]
    reference = teachers[first_t]["layers"]
    for t in config.teacher_seeds:
        distances += compare("T", t, -1, {"teacher": teachers[t]["layers"]}, reference)
    for name in CENTRAL:
        start = init_params(nets[name], config.seeds)
        for m, s in enumerate(config.seeds):
            init = to_teacher_units(model_params(start, m), teachers[first_t]["mean"], teachers[first_t]["std"])
            distances += compare(name, first_t, s, {"init": init, "trained": params[name, first_t, s]}, reference)
            for l, (W, b) in enumerate(params[name, first_t, s]):
                out.setdefault(f"{name}_weight_L{l + 1}", []).append(W.astype(np.float32))
                out.setdefault(f"{name}_bias_L{l + 1}", []).append(b.astype(np.float32))
    out = {k: np.stack(v) if isinstance(v, list) else v for k, v in out.items()}
    for l, (W, b) in enumerate(teachers[first_t]["layers"]):
        out[f"T_weight_L{l + 1}"], out[f"T_bias_L{l + 1}"] = W.astype(np.float32), b.astype(np.float32)
    for l in range(len(TEACHER_HIDDEN)):
        out[f"teacher_activity_L{l + 1}"] = np.stack(
            [teacher_activity(teachers[t]["params"], data["X_test"])[l] for t in config.teacher_seeds]).astype(np.float32)

    per_teacher = pd.DataFrame([{
        "teacher_seed": t, "target_mean": teachers[t]["mean"], "target_std": teachers[t]["std"],
        "linear_mse_std": linear_baseline_mse(data["X_cal"], teachers[t]["y_cal"], data["X_test"],
                                              teachers[t]["y_test"]) / teachers[t]["std"] ** 2,
        "mean_predictor_mse_std": float((teachers[t]["y_test"] - teachers[t]["mean"]).square().mean())
        / teachers[t]["std"] ** 2} for t in config.teacher_seeds])
    students_table = pd.DataFrame([{"student": n, "widths": "-".join(map(str, net.widths[1:-1])),
                                    "params": net.n_params(), "ratio": net.n_params() / TEACHER.n_params(),
                                    "flops_per_step": flops_per_step(net, config.batch_size),
                                    "steps_equal_compute": horizon(config, n, "compute")}
                                   for n, net in nets.items()])
    units = pd.DataFrame([{"kind": r["unit"].kind, "student": r["unit"].student, "budget": r["unit"].budget,
                           "teachers": len(r["unit"].teachers), "models": len(r["unit"].runs()),
                           "steps": r["unit"].steps(), "flops": r["unit"].cost(), "seconds": r.get("seconds", np.nan)}
                          for r in results])
    summary = rows[["teacher_seed", "student", "params", "widths", "seed", "budget", "steps", "flops", "lr",
                    "noise", "kind", "chosen", "final_test_loss", "final_test_loss_std", "final_train_loss_std",
                    *[f"constant_change_{round(100 * f)}" for f in HORIZONS], "train_change", "stationary", "diverged_at", "run"]]
    return out | {"summary": summary, "curves": curves, "curve_steps": centres, "distances": pd.DataFrame(distances),
                  "teachers": per_teacher, "students": students_table, "units": units,
                  "lr": {f"{n}/{b}": lr for (n, b), lr in lrs.items()}}
