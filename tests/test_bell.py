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
from nnlab.train import shuffled_epochs, train

X_SYM = sympy.symbols("x1:7")
POLYNOMIALS = bell.polynomials(bell.Config())


def test_b6_is_the_sum_of_the_partial_bell_polynomials():
    partial_sum = sum(sympy.bell(6, k, X_SYM[:6 - k + 1]) for k in range(1, 7))
    assert sympy.expand(bell.to_sympy(bell.B6_TERMS, X_SYM) - partial_sum) == 0


def test_coefficients_sum_to_the_bell_number_203():
    for terms in POLYNOMIALS.values():
        assert sum(c for c, _ in terms) == sympy.bell(6) == 203


def test_the_seed_formula_differs_from_b6_only_by_its_typo():
    x1, x2, x3, x4, x5, x6 = X_SYM
    seed_formula = (x1**6 + 15*x2*x1**4 + 20*x3*x1**3 + 45*x2**2*x1**2 + 15*x3**2 + 60*x3*x2*x1
                    + 15*x4*x1**2 + 10*x3**2 + 15*x4*x2 + 6*x5*x1 + x6)
    assert sympy.expand(bell.to_sympy(bell.B6_TERMS, X_SYM) - seed_formula) == 15*x2**3 - 15*x3**2


# B̃6 of the book's first edition: sigma_9 swaps x2 and x4 in 15 x2 x4, which leaves the monomial as it is
OLD_SIGMAS = (
    (2, 3, 5, 0, 1, 4), (1, 2, 5, 3, 0, 4), (3, 0, 1, 5, 4, 2), (2, 0, 3, 4, 1, 5),
    (2, 5, 1, 0, 4, 3), (4, 2, 0, 3, 1, 5), (4, 0, 3, 2, 1, 5), (0, 1, 3, 4, 5, 2),
    (4, 3, 5, 1, 2, 0), (2, 4, 1, 5, 3, 0), (0, 5, 1, 2, 3, 4),
)


@pytest.mark.parametrize("sigmas", bell.SCRAMBLE_SIGMAS + (bell.SOBOL_MATCHED_SIGMAS,))
def test_every_scramble_meets_the_seed_constraints(sigmas):
    terms = bell.scramble(bell.B6_TERMS, sigmas)
    assert bell.scramble_violations(bell.B6_TERMS, sigmas) == []
    assert all(any(e[k] for _, e in terms) for k in range(6))                 # all six variables
    assert len(set(sigmas)) == len(sigmas)                                    # distinct sigma_i
    assert all(sorted(s) == list(range(6)) for s in sigmas)
    assert len({e for _, e in terms}) == len(terms)                           # no equal monomials
    for (c, e), (c_new, e_new), sigma in zip(bell.B6_TERMS, terms, sigmas):
        assert c_new == c and sorted(e_new) == sorted(e)                      # same coefficient, pattern
        assert all(e_new[sigma[k]] == e[k] for k in range(6))                 # x_k -> x_sigma(k)
        assert e_new != e                                                     # the monomial changes
    assert terms[8][1] != terms[9][1]     # 15 x4 x2 and 6 x5 x1 do not land on the same pair


def test_the_scrambles_are_independent_draws_and_different():
    assert bell.SCRAMBLE_SIGMAS == tuple(bell.draw_sigmas(i) for i in range(10))
    assert len({frozenset(t) for t in bell.SCRAMBLES + (bell.SOBOL_MATCHED, bell.B6_TERMS)}) == 12


def test_a_scramble_that_leaves_a_monomial_unchanged_is_refused():
    # the first edition's sigma_9 moves both variables of 15 x2 x4 and still gives 15 x4 x2
    assert bell.scramble(bell.B6_TERMS, OLD_SIGMAS)[8] == bell.B6_TERMS[8]
    problems = bell.scramble_violations(bell.B6_TERMS, OLD_SIGMAS)
    assert problems == ["monomials [9] are unchanged up to commutativity"]
    # a cyclic shift x1 -> x2 -> x3 -> x1 inside 60 x1 x2 x3: every variable moves, the monomial stays
    sigmas = list(bell.SCRAMBLE_SIGMAS[0])
    sigmas[5] = (1, 2, 0, 4, 5, 3)
    assert any("[6] are unchanged" in p for p in bell.scramble_violations(bell.B6_TERMS, sigmas))


