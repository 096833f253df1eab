"""Challenge 2B: the polynomials, their derivatives and sensitivity indices, the residual network's
skip placement, the config checks and the whole pipeline on the smoke profile."""
import dataclasses
import itertools

import numpy as np
import pytest
import sympy
import torch

from nnlab.config import ConfigError, validate
from nnlab.experiments import bell
from nnlab.models import Net, forward, init_params

X_SYM = sympy.symbols("x1:7")


def test_b6_is_the_sum_of_the_partial_bell_polynomials():
    partial_sum = sum(sympy.bell(6, k, X_SYM[:6 - k + 1]) for k in range(1, 7))
    assert sympy.expand(bell.to_sympy(bell.B6_TERMS, X_SYM) - partial_sum) == 0


def test_coefficients_sum_to_the_bell_number_203():
    for terms in bell.POLYNOMIALS.values():
        assert sum(c for c, _ in terms) == sympy.bell(6) == 203


def test_the_seed_formula_differs_from_b6_only_by_its_typo():
    x1, x2, x3, x4, x5, x6 = X_SYM
    seed_formula = (x1**6 + 15*x2*x1**4 + 20*x3*x1**3 + 45*x2**2*x1**2 + 15*x3**2 + 60*x3*x2*x1
                    + 15*x4*x1**2 + 10*x3**2 + 15*x4*x2 + 6*x5*x1 + x6)
    assert sympy.expand(bell.to_sympy(bell.B6_TERMS, X_SYM) - seed_formula) == 15*x2**3 - 15*x3**2


def test_scrambled_b6_meets_the_seed_constraints():
    terms = bell.B6_SCRAMBLED_TERMS
    assert bell.scramble_violations(bell.B6_TERMS, bell.SIGMAS) == []
    assert all(any(e[k] for _, e in terms) for k in range(6))                 # all six variables
    assert len(set(bell.SIGMAS)) == len(bell.SIGMAS)                          # distinct sigma_i
    assert all(sorted(s) == list(range(6)) for s in bell.SIGMAS)
    assert len({e for _, e in terms}) == len(terms)                           # no equal monomials
    for (c, e), (c_new, e_new), sigma in zip(bell.B6_TERMS, terms, bell.SIGMAS):
        assert c_new == c and sorted(e_new) == sorted(e)                      # same coefficient, pattern
        assert all(e_new[sigma[k]] == e[k] for k in range(6))                 # x_k -> x_sigma(k)
        assert all(sigma[k] != k for k in range(6) if e[k])                   # every variable moved
    # the two degree-2 terms 15 x4 x2 and 6 x5 x1 must not land on the same pair of variables
    assert terms[8][1] != terms[9][1]
    assert bell.draw_sigmas(2024) == bell.SIGMAS


def test_scramble_violations_names_each_broken_constraint():
    identity = tuple(range(6))
    problems = bell.scramble_violations(bell.B6_TERMS, [identity] * len(bell.B6_TERMS))
    assert any("same permutation" in p for p in problems)
    assert any("in place" in p for p in problems)
    # send 15 x4 x2 and 6 x5 x1 both to x1 x2
    sigmas = list(bell.SIGMAS)
    sigmas[8] = (2, 0, 3, 1, 4, 5)     # x2 -> x1, x4 -> x2
    sigmas[9] = (1, 3, 2, 4, 0, 5)     # x1 -> x2, x5 -> x1
    assert any("equal up to commutativity" in p for p in bell.scramble_violations(bell.B6_TERMS, sigmas))
    # move every monomial's variables to x1, x2, x3: x4, x5, x6 disappear
    squeezed = []
    for _, exps in bell.B6_TERMS:
        order = [k for k in range(6) if exps[k]] + [k for k in range(6) if not exps[k]]
        squeezed.append(tuple(order.index(k) for k in range(6)))
    assert any("[4, 5, 6] do not appear" in p for p in bell.scramble_violations(bell.B6_TERMS, squeezed))


@pytest.mark.parametrize("name", list(bell.POLYNOMIALS))
def test_numpy_torch_and_sympy_evaluations_agree(name):
    terms = bell.POLYNOMIALS[name]
    x = np.random.default_rng(1).uniform(0, 2, (7, 6))
    f = {"B6": bell.b6, "B6_scrambled": bell.b6_scrambled}[name]
    expr = bell.to_sympy(terms, X_SYM)
    exact = [float(expr.subs({s: sympy.Rational(v) for s, v in zip(X_SYM, row)})) for row in x]
    np.testing.assert_allclose(f(x), exact, rtol=1e-13)
    np.testing.assert_allclose(f(torch.tensor(x)).numpy(), exact, rtol=1e-13)


