"""The two-layer classifier tuning study of seed 002, redone on scikit-learn's 8x8 digits.

Three studies, each over several seeds: the learning rate (others at their defaults), the L2
coefficient ``reg``, and a small grid over (batch size, lr, reg) judged on the validation split,
whose winner is retrained on fresh seeds and scored once on the test split. Two further runs test
the seed's explanation of the learning-rate table: the same rates trained 30 times longer, and with
a larger (He) initialisation. The longer budget is the seed's number of updates: ten MNIST epochs of
469 updates at batch 128 (``long_updates``), not ten digits epochs of nine.

The seed's tables come from a course template whose public version is Linear -> Sigmoid -> Linear
with 0.001 * randn weights: the learning-rate study is repeated with the sigmoid (study
``sigmoid_template``, ten epochs and the seed's number of updates), and the gradients of both
activations at the initial weights are measured (table ``initial_gradients``). Accuracies are on
whole sets, never on a single mini-batch.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from nnlab.config import ConfigError, param
from nnlab.progress import bar
from nnlab.twolayer_classifier import ACTIVATIONS, hidden, init_params, loss_and_grads, predict, train

CHAPTER = "chapters/digits-classifier.qmd"
SETS = ("train", "val", "test")
CURVE_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


@dataclass(frozen=True)
class Config:
    split_seed: int = param(0, ge=0)              # the stratified 60/20/20 split
    hidden: int = param(128, ge=1)
    activation: str = param("relu", choices=ACTIVATIONS)
    init_scale: float = param(1e-3, gt=0)         # sd of the initial weights; biases start at 0
    epochs: int = param(10, ge=1)                 # the seed's budget
    batch_size: int = param(128, ge=1)            # defaults of the lr and reg studies
    lr: float = param(0.1, gt=0)
    reg: float = param(1e-3, ge=0)
    seeds: tuple[int, ...] = param((0, 1, 2, 3, 4), ge=0, each=True)
    lrs: tuple[float, ...] = param((1.0, 0.1, 0.05, 0.01), gt=0, each=True)
    regs: tuple[float, ...] = param((1.0, 0.1, 0.01, 1e-3, 1e-4), ge=0, each=True)
    search_batch_sizes: tuple[int, ...] = param((16, 32, 64, 128), ge=1, each=True)
    search_lrs: tuple[float, ...] = param((0.1, 0.3, 1.0, 3.0), gt=0, each=True)
    search_regs: tuple[float, ...] = param((0.0, 1e-4, 1e-3, 1e-2), ge=0, each=True)
    search_seeds: tuple[int, ...] = param((100, 101, 102), ge=0, each=True)
    long_updates: int = param(4690, ge=1)         # the lr study again, with the seed's updates
    template_activation: str = param("sigmoid", choices=ACTIVATIONS)   # the course template's


PROFILES = {
    "full": Config(),
    "smoke": Config(hidden=16, epochs=3, seeds=(0, 1), search_batch_sizes=(16, 128),
                    search_lrs=(0.1, 1.0, 3.0), search_regs=(0.0, 1e-3), search_seeds=(100,),
                    long_updates=54),
}


def check(config: Config) -> None:
    """Errors the field bounds cannot express: empty lists and repeated seeds."""
    for name in ("seeds", "lrs", "regs", "search_batch_sizes", "search_lrs", "search_regs",
                 "search_seeds"):
        values = getattr(config, name)
        if len(values) == 0:
            raise ConfigError(f"digits.{name} is empty: give at least one value")
        if name.endswith("seeds") and len(set(values)) != len(values):
            raise ConfigError(f"digits.{name} = {values!r}: seeds must be distinct")


def split_indices(split_seed: int, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Indices of a 60/20/20 train/val/test split of ``labels``, stratified by class."""
    index = np.arange(len(labels))
    train, rest = train_test_split(index, test_size=0.4, stratify=labels, random_state=split_seed)
    val, test = train_test_split(rest, test_size=0.5, stratify=labels[rest],
                                 random_state=split_seed)
    return {"train": train, "val": val, "test": test}