def test_scramble_violations_names_each_broken_constraint():
    identity = tuple(range(6))
    problems = bell.scramble_violations(bell.B6_TERMS, [identity] * len(bell.B6_TERMS))
    assert any("same permutation" in p for p in problems)
    assert any("in place" in p for p in problems)
    # send 15 x4 x2 and 6 x5 x1 both to x1 x2
    sigmas = list(bell.SCRAMBLE_SIGMAS[0])
    sigmas[8] = (2, 0, 3, 1, 4, 5)     # x2 -> x1, x4 -> x2
    sigmas[9] = (1, 3, 2, 4, 0, 5)     # x1 -> x2, x5 -> x1
    assert any("equal up to commutativity" in p for p in bell.scramble_violations(bell.B6_TERMS, sigmas))
    # move every monomial's variables to x1, x2, x3: x4, x5, x6 disappear
    squeezed = []
    for _, exps in bell.B6_TERMS:
        order = [k for k in range(6) if exps[k]] + [k for k in range(6) if not exps[k]]
        squeezed.append(tuple(order.index(k) for k in range(6)))
    assert any("[4, 5, 6] do not appear" in p for p in bell.scramble_violations(bell.B6_TERMS, squeezed))


def test_sobol_matched_control_ranks_the_variables_as_b6():
    s_b6, _ = bell.exact_sobol(bell.B6_TERMS)
    s_matched, _ = bell.exact_sobol(bell.SOBOL_MATCHED)
    assert list(np.argsort(-s_matched)) == list(np.argsort(-s_b6))
    np.testing.assert_allclose(s_matched[:3], s_b6[:3], atol=0.05)      # close where the variance is
    # no random scramble has B6's ranking (which is what makes the control necessary)
    assert all(list(np.argsort(-bell.exact_sobol(t)[0])) != list(np.argsort(-s_b6)) for t in bell.SCRAMBLES)


@pytest.mark.parametrize("name", ["B6", "0", "9", "sobol"])
def test_exact_mean_and_variance_against_monte_carlo(name):
    terms = POLYNOMIALS[name]
    y = bell.evaluate_terms(terms, np.random.default_rng(5).uniform(0, 2, (400_000, 6)))
    n, mean, var = len(y), y.mean(), y.var()
    se_mean = y.std() / np.sqrt(n)
    se_var = np.sqrt((np.mean((y - mean) ** 4) - var ** 2) / n)
    assert abs(bell.exact_mean(terms) - mean) < 5 * se_mean
    assert abs(bell.exact_variance(terms) - var) < 5 * se_var


@pytest.mark.parametrize("name", ["B6", "0", "sobol"])
def test_numpy_torch_and_sympy_evaluations_agree(name):
    terms = POLYNOMIALS[name]
    x = np.random.default_rng(1).uniform(0, 2, (7, 6))
    f = (lambda x: bell.evaluate_terms(terms, x)) if name != "B6" else bell.b6
    expr = bell.to_sympy(terms, X_SYM)
    exact = [float(expr.subs({s: sympy.Rational(v) for s, v in zip(X_SYM, row)})) for row in x]
    np.testing.assert_allclose(f(x), exact, rtol=1e-13)
    np.testing.assert_allclose(f(torch.tensor(x)).numpy(), exact, rtol=1e-13)


@pytest.mark.parametrize("terms", [bell.B6_TERMS, bell.SCRAMBLES[0], bell.SOBOL_MATCHED])
def test_analytic_partial_derivatives_match_autograd_and_sympy(terms):
    x = torch.tensor(np.random.default_rng(2).uniform(0, 2, (9, 6)), requires_grad=True)
    (auto,) = torch.autograd.grad(bell.evaluate_terms(terms, x).sum(), x)
    np.testing.assert_allclose(bell.gradient(terms, x.detach().numpy()), auto.numpy(), rtol=1e-12)
    expr, point = bell.to_sympy(terms, X_SYM), x.detach().numpy()[0]
    for j in range(6):
        d = sympy.diff(expr, X_SYM[j]).subs({s: sympy.Rational(v) for s, v in zip(X_SYM, point)})
        assert float(d) == pytest.approx(auto.numpy()[0, j], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("terms", [bell.B6_TERMS, bell.SCRAMBLES[0], bell.SOBOL_MATCHED])
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


@pytest.mark.parametrize("terms", [bell.B6_TERMS, bell.SCRAMBLES[0], bell.SOBOL_MATCHED])
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
    terms = bell.SCRAMBLES[0]
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
    ({"seeds": (1, 1)}, "seeds"), ({"lrs": ()}, "lrs"), ({"sizes": (10, 200, 400)}, "sizes"),
    ({"n_train": 300}, "n_train"), ({"n_test_curve": 500}, "n_test_curve"),
])
def test_inconsistent_configs_are_refused_before_training(change, field):
    with pytest.raises(ConfigError, match=field):
        bell.run(dataclasses.replace(bell.PROFILES["smoke"], **change))


def test_shallow_net_has_the_parameter_count_of_the_residual_net():
    config = bell.Config()
    deep, shallow = bell.network(config), bell.network(config, "shallow")
    assert len(shallow.layers) == 2 and abs(shallow.n_params() - deep.n_params()) <= 8


