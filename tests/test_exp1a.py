"""The basic network of seed 001 and experiment exp1a: gradients, data, the fast engine against the
notebook's per-sample loop, divergence, sharpness."""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnlab import basic_net as bn
from nnlab.config import ConfigError, validate
from nnlab.experiments import exp1a

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_exp1a.py"


def notebook_loop():
    spec = importlib.util.spec_from_file_location("bench_exp1a", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.notebook_loop


def random_net(h, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, scale, (h - 1, 2)), rng.normal(0, scale, (1, h)), rng.uniform(-5, 5, 30)


@pytest.mark.parametrize("h", [2, 5])
def test_gradients_match_central_differences(h):
    U, V, x = random_net(h)
    y = bn.f2(x)
    dU, dV = bn.gradients(U, V, x, y)
    params = bn.flatten(U, V)
    numeric = np.empty_like(params)
    for i in range(params.size):
        step = np.zeros_like(params)
        step[i] = 1e-6
        plus, minus = bn.unflatten(params + step, h), bn.unflatten(params - step, h)
        numeric[i] = (bn.loss(*plus, x, y) - bn.loss(*minus, x, y)) / 2e-6
    np.testing.assert_allclose(bn.flatten(dU, dV), numeric, rtol=1e-6, atol=1e-8)


def test_forward_has_a_bias_unit_and_matches_the_formula():
    U, V, x = random_net(4)
    H, o = bn.forward(U, V, x)
    assert np.all(H[:, -1] == 1)
    np.testing.assert_allclose(o, [V[0] @ np.append(1 / (1 + np.exp(-U @ [xi, 1])), 1) for xi in x])


def test_engine_gradient_and_losses_equal_the_plain_formulas():
    U, V = bn.initial_weights(4)
    x_train, x_test = bn.data()
    traj = bn.train(U, V, x_train, bn.f2(x_train), x_test, bn.f2(x_test), 0.1, 3)
    np.testing.assert_allclose(traj.gradient[0, 0], bn.flatten(*bn.gradients(U, V, x_train, bn.f2(x_train))),
                               rtol=1e-12)
    assert traj.train_error[0, 0] == pytest.approx(bn.loss(U, V, x_train, bn.f2(x_train)), rel=1e-13)
    assert traj.test_error[0, 0] == pytest.approx(bn.loss(U, V, x_test, bn.f2(x_test)), rel=1e-13)
    step = bn.flatten(U, V) - 0.1 * traj.gradient[0, 0]
    np.testing.assert_allclose(traj.params[0, 1], step, rtol=1e-14)


def test_standard_data_and_weights_are_the_notebooks():
    rng = np.random.default_rng(222337497072607291153223098371913928704)
    x_train = (rng.random(1000) - 0.5) * 10
    x_test = (rng.random(100) - 0.5) * 10
    got_train, got_test = bn.data()
    assert np.array_equal(got_train, x_train) and np.array_equal(got_test, x_test)
    for h in (2, 8):
        rng_w = np.random.default_rng(36255793825986746149655859236796938907)
        U, V = rng_w.normal(0, 0.01, size=(h - 1, 2)), rng_w.normal(0, 0.01, size=(1, h))
        got_U, got_V = bn.initial_weights(h)
        assert np.array_equal(got_U, U) and np.array_equal(got_V, V)
    assert np.all((-5 <= x_train) & (x_train < 5))
    assert not np.array_equal(bn.data(1)[0], x_train)


@pytest.mark.parametrize("f, h, lr", [("f1", 3, 1.0), ("f2", 8, 0.1)])
def test_engine_reproduces_the_notebook_loop(f, h, lr):
    x_train, x_test = bn.data()
    U, V = bn.initial_weights(h)
    target = bn.TARGETS[f]
    loop_test, loop_train, loop_U, loop_V = notebook_loop()(target, h, lr, 15, x_train, x_test, U, V)
    traj = bn.train(U, V, x_train, target(x_train), x_test, target(x_test), lr, 15)
    np.testing.assert_allclose(traj.test_error[0], loop_test, rtol=1e-12, atol=0)
    np.testing.assert_allclose(traj.train_error[0], loop_train, rtol=1e-12, atol=0)
    np.testing.assert_allclose(traj.params[0, -1], bn.flatten(loop_U, loop_V), rtol=1e-12)


def test_runs_in_a_batch_are_trained_as_alone():
    x_train, x_test = bn.data()
    U, V = bn.initial_weights(3)
    y, yt = bn.f1(x_train), bn.f1(x_test)
    alone = bn.train(U, V, x_train, y, x_test, yt, 1.0, 20)
    batch = bn.train(np.stack([U, 2 * U]), np.stack([V, V]), x_train, y, x_test, yt, [1.0, 0.5], 20)
    assert np.array_equal(batch.params[0], alone.params[0])
    assert not np.array_equal(batch.params[1], alone.params[0])


def test_a_diverging_run_is_recorded_not_raised():
    x_train, x_test = bn.data()
    U, V = bn.initial_weights(3)
    y, yt = bn.f1(x_train), bn.f1(x_test)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traj = bn.train(np.stack([U, U]), np.stack([V, V]), x_train, y, x_test, yt, [5.0, 0.1], 300)
    first_bad = np.flatnonzero(~np.isfinite(traj.train_error[0]))
    assert first_bad.size and traj.diverged_at[0] == first_bad[0] > 0
    assert traj.diverged_at[1] == -1 and np.isfinite(traj.train_error[1]).all()


def test_sharpness_is_the_top_eigenvalue_of_the_finite_difference_hessian():
    h = 3
    U, V = bn.initial_weights(h)
    x, _ = bn.data()
    y = bn.f1(x)
    params = bn.flatten(U * 50, V * 50)
    columns = []
    for i in range(params.size):
        step = np.zeros_like(params)
        step[i] = 1e-5
        g_plus = bn.flatten(*bn.gradients(*bn.unflatten(params + step, h), x, y))
        g_minus = bn.flatten(*bn.gradients(*bn.unflatten(params - step, h), x, y))
        columns.append((g_plus - g_minus) / 2e-5)
    hessian = np.array(columns)
    expected = np.linalg.eigvalsh((hessian + hessian.T) / 2)[-1]
    assert exp1a.sharpness(h, params[None], x, y)[0] == pytest.approx(expected, rel=1e-6)


def test_amplification_accumulates_growth_and_forgets_stable_stretches():
    lam = np.array([2.0, 3.0, 3.0, 1.0, 1.0, 1.0, 3.0])           # lr = 1: factors |1 − λ|
    amp = exp1a.amplification(lam, 1.0)
    assert amp[2] == pytest.approx(np.log10(1 * 2 * 2))
    assert amp[5] == -np.inf and amp[6] == pytest.approx(np.log10(2))
    assert exp1a.upcrossings([0, 3, 0, 3, 0], 2, quiet=1) == [1, 3]
    assert exp1a.upcrossings([0, 3, 0, 3, 0], 2, quiet=5) == [1]


def test_run_specs_are_parsed_and_bad_ones_named():
    run = exp1a.parse("f2/8/0.1/1200/R1")
    assert (run.f, run.h, run.lr, run.epochs, run.data, run.label) == ("f2", 8, 0.1, 1200, "R1", "f2/8/0.1/1200/R1")
    assert exp1a.parse("f1/3/1/1000").training == exp1a.parse("f1/3/1/10").training
    for bad in ("f3/3/1/1000", "f1/1/1/1000", "f1/3/-1/1000", "f1/3/1", "f1/3/1/1000/X"):
        with pytest.raises(ConfigError, match="expected f/h/lr/epochs"):
            exp1a.parse(bad)
    validate(exp1a.PROFILES["smoke"], "exp1a")


def test_oscillation_onset_is_the_first_epoch_whose_loss_rises():
    assert exp1a.oscillation_onset(np.array([3.0, 2.0, 1.0, 1.0])) == -1   # never rises (ties do not count)
    assert exp1a.oscillation_onset(np.array([3.0, 2.0, 2.5, 1.0, 4.0])) == 2