@pytest.mark.parametrize("terms", bell.POLYNOMIALS.values())
def test_analytic_partial_derivatives_match_autograd_and_sympy(terms):
    x = torch.tensor(np.random.default_rng(2).uniform(0, 2, (9, 6)), requires_grad=True)
    (auto,) = torch.autograd.grad(bell.evaluate_terms(terms, x).sum(), x)
    np.testing.assert_allclose(bell.gradient(terms, x.detach().numpy()), auto.numpy(), rtol=1e-12)
    expr, point = bell.to_sympy(terms, X_SYM), x.detach().numpy()[0]
    for j in range(6):
        d = sympy.diff(expr, X_SYM[j]).subs({s: sympy.Rational(v) for s, v in zip(X_SYM, point)})
        assert float(d) == pytest.approx(auto.numpy()[0, j], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("terms", bell.POLYNOMIALS.values())
def test_exact_variance_and_first_order_index_match_sympy_integration(terms):
    expr = bell.to_sympy(terms, X_SYM)
    mean_over = lambda e, vars_: sympy.integrate(e, *[(v, 0, 2) for v in vars_]) / 2 ** len(vars_)
    mean = mean_over(expr, X_SYM)
    variance = mean_over(sympy.expand(expr**2), X_SYM) - mean**2
    assert bell.exact_mean(terms) == pytest.approx(float(mean), rel=1e-12)
    assert bell.exact_variance(terms) == pytest.approx(float(variance), rel=1e-12)
    first, total = bell.exact_sobol(terms)
    for j in (0, 3):     # E[f | x_j] by integrating out the other five variables
        conditional = mean_over(expr, [s for k, s in enumerate(X_SYM) if k != j])
        v_j = mean_over(sympy.expand(conditional**2), [X_SYM[j]]) - mean**2
        assert first[j] == pytest.approx(float(v_j / variance), rel=1e-10)
    assert np.all(total >= first - 1e-12) and first.sum() <= 1 + 1e-12


@pytest.mark.parametrize("terms", bell.POLYNOMIALS.values())
def test_monte_carlo_sobol_indices_estimate_the_exact_ones(terms):
    first, total = bell.exact_sobol(terms)
    mc_first, mc_total = bell.sobol_indices(lambda x: bell.evaluate_terms(terms, x), 2 ** 14, 0)
    np.testing.assert_allclose(mc_first, first, atol=0.02)
    np.testing.assert_allclose(mc_total, total, atol=0.02)


def test_sweeps_vary_one_variable_and_keep_its_own_derivative():
    bases, grid = np.random.default_rng(3).uniform(0, 2, (2, 6)), np.linspace(0, 2, 401)
    points = bell.sweep_points(bases, grid)                      # (bases, 6, G, 6)
    for b, j, k in itertools.product(range(2), range(6), range(6)):
        expected = grid if k == j else np.full_like(grid, bases[b, k])
        np.testing.assert_array_equal(points[b, j, :, k], expected)
    terms = bell.B6_SCRAMBLED_TERMS
    values = bell.evaluate_terms(terms, points.reshape(-1, 6)).reshape(points.shape[:-1])
    partial = bell.along_sweeps(bell.gradient(terms, points.reshape(-1, 6)).reshape(points.shape))
    numeric = np.gradient(values, grid, axis=-1, edge_order=2)
    np.testing.assert_allclose(partial, numeric, rtol=1e-3, atol=1e-2)


def test_residual_net_with_zeroed_hidden_layers_is_the_plain_6_50_1_net():
    net = bell.network(bell.Config())
    assert net.widths == (6,) + (50,) * 8 + (1,) and len(net.layers) == 9
    assert net.skips() == [False] + [True] * 7 + [False]
    params = init_params(net, [0, 1])
    zeroed = [params[0]] + [(torch.zeros_like(W), torch.zeros_like(b)) for W, b in params[1:-1]] \
        + [params[-1]]
    x = torch.rand(2, 13, 6) * 2
    (W0, b0), (W1, b1) = params[0], params[-1]
    plain = torch.relu(x @ W0.transpose(1, 2) + b0[:, None]) @ W1.transpose(1, 2) + b1[:, None]
    torch.testing.assert_close(forward(net, zeroed, x), plain)
    torch.testing.assert_close(forward(Net((6, 50, 1)), [params[0], params[-1]], x), plain)
    assert not torch.allclose(forward(net, params, x), plain)   # the hidden layers do matter


def test_network_outputs_are_in_original_units_with_autograd_gradients():
    net, scale = Net((6, 5, 5, 1), residual=True), bell.TargetScale(mean=3.0, std=7.0)
    params = init_params(net, [0, 1])
    x = np.random.default_rng(4).uniform(0, 2, (10, 6))
    values, grads = bell.network_outputs(net, params, x, scale, with_gradient=True, chunk=4)
    raw = forward(net, params, torch.tensor(x, dtype=torch.float32).expand(2, -1, -1))[..., 0]
    np.testing.assert_allclose(values, 3.0 + 7.0 * raw.numpy(), rtol=1e-6)
    h = 1e-3
    for j in range(6):
        step = np.zeros(6)
        step[j] = h
        central = (bell.network_outputs(net, params, x + step, scale)
                   - bell.network_outputs(net, params, x - step, scale)) / (2 * h)
        np.testing.assert_allclose(grads[..., j], central, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("change, field", [
    ({"epochs": 0}, "epochs"), ({"lrs": (1e-3, -1e-3)}, "lrs"), ({"seeds": (0, -1)}, "seeds"),
    ({"batch_size": 0}, "batch_size"), ({"grid_points": 1}, "grid_points"),
])
def test_bad_config_values_name_their_field(change, field):
    with pytest.raises(ConfigError, match=field):
        validate(dataclasses.replace(bell.Config(), **change), "bell")


@pytest.mark.parametrize("change, field", [
    ({"seeds": (1, 1)}, "seeds"), ({"lrs": ()}, "lrs"), ({"n_train": 10, "batch_size": 20}, "n_train"),
])
def test_inconsistent_configs_are_refused_before_training(change, field):
    with pytest.raises(ConfigError, match=field):
        bell.run(dataclasses.replace(bell.PROFILES["smoke"], **change))


def test_reported_mse_is_in_original_units():
    config = dataclasses.replace(bell.PROFILES["smoke"], n_train=60, n_test=30, epochs=1)
    rng = np.random.default_rng(0)
    X, X_test = bell.sample_inputs(60, rng), bell.sample_inputs(30, rng)
    data = bell.make_dataset(bell.B6_TERMS, X, X_test)
    net = bell.network(config)
    runs = bell.fit(net, data, [1e-3, 2e-3], [0, 1], config, "test")
    predictions = bell.network_outputs(net, runs.params, X, data.scale)
    np.testing.assert_allclose(runs.final_train, ((predictions - bell.b6(X)) ** 2).mean(1), rtol=1e-4)
    test_predictions = bell.network_outputs(net, runs.params, X_test, data.scale)
    np.testing.assert_allclose(runs.epoch_test[:, -1], ((test_predictions - bell.b6(X_test)) ** 2).mean(1),
                               rtol=1e-4)


@pytest.mark.parametrize("sweep_seed", [0, 7])
def test_smoke_profile_runs_the_whole_pipeline(sweep_seed):
    config = dataclasses.replace(bell.PROFILES["smoke"], sweep_seed=sweep_seed)
    out = bell.run(config)
    summary, sweep = out["summary"], out["sweep"]
    assert {"polynomial", "lr", "seed", "final_train_loss", "final_test_loss"} <= set(summary.columns)
    assert list(summary["polynomial"]) == [p for p in ("B6", "B6_scrambled") for _ in config.seeds]
    assert list(summary["seed"]) == list(config.seeds) * 2
    assert np.all(np.isfinite(summary[["final_train_loss", "final_test_loss"]].to_numpy()))
    for name in bell.POLYNOMIALS:
        chosen = out["chosen_lr"][name]
        assert chosen in config.lrs and set(summary.query("polynomial == @name")["lr"]) == {chosen}
        swept = sweep.query("polynomial == @name and lr == @chosen").iloc[0]
        final = summary.query("polynomial == @name and seed == @sweep_seed")
        if sweep_seed in config.seeds:   # the sweep's run at the chosen lr is the final seed-0 run
            assert final["final_train_loss"].item() == swept["final_train_loss"]
    P, S, E, G = 2, len(config.seeds), config.epochs, config.grid_points
    assert out["epoch_test"].shape == (P, S, E + 1) and out["sweep_epoch_train"].shape == (P, len(config.lrs), E)
    assert out["step6_model"].shape == (P, S, 6, G) and out["value_error"].shape == (P, S, config.base_points, 6)
    assert len(out["sensitivity"]) == len(out["per_variable"]) == 12


def test_training_in_two_processes_gives_the_same_networks_as_in_one():
    config = dataclasses.replace(bell.PROFILES["smoke"], n_train=100, n_test=20, epochs=1)
    one = bell.train_all(config)
    two = bell.train_all(dataclasses.replace(config, workers=2))
    for name in bell.POLYNOMIALS:
        for a, b in zip(one[name]["runs"].params, two[name]["runs"].params):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        np.testing.assert_array_equal(one[name]["sweep"].step_loss, two[name]["sweep"].step_loss)


def _runs(step_loss, diverged_at):
    step_loss = np.asarray(step_loss, float)
    M = len(step_loss)
    return bell.Runs(np.arange(1, M + 1) * 1e-4, np.zeros(M, int), [], step_loss,
                     np.zeros((M, 3)), np.zeros(M), np.asarray(diverged_at))


def test_choose_lr_takes_the_lowest_last_epoch_loss_and_never_a_diverged_run():
    # 2 epochs of 3 steps: run 1 is best over the whole run, run 2 over the last epoch only,
    # run 0 has the lowest last epoch but diverged (and a NaN in its log)
    runs = _runs([[9, 9, 9, 0.1, np.nan, 0.1], [1, 1, 1, 2, 2, 2], [5, 5, 5, 1.5, 1.5, 1.5]], [4, -1, -1])
    assert bell.choose_lr(runs, epochs=2) == 2
    with pytest.raises(RuntimeError, match="diverged"):
        bell.choose_lr(_runs([[1.0, np.inf]], [1]), epochs=1)
