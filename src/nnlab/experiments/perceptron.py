"""The perceptron rule of seed 002 on AND, OR and XOR (trajectories, final weights, the XOR cycle),
the rule with the seed's sign slip, the margin-1 separation LP, and 2-2-1 sigmoid networks for XOR:
one with hand-set weights and several trained by gradient descent from random initialisations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nnlab import backprop as bp
from nnlab import perceptron as pc
from nnlab.config import param
from nnlab.progress import bar

CHAPTER = "chapters/xor-perceptron.qmd"
# The final (w1, w2, b) that seed 002 reports for its runs of the rule from zero with alpha = 1.
SEED_REPORTED = {"AND": (0.4, 0.4, -0.6), "OR": (1.0, 1.0, -0.1)}
STEP_COLUMNS = ["epoch", "sample", "t", "a", "w1", "w2", "b"]


@dataclass(frozen=True)
class Config:
    alpha: float = param(1.0, gt=0)
    max_epochs: int = param(100, ge=1)
    gain: float = param(10.0, gt=0)                                   # hand-set network's weight scale
    seeds: tuple[int, ...] = param(tuple(range(20)), ge=0, each=True)  # trained networks
    epochs: int = param(5000, ge=1)
    lr: float = param(2.0, gt=0)
    grid: int = param(81, ge=5)                                       # output surface resolution


PROFILES = {"full": Config(), "smoke": Config(seeds=(0, 1, 2), epochs=500, grid=21)}


def rule_runs(config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rule on each function: a summary row (with the LP and the seed's values) and all steps."""
    rows, steps = [], []
    for name, t in pc.TARGETS.items():
        run = pc.perceptron_rule(pc.INPUTS, t, config.alpha, config.max_epochs)
        lp = pc.separation_lp(pc.INPUTS, t)
        reported = SEED_REPORTED.get(name, (np.nan,) * 3)
        separates = bool(np.array_equal(pc.predict(np.array(reported[:2]), reported[2], pc.INPUTS), t))
        rows.append({"function": name, "status": run.status, "epochs": run.epochs,
                     "w1": run.w[0], "w2": run.w[1], "b": run.b,
                     "cycle_start": run.cycle_start, "cycle_length": run.cycle_length,
                     "lp_status": int(lp.status), "lp_message": lp.message,
                     **dict(zip(["lp_w1", "lp_w2", "lp_b"], lp.x if lp.status == 0 else [np.nan] * 3)),
                     **dict(zip(["seed_w1", "seed_w2", "seed_b"], reported)),
                     "seed_separates": separates if name in SEED_REPORTED else False})
        steps.append(pd.DataFrame(run.steps, columns=STEP_COLUMNS)
                     .astype({"epoch": int, "sample": int, "t": int, "a": int}).assign(function=name))
    return pd.DataFrame(rows), pd.concat(steps, ignore_index=True)


def minus_sign_runs(config: Config) -> pd.DataFrame:
    """Seed 002's Q2 writes w <- w - alpha (t - a) x: the same rule with alpha negated."""
    rows = []
    for name, t in pc.TARGETS.items():
        for epochs in (config.max_epochs // 10 or 1, config.max_epochs):
            run = pc.perceptron_rule(pc.INPUTS, t, -config.alpha, epochs)
            rows.append({"function": name, "status": run.status, "epochs": run.epochs,
                         "w1": run.w[0], "w2": run.w[1], "b": run.b})
    return pd.DataFrame(rows)


def trained_networks(config: Config):
    """Train one sigmoid 2-2-1 network per seed; a table of outcomes and the cost curves."""
    rows, costs, params = [], [], []
    for seed in bar(config.seeds, desc="XOR networks"):
        p, c = pc.train_xor_network(seed, config.epochs, config.lr)
        out = bp.output(p, pc.INPUTS, "sigmoid")[:, 0]
        grads = bp.cost_gradients(p, pc.INPUTS, pc.TARGETS["XOR"][:, None].astype(float), "sigmoid")
        rows.append({"seed": seed, "final_cost": c[-1], "max_error": float(np.abs(out - pc.TARGETS["XOR"]).max()),
                     "grad_norm": float(np.sqrt(sum((d ** 2).sum() for pair in grads for d in pair))),
                     "solved": bool(np.array_equal(out >= 0.5, pc.TARGETS["XOR"].astype(bool)))})
        costs.append(c)
        params.append(p)
    return pd.DataFrame(rows), np.array(costs, dtype=np.float32), params


def network_arrays(prefix: str, params, grid: np.ndarray) -> dict:
    """Hidden representation of the four inputs, outputs, output layer and output surface of a 2-2-1 net."""
    (W2, b2), (W3, b3) = params
    gx, gy = np.meshgrid(grid, grid)
    surface = bp.output(params, np.column_stack([gx.ravel(), gy.ravel()]), "sigmoid").reshape(gx.shape)
    return {f"{prefix}_hidden": pc.hidden_representation(params),
            f"{prefix}_outputs": bp.output(params, pc.INPUTS, "sigmoid")[:, 0],
            f"{prefix}_W2": W2, f"{prefix}_b2": b2, f"{prefix}_W3": W3, f"{prefix}_b3": b3,
            f"{prefix}_surface": surface.astype(np.float32)}


def run(config: Config) -> dict:
    summary, steps = rule_runs(config)
    training, costs, params = trained_networks(config)
    best = int(training["final_cost"].idxmin())  # lowest final cost: a solved network when there is one
    grid = np.linspace(-0.25, 1.25, config.grid)
    return {"summary": summary, "steps": steps, "minus_sign": minus_sign_runs(config),
            "training": training, "costs": costs, "shown_seed": int(training["seed"][best]), "grid": grid,
            **network_arrays("hand", pc.hand_set_xor_network(config.gain), grid),
            **network_arrays("trained", params[best], grid)}
