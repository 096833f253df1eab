"""The Runge experiment: the seed's data split, the polynomial baselines and the training glue."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from nnlab.config import ConfigError, validate
from nnlab.experiments import runge as R
from nnlab.models import Net, init_params


def test_split_is_the_seeds_70_15_15_partition_of_the_grid():
    d = R.split(100, 4)
    assert [len(d[k]) for k in ("train", "val", "test")] == [70, 15, 15]
    together = np.sort(np.concatenate(list(d.values())))
    np.testing.assert_array_equal(together, np.linspace(-1, 1, 100))
    np.testing.assert_array_equal(R.split(100, 4)["test"], d["test"])        # deterministic


def test_equispaced_fractions_are_the_grid_points_exactly():
    x = R.split()["train"]
    fr = R.equispaced_fractions(x, 100)
    np.testing.assert_allclose([p / q for p, q in fr], np.sort(x), rtol=0, atol=1e-15)


def test_exact_interpolant_interpolates_and_agrees_with_a_well_conditioned_fit():
    nodes = [(2 * k - 8, 8) for k in range(9)]                 # 9 equispaced points: benign
    x_nodes = np.array([p / q for p, q in nodes])
    np.testing.assert_allclose(R.exact_interpolant(nodes, x_nodes, 40), R.runge(x_nodes), rtol=1e-15)
    x = np.linspace(-1, 1, 37)
    np.testing.assert_allclose(R.exact_interpolant(nodes, x, 40), R.interpolant(x_nodes)(x), atol=1e-12)


def test_chebyshev_points_give_a_perfectly_conditioned_chebyshev_vandermonde():
    # discrete orthogonality: V^T V = diag(n, n/2, ..., n/2), so cond(V) = sqrt(2) for every n
    for n in (5, 70):
        nodes = R.chebyshev_points(n)
        assert np.all(np.diff(nodes) > 0) and np.all(np.abs(nodes) < 1)
        conds = R.vandermonde_conditions(nodes)
        assert conds["chebyshev_basis"] == pytest.approx(np.sqrt(2), rel=1e-10)
        assert conds["monomial_basis"] > conds["chebyshev_basis"] * (1e10 if n == 70 else 1)
        p = R.interpolant(nodes)
        np.testing.assert_allclose(p(nodes), R.runge(nodes), atol=1e-14)


def test_glorot_params_have_keras_bounds_zero_biases_and_engine_layout():
    net = Net((1, 64, 64, 1), activation="tanh")
    g, t = R.glorot_params(net, [0, 1, 2]), init_params(net, [0, 1, 2])
    for (W, b), (Wt, bt), (n_in, n_out) in zip(g, t, net.layers):
        assert W.shape == Wt.shape and b.shape == bt.shape
        assert float(W.abs().max()) <= (6 / (n_in + n_out)) ** 0.5
        assert float(b.abs().max()) == 0
        assert not np.allclose(W[0].numpy(), W[1].numpy())                  # seeds differ
    np.testing.assert_array_equal(R.glorot_params(net, [1])[0][0][0], g[0][0][1])  # per-seed draw


def test_epoch_means_weight_batches_by_their_size():
    step_loss = np.array([[1.0, 2.0, 10.0, 0.5, 0.5, 0.5]])                # 2 epochs of 32, 32, 6
    expected = [(32 * 1 + 32 * 2 + 6 * 10) / 70, 0.5]
    np.testing.assert_allclose(R.epoch_means(step_loss, 70, 32), [expected])


def test_bad_config_values_name_the_field():
    with pytest.raises(ConfigError, match="lr"):
        validate(dataclasses.replace(R.Config(), lr=-0.1), "runge")
    with pytest.raises(ConfigError, match="inits"):
        validate(dataclasses.replace(R.Config(), inits=("he",)), "runge")


def test_smoke_run_reports_every_model_with_the_required_columns():
    out = R.run(R.PROFILES["smoke"])
    s = out["summary"]
    assert {"model", "seed", "test_mse", "test_max_err", "grid_max_err"} <= set(s.columns)
    assert {"network", "poly_equispaced", "poly_chebyshev", "spline", "chebyshev_lsq",
            "network_chebyshev_points"} <= set(s["model"])
    # the root mean square over the test points is bounded by their maximum
    assert np.all(np.sqrt(s["test_mse"]) <= s["test_max_err"] * (1 + 1e-12))
    smoke = R.PROFILES["smoke"]
    assert out["network_val_loss"].shape == (len(smoke.seeds), smoke.epochs)
    chosen = out["schedules"].sort_values("val_mse_mean")["schedule"].iloc[0]       # by validation
    epochs = sum(ep for _, ep in R.parse_schedule(chosen))
    assert out["network_decay_val_loss"].shape == out["network_decay_train_loss"].shape == (len(smoke.seeds), epochs)
    # the control: the seed's constant rate for as many epochs in all, same seeds
    control = f"network_constant_{smoke.epochs + epochs}"
    assert out["constant_model"] == control
    assert out[f"{control}_val_loss"].shape == (len(smoke.seeds), epochs)
    assert list(s.loc[s["model"] == control, "seed"]) == list(smoke.seeds)
    assert s.loc[s["model"] == "chebyshev_lsq", "n_params"].iloc[0] == s.loc[s["model"] == "network", "n_params"].iloc[0]
    assert set(out["monomial"]["power"]) == set(smoke.monomial_powers)


def test_schedules_parse_and_bad_ones_are_refused():
    assert R.parse_schedule("1e-3:250+1e-4:250") == [(1e-3, 250), (1e-4, 250)]
    for bad in ("1e-3", "1e-3:0", "-1:5", "a:b"):
        with pytest.raises(ConfigError, match="schedules"):
            R.parse_schedule(bad)


def test_spline_reproduces_cubics_and_chebyshev_least_squares_reproduces_polynomials():
    nodes = np.sort(R.split()["train"])
    x = np.linspace(-1, 1, 501)
    cubic = lambda t: 2 * t ** 3 - t ** 2 + 0.5 * t - 3        # noqa: E731
    np.testing.assert_allclose(R.cubic_spline(nodes, cubic(nodes))(x), cubic(x), atol=1e-12)
    quintic = lambda t: 16 * t ** 5 - 20 * t ** 3 + 5 * t       # T_5            # noqa: E731
    fit = R.chebyshev_least_squares(nodes, quintic(nodes), 6)
    np.testing.assert_allclose(fit.coef, [0, 0, 0, 0, 0, 1], atol=1e-10)
    np.testing.assert_allclose(fit(x), quintic(x), atol=1e-10)


def test_underdetermined_chebyshev_least_squares_interpolates_with_least_norm():
    nodes = R.chebyshev_points(9)
    values = R.runge(nodes)
    fit = R.chebyshev_least_squares(nodes, values, 40)
    np.testing.assert_allclose(fit(nodes), values, atol=1e-12)
    # any other interpolant differs by a null-space vector of V and has a larger coefficient norm
    V = np.polynomial.chebyshev.chebvander(nodes, 39)
    null = np.linalg.svd(V)[2][-1]
    other = fit.coef + 0.1 * null
    np.testing.assert_allclose(V @ other, values, atol=1e-12)
    assert np.linalg.norm(other) > np.linalg.norm(fit.coef)


def test_piecewise_linear_reference_for_x_squared_and_the_fitted_rates():
    x = np.linspace(-1, 1, 20001)
    for width in (2, 4, 8, 16):
        assert R.piecewise_linear_error(2, width, x) == pytest.approx(1 / (width + 1) ** 2, rel=1e-6)
    rates = R.convergence_rates(pd.DataFrame(
        [{"activation": "relu", "power": 2, "width": w, "seed": 0, "max_err": 3 * w ** -1.5, "mse": w ** -3.0,
          "piecewise_linear_max_err": R.piecewise_linear_error(2, w, x)} for w in (4, 8, 16, 32)]))
    row = rates.iloc[0]
    widths = np.array([4, 8, 16, 32.0])                                # error (w + 1)^-2: slope -> -2
    expected = np.polyfit(np.log(widths), -2 * np.log(widths + 1), 1)[0]
    assert row["piecewise_linear_slope"] == pytest.approx(expected, rel=1e-6)
    assert row["max_err_slope"] == pytest.approx(-1.5) and row["mse_slope"] == pytest.approx(-3)


def test_a_wider_relu_layer_approximates_x_squared_better():
    c = dataclasses.replace(R.PROFILES["smoke"], monomial_powers=(2,), monomial_widths=(2, 32),
                            monomial_seeds=(0, 1), monomial_activations=("relu",), monomial_steps=1500)
    table = R.monomial_study(c, np.linspace(-1, 1, 1001))
    err = table.groupby("width")[["max_err", "mse"]].median()
    assert err.loc[32, "max_err"] < err.loc[2, "max_err"] / 4
    assert err.loc[32, "mse"] < err.loc[2, "mse"] / 16
    # never better than the best function with one kink per unit: half the interpolant's error
    assert (table["max_err"] >= table["piecewise_linear_max_err"] / 2 * (1 - 1e-9)).all()