def split_digits(split_seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 1,797 digits split by :func:`split_indices`, standardised with training statistics.

    Pixels that are constant on the training split (a few always-blank corners) are centred but
    not scaled, so they stay 0 on training images. Inputs are float32, which sets the training dtype.
    """
    X, y = load_digits(return_X_y=True)
    index = split_indices(split_seed, y)
    mean, sd = X[index["train"]].mean(0), X[index["train"]].std(0)
    sd[sd == 0] = 1.0
    return {name: (((X[i] - mean) / sd).astype(np.float32), y[i]) for name, i in index.items()}


def train_grid(data, settings: list[tuple[float, float]], seeds, *, batch_size: int, epochs: int,
               config: Config, init_scale: float | None = None, every_epoch: bool = True,
               activation: str | None = None) -> dict:
    """Train every (lr, reg) setting with every seed in one batched run.

    Returns per-model arrays of shape (settings, seeds): final accuracy on each set, the accuracy on
    the last mini-batch, the share of the most frequent predicted test class, whether it diverged,
    and the learning curves (settings, seeds, records) for CURVE_METRICS.
    """
    grid = list(itertools.product(settings, seeds))
    (X, y), (X_test, y_test) = data["train"], data["test"]
    activation = activation or config.activation
    params, history = train(
        X, y, seeds=[s for _, s in grid], lr=[lr for (lr, _), _ in grid],
        reg=[reg for (_, reg), _ in grid], batch_size=batch_size, epochs=epochs,
        n_hidden=config.hidden, init_scale=init_scale or config.init_scale,
        activation=activation, monitor={k: data[k] for k in ("train", "val")},
        every_epoch=every_epoch)
    with np.errstate(over="ignore", invalid="ignore"):     # diverged models have nan weights
        test_pred = predict(params, X_test, activation)
    test_acc = (test_pred == y_test).mean(-1)
    top_share = np.array([np.bincount(p, minlength=10).max() for p in test_pred]) / len(y_test)
    shape = (len(settings), len(seeds))
    out = {"train_acc": history["train_acc"][:, -1], "val_acc": history["val_acc"][:, -1],
           "test_acc": test_acc, "train_loss": history["train_loss"][:, -1],
           "last_batch_acc": history["last_batch_acc"], "top_class_share": top_share,
           "diverged": history["diverged"]}
    out = {k: v.reshape(shape) for k, v in out.items()}
    out["curves"] = {m: history[m].reshape(*shape, -1).astype(np.float32) for m in CURVE_METRICS}
    return out


def summary_rows(study: str, labels: list[str], settings, batch_size: int, result: dict) -> list:
    """One summary row per setting: mean and sd over seeds."""
    rows = []
    for i, (label, (lr, reg)) in enumerate(zip(labels, settings)):
        row = {"study": study, "value": label, "batch_size": batch_size, "lr": lr, "reg": reg,
               "seeds": result["train_acc"].shape[1]}
        for key in ("train_acc", "val_acc", "test_acc"):
            row[f"{key}_mean"] = float(result[key][i].mean())
            row[f"{key}_sd"] = float(result[key][i].std(ddof=1)) if row["seeds"] > 1 else np.nan
        for key in ("train_loss", "last_batch_acc", "top_class_share"):
            row[f"{key}_mean"] = float(result[key][i].mean())
        row["diverged"] = int(result["diverged"][i].sum())
        rows.append(row)
    return rows


def epochs_to(curve: np.ndarray, level: float) -> float:
    """First epoch at which a (seeds, epochs+1) accuracy curve, averaged over seeds, reaches level."""
    reached = np.flatnonzero(curve.mean(0) >= level)
    return float(reached[0]) if reached.size else np.nan


def initial_gradients(data, config: Config, activations=ACTIVATIONS) -> pd.DataFrame:
    """Gradient norms of the data loss on the whole training set at each seed's initial weights.

    ``W2_shared`` is the norm of the part of dW2 that is the same for every hidden unit (the mean
    over units of each output's column, repeated), the direction in which, when every hidden unit
    outputs the same value, W2 acts only as a second output bias.
    """
    X, y = data["train"]
    rows = []
    for act in activations:
        params = init_params([np.random.default_rng(s) for s in config.seeds], X.shape[1],
                             config.hidden, int(y.max()) + 1, config.init_scale, np.float64)
        m = len(config.seeds)
        _, g = loss_and_grads(params, np.broadcast_to(X, (m, *X.shape)).astype(np.float64),
                              np.broadcast_to(y, (m, len(y))), np.zeros(m), act)
        shared = np.broadcast_to(g["W2"].mean(1, keepdims=True), g["W2"].shape)
        norm = lambda a: np.linalg.norm(a.reshape(m, -1), axis=1)  # noqa: E731
        for i, seed in enumerate(config.seeds):
            rows.append({"activation": act, "seed": seed, "W1": norm(g["W1"])[i], "W2": norm(g["W2"])[i],
                         "W2_shared": norm(shared)[i], "b2": norm(g["b2"])[i],
                         "hidden_mean": float(np.mean(hidden(params, X, act)[i]))})
    return pd.DataFrame(rows)


def search(data, config: Config) -> tuple[pd.DataFrame, tuple[int, float, float]]:
    """Validation accuracy of every (batch size, lr, reg) on the search seeds; the best setting.

    Ties in mean validation accuracy go to the earlier grid entry (smaller batch, then smaller lr,
    then smaller reg, as the config lists them), so the choice is deterministic.
    """
    settings = list(itertools.product(config.search_lrs, config.search_regs))
    rows = []
    for batch_size in bar(config.search_batch_sizes, desc="digits search"):
        result = train_grid(data, settings, config.search_seeds, batch_size=batch_size,
                            epochs=config.epochs, config=config, every_epoch=False)
        for i, (lr, reg) in enumerate(settings):
            rows.append({"batch_size": batch_size, "lr": lr, "reg": reg,
                         "steps": config.epochs * -(-len(data["train"][1]) // batch_size),
                         "train_acc_mean": float(result["train_acc"][i].mean()),
                         "val_acc_mean": float(result["val_acc"][i].mean()),
                         "val_acc_sd": float(result["val_acc"][i].std(ddof=1))
                         if len(config.search_seeds) > 1 else np.nan,
                         "diverged": int(result["diverged"][i].sum())})
    table = pd.DataFrame(rows)
    best = table.loc[table["val_acc_mean"].idxmax()]
    return table, (int(best["batch_size"]), float(best["lr"]), float(best["reg"]))


def run(config: Config) -> dict:
    check(config)
    data = split_digits(config.split_seed)
    out, rows = {}, []

    def study(name, labels, settings, batch_size, epochs=config.epochs, init_scale=None, activation=None):
        result = train_grid(data, settings, config.seeds, batch_size=batch_size, epochs=epochs,
                            config=config, init_scale=init_scale, activation=activation)
        for metric, curve in result["curves"].items():
            out[f"{name}_{metric}"] = curve
        out[f"{name}_labels"] = np.array(labels)
        return summary_rows(name, labels, settings, batch_size, result)

    lr_settings = [(lr, config.reg) for lr in config.lrs]
    lr_labels = [f"{lr:g}" for lr in config.lrs]
    rows += study("lr", lr_labels, lr_settings, config.batch_size)
    rows += study("reg", [f"{r:g}" for r in config.regs],
                  [(config.lr, r) for r in config.regs], config.batch_size)
    out["search"], (batch_size, lr, reg) = search(data, config)
    rows += study("tuned", [f"batch {batch_size}, lr {lr:g}, reg {reg:g}"], [(lr, reg)], batch_size)
    template = config.template_activation
    rows += study("sigmoid_template", lr_labels, lr_settings, config.batch_size, activation=template)
    summary = pd.DataFrame(rows)
    summary["activation"] = np.where(summary["study"] == "sigmoid_template", template, config.activation)
    out["summary"] = summary

    # Beyond the seed: is the lr table about step size, step budget, or the tiny initialisation?
    # The long runs get the seed's number of updates (ten MNIST epochs), not its number of epochs.
    steps_per_epoch = -(-len(data["train"][1]) // config.batch_size)
    long_epochs = -(-config.long_updates // steps_per_epoch)
    he_scale = float(np.sqrt(2.0 / data["train"][0].shape[1]))
    studies = {"lr_long": (long_epochs, config.init_scale, config.activation),
               "lr_he": (config.epochs, he_scale, config.activation),
               "sigmoid_template_long": (long_epochs, config.init_scale, template)}
    budget = []
    for name, (epochs, scale, act) in studies.items():
        part = pd.DataFrame(study(name, lr_labels, lr_settings, config.batch_size, epochs=epochs,
                                  init_scale=scale, activation=act))
        part["epochs"], part["updates"] = epochs, epochs * steps_per_epoch
        part["init_scale"], part["activation"] = scale, act
        part["epochs_to_half"] = [epochs_to(out[f"{name}_train_acc"][i], 0.5) for i in range(len(lr_labels))]
        budget.append(part)
    out["lr_budget"] = pd.concat(budget, ignore_index=True)
    out["long_epochs"] = int(long_epochs)
    out["initial_gradients"] = initial_gradients(data, config)

    (_, y_train), (_, y_val), (_, y_test) = (data[k] for k in SETS)
    out.update({f"n_{k}": int(len(data[k][1])) for k in SETS})
    out["class_counts"] = np.stack([np.bincount(ys, minlength=10) for ys in (y_train, y_val, y_test)])
    out["steps_per_epoch"] = int(-(-len(y_train) // config.batch_size))
    out["last_batch_size"] = int(len(y_train) - (out["steps_per_epoch"] - 1) * config.batch_size)
    out["he_init_scale"] = he_scale
    return out
