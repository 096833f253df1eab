"""The from-scratch network of Lab 2 and its grid search: gradients, clipping, batching, folds."""
import dataclasses

import numpy as np
import pytest

from nnlab import scratch_net as sn
from nnlab.experiments import lab2


def small_problem(m=3, nh1=4, nh2=3, n=7, seed=0):
    rng = np.random.default_rng(seed)
    params = sn.init_params(rng, m, nh1, nh2)
    x = rng.uniform(-2, 2, (m, n, 1))
    t = np.sin(2 * x) + 0.1 * rng.normal(size=x.shape)
    return params, x, t


@pytest.mark.parametrize("name", sorted(sn.ACTIVATIONS))
@pytest.mark.parametrize("l1", [0.0, 0.01])
def test_gradient_matches_central_differences(name, l1):
    params, x, t = small_problem()
    act = sn.activation(name)
    l1s = np.array([l1, 3 * l1, 0.0])
    y, cache = sn.forward(params, x, act)
    grads = sn.backward(params, y, t, cache, act, l1s)
    eps = 1e-6
    for key, value in params.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape[1:]):
            for sign in (1, -1):
                shifted = {k: v.copy() for k, v in params.items()}
                shifted[key][(slice(None),) + idx] += sign * eps
                numeric[(slice(None),) + idx] += sign * sn.objective(shifted, x, t, act, l1s) / (2 * eps)
        np.testing.assert_allclose(grads[key], numeric, rtol=1e-5, atol=1e-8, err_msg=key)


def test_l1_penalises_weights_not_biases():
    params, x, t = small_problem()
    act = sn.activation("relu")
    y, cache = sn.forward(params, x, act)
    plain = sn.backward(params, y, t, cache, act, 0.0)
    with_l1 = sn.backward(params, y, t, cache, act, 0.5)
    for key in sn.PARAMS:
        extra = 0.5 * np.sign(params[key]) if key in sn.WEIGHTS else 0.0
        np.testing.assert_allclose(with_l1[key], plain[key] + extra, rtol=0, atol=1e-15)


def test_clipping_rescales_to_clip_norm_and_keeps_direction():
    rng = np.random.default_rng(1)
    grads = {k: v * s for (k, v), s in zip(sn.init_params(rng, 3, 5, 4).items(), (10, 1, 3, 2, 7, 4))}
    grads = {k: v * np.array([1.0, 1.0, 1e-3])[:, None, None] for k, v in grads.items()}
    norm = sn.global_norm(grads)
    clip = 0.5 * norm[:2].min()
    assert norm[2] < clip < norm[0]              # two models above the threshold, one below
    clipped, was_clipped = sn.clip_by_global_norm(grads, clip)
    np.testing.assert_array_equal(was_clipped, [True, True, False])
    new_norm = sn.global_norm(clipped)
    np.testing.assert_allclose(new_norm[:2], clip, rtol=1e-12)
    for key in grads:                              # same direction: a positive multiple
        for m in range(2):
            ratio = clipped[key][m] / grads[key][m]
            np.testing.assert_allclose(ratio, clip / norm[m], rtol=1e-12)
        np.testing.assert_array_equal(clipped[key][2], grads[key][2])
    unclipped, was_clipped = sn.clip_by_global_norm(grads, np.inf)     # train's default: no clipping
    assert not was_clipped.any()
    for key in grads:
        np.testing.assert_array_equal(unclipped[key], grads[key])


def test_linear_decay_runs_from_lr_to_lr_final():
    epochs = np.array([1, 5, 5])
    rates = np.array([sn.learning_rate(e, epochs, 0.1, 0.01, np.array([True, True, False]))
                      for e in range(5)])
    np.testing.assert_allclose(rates[:, 1], np.linspace(0.1, 0.01, 5))
    np.testing.assert_allclose(rates[:, 2], 0.1)
    assert rates[0, 0] == 0.1                    # a single epoch uses lr


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="tanh.*sigmoid, relu, leaky_relu"):
        sn.activation("tanh")


def test_batched_training_equals_training_each_alone():
    params, x, t = small_problem(m=5)
    x_test = np.linspace(-2, 2, 5)
    settings = dict(epochs=np.array([30, 12, 30, 25, 1]), lr=np.array([0.05, 0.2, 0.1, 0.3, 0.1]),
                    decay=np.array([True, False, True, False, True]),
                    lr_final=np.array([0.001, 0.0, 0.02, 0.0, 0.01]),
                    l1=np.array([0.0, 1e-3, 1e-2, 0.0, 0.0]))
    common = dict(activation_name="leaky_relu", clip_norm=0.5)
    batched = sn.train(params, x[..., 0], t[..., 0], x_test, np.cos(x_test), **settings, **common)
    for m in range(5):
        alone = sn.train({k: v[m:m + 1] for k, v in params.items()}, x[m, :, 0], t[m, :, 0],
                         x_test, np.cos(x_test), **{k: v[m] for k, v in settings.items()}, **common)
        e = settings["epochs"][m]
        for curve in ("train_loss", "test_loss"):
            np.testing.assert_allclose(getattr(batched, curve)[: e + 1, m],
                                       getattr(alone, curve)[:, 0], rtol=0, atol=1e-10)
            assert np.isnan(getattr(batched, curve)[e + 1:, m]).all()
        for k in sn.PARAMS:
            np.testing.assert_allclose(batched.params[k][m], alone.params[k][0], rtol=0, atol=1e-10)
        assert batched.clipped[m] == alone.clipped[0]
    assert batched.clipped.max() > 0             # clipping was exercised


def test_grid_search_validation_losses_equal_training_each_configuration_alone():
    config = dataclasses.replace(lab2.PROFILES["smoke"], dtype="float64")
    data, grid = lab2.make_data(config), lab2.make_grid(config)
    cv = lab2.cross_validate(grid, data, config)
    runs, _ = lab2.with_runs(grid)
    assert len(runs) < len(grid)                 # constant-rate configurations shared a run
    sets = lab2.fold_sets(data, config)
    for row in range(len(grid)):
        config_row = grid.iloc[[row]].assign(run_epochs=grid["epochs"].iloc[row])
        for k, fold in enumerate(sets):
            alone = lab2.fit(config_row, [fold], config)
            e = grid["epochs"].iloc[row]
            assert abs(alone.test_loss[e, 0, 0] - cv["val"][row, k]) <= 1e-10
            assert abs(alone.train_loss[e, 0, 0] - cv["train"][row, k]) <= 1e-10


def test_folds_partition_the_training_set():
    n, k = 120, 4
    folds = lab2.fold_indices(n, k, seed=0)
    assert len(folds) == k
    held_out = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(held_out), np.arange(n))    # each point exactly once
    for train, val in folds:
        assert len(val) == n // k
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
    np.testing.assert_array_equal(np.bincount(lab2.fold_of_point(n, k, 0)), [n // k] * k)


def test_grid_decays_only_towards_smaller_rates():
    config = dataclasses.replace(lab2.PROFILES["smoke"], lr=(0.0005, 0.03), lr_final=(0.001,))
    grid = lab2.make_grid(config)
    decaying = grid[grid["decay"]]
    assert (decaying["lr_final"] < decaying["lr"]).all()
    assert grid[~grid["decay"]]["lr_final"].isna().all()
    per_lr = grid.groupby("lr").size()
    assert per_lr[0.03] == 2 * per_lr[0.0005]