def test_schedule_keeps_the_seed_epochs_at_a_constant_rate_then_decays():
    config = bell.Config()
    epochs, steps, scale = bell.schedule(config, config.n_train)
    per_epoch = config.n_train // config.batch_size
    assert epochs == config.epochs and steps == (config.epochs + config.decay_epochs) * per_epoch
    assert np.all(scale[:epochs * per_epoch] == 1) and scale[-1] == pytest.approx(config.decay_factor)
    assert np.all(np.diff(scale) <= 0)
    small_epochs, small_steps, _ = bell.schedule(config, 1000)       # small sets: at least min_steps
    assert small_epochs * 50 >= config.min_steps and small_steps > config.min_steps


def test_per_model_targets_train_each_model_as_if_alone():
    config = dataclasses.replace(bell.PROFILES["smoke"], n_train=100, epochs=1, decay_epochs=1)
    X = torch.rand(100, 6) * 2
    T = torch.stack([X.sum(1), X.prod(1)])
    net = Net((6, 7, 1))
    both = train(net, init_params(net, [3, 4]), bell.PerModelTargets(X, T, 20, [3, 4]), steps=12, lr=1e-2)
    for m, seed in enumerate([3, 4]):
        alone = train(net, init_params(net, [seed]), shuffled_epochs(X, T[m][:, None], 20, [seed]),
                      steps=12, lr=1e-2)
        for (W, b), (W1, b1) in zip(both.params, alone.params):
            torch.testing.assert_close(W[m], W1[0], rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(b[m], b1[0], rtol=1e-6, atol=1e-7)


def test_reported_mse_is_in_original_units():
    config = dataclasses.replace(bell.PROFILES["smoke"], epochs=1)
    runs = bell.fit(config, "resnet", 100, [("B6", 1e-3, 0), ("0", 2e-3, 1)], curve=False)
    X_all, X_test, _ = bell.inputs(config)
    net, X = bell.network(config), X_all[:100]
    for m, (name, terms) in enumerate([("B6", bell.B6_TERMS), ("0", bell.SCRAMBLES[0])]):
        scale = bell.TargetScale.of(terms, X)
        params = [(W[[m]], b[[m]]) for W, b in runs.params]
        for data, reported in ((X, runs.final_train[m]), (X_test, runs.final_test[m])):
            predictions = bell.network_outputs(net, params, data, scale)[0]
            assert reported == pytest.approx(((predictions - bell.evaluate_terms(terms, data)) ** 2).mean(),
                                             rel=1e-4)


def _fake_fit(config, architecture, n, models, curve=False):
    """Runs whose final training MSE is smallest at lr = 0.05 (beyond a grid that ends at 0.01)."""
    names, lrs, seeds = (list(v) for v in zip(*models))
    lrs = np.array(lrs, float)
    M = len(lrs)
    return bell.Runs(names, lrs, np.array(seeds), [], np.zeros((M, 1)), np.zeros((M, 1)),
                     np.zeros((M, 0)), 1 + np.log(lrs / 0.05) ** 2, np.ones(M), np.full(M, -1))


def test_the_grid_is_extended_while_the_best_rate_is_at_its_edge(monkeypatch):
    monkeypatch.setattr(bell, "fit", _fake_fit)
    config = dataclasses.replace(bell.PROFILES["smoke"], extend=3, seeds=(0, 1, 2))
    runs = bell.tune(config, "resnet", 100, ["B6"], (0.0025, 0.005, 0.01), curve=False)
    assert sorted(set(runs.lrs)) == pytest.approx([0.0025, 0.005, 0.01, 0.02, 0.04, 0.08])
    assert bell.choose_lr(runs) == pytest.approx(0.04)
    assert np.all(np.bincount(np.searchsorted(sorted(set(runs.lrs)), runs.lrs)) == 3)  # every seed
    # with extend=1 it stops one rate beyond the edge
    short = bell.tune(dataclasses.replace(config, extend=1), "resnet", 100, ["B6"], (0.0025, 0.005, 0.01),
                      curve=False)
    assert max(short.lrs) == pytest.approx(0.02)


def test_choose_lr_never_takes_a_diverged_rate():
    runs = _fake_fit(None, "resnet", 100, [("B6", lr, s) for lr in (0.01, 0.05) for s in (0, 1)])
    assert bell.choose_lr(runs) == 0.05
    runs.diverged_at[3] = 17
    assert bell.choose_lr(runs) == 0.01
    runs.diverged_at[0] = 5
    with pytest.raises(RuntimeError, match="diverged"):
        bell.choose_lr(runs)


def test_smoke_profile_runs_the_whole_pipeline():
    config = bell.PROFILES["smoke"]
    out = bell.run(config)
    summary = out["summary"]
    assert {"polynomial", "kind", "architecture", "n_train", "seed", "lr", "final_test_mse",
            "final_test_mse_rel"} <= set(summary.columns)
    assert set(summary.kind) == {"main", "sobol_matched", "size_sweep"}
    assert np.all(np.isfinite(summary[["final_train_mse", "final_test_mse"]].to_numpy()))
    names = list(bell.polynomials(config))
    for name in names:
        mine = summary[(summary.polynomial == name) & (summary.kind != "size_sweep")]
        chosen = mine[mine.chosen]
        assert sorted(chosen.seed) == sorted(config.seeds) and chosen.lr.nunique() == 1
        assert chosen.lr.iloc[0] == out["chosen_lr"]["main"][name]
        assert set(config.lrs) <= set(mine.lr)
    sweep = summary[summary.kind == "size_sweep"]
    for arch in bell.ARCHITECTURES:
        sizes = set(sweep[sweep.architecture == arch].n_train) | ({config.n_train} if arch == "resnet" else set())
        assert sizes == set(config.sizes)
    relative = summary.final_test_mse / summary.final_test_mse_rel
    variance = summary.polynomial.map(lambda p: bell.exact_variance(bell.polynomials(config)[p]))
    np.testing.assert_allclose(relative, variance, rtol=1e-9)
    gaps = out["gaps"]
    assert len(gaps) == (len(names) - 1) * len(config.seeds)
    P, S, E, G, Bp = len(names), len(config.seeds), config.epochs, config.grid_points, config.base_points
    assert out["epoch_test"].shape == (P, S, E + config.decay_epochs + 1)
    assert out["step6_model"].shape == (P, S, 6, G) and out["value_error"].shape == (P, S, Bp, 6)
    assert len(out["sensitivity"]) == len(out["per_variable"]) == 6 * P
    assert len(out["slopes"]) == 2 * (1 + config.size_scrambles) * S
    # the sample-size runs: one per architecture, size polynomial, size seed and size, no other
    rows = bell.size_rows(summary, config)
    cells = rows[["architecture", "polynomial", "seed", "n_train"]]
    assert not cells.duplicated().any()
    assert len(cells) == len(bell.ARCHITECTURES) * len(bell.size_names(config)) * len(config.size_seeds) \
        * len(config.sizes)


def test_a_unit_does_not_depend_on_what_ran_before_it():
    config = dataclasses.replace(bell.PROFILES["smoke"], extend=0)
    task = (config, "size", "shallow", 100, {"B6": 1e-3, "0": 2e-3})
    first = bell.compute(task)["runs"]
    torch.manual_seed(123)
    np.random.seed(7)
    again = bell.compute(task)["runs"]
    np.testing.assert_array_equal(first.final_test, again.final_test)
    np.testing.assert_array_equal(first.fine_train, again.fine_train)


@pytest.mark.parametrize("df", [1, 2, 4, 9, 29])
def test_t_quantile_matches_scipy(df):
    from scipy import stats
    for p in (0.9, 0.975):
        assert bell.t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-6)


