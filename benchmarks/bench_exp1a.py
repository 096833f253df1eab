"""exp1a's engine (``nnlab.basic_net.train``) against the seed notebook's per-sample Python loop.

``notebook_loop`` is a transcription of the notebook 1_basic_neural_network.ipynb (cells defining
forward_pass, back_propagate, compute_loss and the learning loop) with its globals made arguments.
The benchmark times 1000 epochs for h = 3 and h = 8 with both and checks that they give the same
test-error trajectory. ``--all-runs`` also trains every run of the experiment both ways (about a
quarter of an hour) and prints the largest relative difference of each test-error trajectory.

    python benchmarks/bench_exp1a.py [--epochs 1000] [--repeats 5] [--all-runs]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from nnlab import basic_net as bn


def notebook_loop(f, h, learning_rate, epochs, X_train, X_test, U, V):
    """The notebook's algorithm, line for line: returns (E_test, E_train, U, V)."""
    Y_train, Y_test = f(X_train), f(X_test)
    U, V = U.copy(), V.copy()
    X = np.ones(2)
    H = np.ones(h)

    def sigmoid(X):
        return 1 / (1 + np.exp(-X))

    def forward_pass(x):
        X[0] = x  # And X[1]=1
        H[:h - 1] = sigmoid(U @ X)  # And H[h-1]=1
        O = V @ H
        return O[0]

    def back_propagate(e):  # e=o-y is the error (while the loss is half of the square of e)
        grad_V = e * H
        grad_U = np.zeros(U.shape)
        for i in range(h - 1):
            grad_U[i, :] = e * V[0, i] * H[i] * (1 - H[i]) * X
        return (grad_V, grad_U)

    def compute_loss(x_values, y_values):
        loss = 0
        for j in range(len(x_values)):
            error = forward_pass(x_values[j]) - y_values[j]
            loss += error * error / 2
        loss /= len(x_values)  # divide the loss by the size of the dataset
        return loss

    E_test = [None for i in range(epochs + 1)]
    E_test[0] = compute_loss(X_test, Y_test)
    E_train = [None for i in range(epochs + 1)]
    E_train[0] = compute_loss(X_train, Y_train)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(epochs):
            grad_V = np.zeros(V.shape)
            grad_U = np.zeros(U.shape)
            for j in range(len(X_train)):
                o = forward_pass(X_train[j])
                e = o - Y_train[j]
                gradients = back_propagate(e)
                grad_V += gradients[0]
                grad_U += gradients[1]
            V -= learning_rate * grad_V / len(X_train)
            U -= learning_rate * grad_U / len(X_train)
            E_test[i + 1] = compute_loss(X_test, Y_test)
            E_train[i + 1] = compute_loss(X_train, Y_train)
    return np.array(E_test, float), np.array(E_train, float), U, V


def max_relative_difference(a, b) -> float:
    """Largest |a − b| / |a| over epochs where both are finite (0 when identical)."""
    both = np.isfinite(a) & np.isfinite(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.max(np.abs(a[both] - b[both]) / np.abs(a[both]), initial=0.0))


def engine(f, h, lr, epochs, x_train, x_test, U, V):
    return bn.train(U, V, x_train, f(x_train), x_test, f(x_test), lr, epochs).test_error[0]


def time_both(h: int, epochs: int, repeats: int):
    """(loop seconds, best engine seconds, max relative difference, bitwise equal) for f1, lr 0.1."""
    x_train, x_test = bn.data()
    U, V = bn.initial_weights(h)
    start = time.perf_counter()
    loop_test = notebook_loop(bn.f1, h, 0.1, epochs, x_train, x_test, U, V)[0]
    loop_seconds = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fast_test = engine(bn.f1, h, 0.1, epochs, x_train, x_test, U, V)
        best = min(best, time.perf_counter() - start)
    return loop_seconds, best, max_relative_difference(loop_test, fast_test), np.array_equal(loop_test, fast_test)


def all_runs() -> None:
    """Every run of the experiment, both ways: the largest relative difference of the test errors."""
    from nnlab.experiments import exp1a

    config = exp1a.PROFILES["full"]
    for spec in dict.fromkeys(config.runs):
        run = exp1a.parse(spec)
        x_train, y_train, x_test, y_test, U, V = exp1a.dataset(run, config)
        f = bn.TARGETS[run.f]
        loop_test = notebook_loop(f, run.h, run.lr, run.epochs, x_train, x_test, U, V)[0]
        fast_test = engine(f, run.h, run.lr, run.epochs, x_train, x_test, U, V)
        print(f"{run.label:18s} max relative difference {max_relative_difference(loop_test, fast_test):.3g}"
              f"  bitwise equal {np.array_equal(loop_test, fast_test, equal_nan=True)}"
              f"  lowest test error at epoch {np.nanargmin(loop_test)} (loop) / {np.nanargmin(fast_test)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--all-runs", action="store_true")
    args = parser.parse_args()
    if args.all_runs:
        all_runs()
    results = {}
    for h in (3, 8):
        loop_s, fast_s, diff, same = time_both(h, args.epochs, args.repeats)
        results[h] = (loop_s, fast_s)
        print(f"h={h}: per-sample loop {loop_s:.2f} s, vectorised {fast_s * 1e3:.1f} ms for {args.epochs} epochs "
              f"({loop_s / fast_s:.0f}x); test errors: max relative difference {diff:.3g}, bitwise equal {same}")
    loop_s, fast_s = results[3]
    print(f"exp1a: {fast_s * 1e3 * 1000 / args.epochs:.1f} ms per 1000 epochs (h=3); "
          f"{loop_s / fast_s:.0f}x faster than a per-sample loop")


if __name__ == "__main__":
    main()