def test_gap_summaries_take_geometric_means_and_count_scrambles_as_draws():
    import pandas as pd
    from nnlab.experiments import bell_summary
    # scramble r has ratio 2^(r - 1) for every seed: per-scramble ratios 1/2, 1, 2, 4
    gaps = pd.DataFrame([{"polynomial": str(r), "kind": "main", "seed": s, "ratio": 2.0 ** (r - 1),
                          "train_ratio": 1.0} for r in range(4) for s in range(3)]
                        + [{"polynomial": "sobol", "kind": "sobol_matched", "seed": s, "ratio": 100.0,
                            "train_ratio": 1.0} for s in range(3)])
    by = bell_summary.gap_summary(gaps).set_index("polynomial")
    assert by.loc["3", "ratio"] == pytest.approx(4) and by.loc["3", "low"] == pytest.approx(4)
    effect = bell_summary.scramble_effect(gaps)           # the control is not a random scramble
    assert effect["scrambles"] == 4 and effect["above_one"] == 2
    assert effect["ratio"] == pytest.approx(2 ** 0.5)
    half = bell.t_quantile(0.975, 3) * np.std(np.log(2.0) * np.arange(-1, 3), ddof=1) / 2
    assert effect["high"] == pytest.approx(2 ** 0.5 * np.exp(half))


def test_effective_dimension_counts_equally_important_variables():
    from nnlab.experiments import bell_summary
    linear = tuple((1, tuple(int(k == j) for k in range(6))) for j in range(6))
    assert bell_summary.effective_dimension(linear) == pytest.approx(6)
    assert bell_summary.effective_dimension(linear[:2]) == pytest.approx(2)
