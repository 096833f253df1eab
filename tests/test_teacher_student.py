"""Teacher/student (Challenge 2A): teacher, target scaling, symmetry tools, distances, the pipeline."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from nnlab.config import ConfigError, validate
from nnlab.experiments import teacher_student as ts
from nnlab.models import Net, forward


def as_torch(layers):
    """One network's numpy layers as the engine's stacked parameters (M = 1)."""
    return [(torch.tensor(W)[None], torch.tensor(b)[None]) for W, b in layers]


def random_layers(widths, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(o, i)), rng.normal(size=o)) for i, o in zip(widths[:-1], widths[1:])]


# ----------------------------------------------------------------------------- architectures, teacher

def test_parameter_counts_equal_torch_linear_stacks():
    for net in (ts.TEACHER, *ts.STUDENTS.values()):
        layers = [torch.nn.Linear(i, o) for i, o in net.layers]
        assert ts.count_params(net) == sum(p.numel() for lin in layers for p in lin.parameters())
    n = {name: ts.count_params(net) for name, net in ts.STUDENTS.items()}
    assert n["S_u"] < ts.count_params(ts.TEACHER) == n["S_e"] < n["S_o"]


def test_teacher_is_deterministic_standard_normal_and_seed_dependent():
    a, b, c = ts.make_teacher(3), ts.make_teacher(3), ts.make_teacher(4)
    assert all(torch.equal(x, y) for la, lb in zip(a, b) for x, y in zip(la, lb))
    assert not torch.equal(a[0][0], c[0][0])
    values = torch.cat([t.ravel() for layer in a for t in layer]).numpy()
    assert values.size == ts.count_params(ts.TEACHER)
    assert stats.kstest(values, "norm").pvalue > 1e-3          # i.i.d. N(0, 1), not a fan-in scaled init


def test_sampler_gives_standardised_inputs_and_labels():
    teacher = ts.make_teacher(0)
    sample = ts.online_sampler(teacher, mean=5.0, std=20.0)
    z, y = sample(torch.Generator().manual_seed(7), 4096)
    x = ts.draw_inputs(torch.Generator().manual_seed(7), 4096)      # the same draws, raw
    assert z.shape == (4096, ts.N_IN) and y.shape == (4096, 1)
    assert 0 <= x.min() and x.max() <= ts.X_MAX
    assert torch.allclose(z, ts.standardise(x))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01               # zero mean, unit variance
    assert torch.allclose(y * 20.0 + 5.0, ts.label(teacher, x), rtol=1e-5, atol=1e-3)
    raw_x, _ = ts.online_sampler(teacher, 5.0, 20.0, standardise_inputs=False)(
        torch.Generator().manual_seed(7), 4096)
    assert torch.equal(raw_x, x)


# ----------------------------------------------------------------------------- symmetries

def test_teacher_units_and_canonical_form_keep_the_function():
    net = Net((6, 5, 4, 1))
    layers = random_layers(net.widths)
    x = ts.X_MAX * torch.rand(1, 32, 6, dtype=torch.float64)
    student_out = forward(net, as_torch(layers), ts.standardise(x))     # learns (y - 3) / 7 from z
    in_units = ts.to_teacher_units(layers, mean=3.0, std=7.0)
    assert torch.allclose(forward(net, as_torch(in_units), x), 7.0 * student_out + 3.0)
    raw = ts.to_teacher_units(layers, mean=3.0, std=7.0, standardised_inputs=False)
    assert torch.allclose(forward(net, as_torch(raw), x), 7.0 * forward(net, as_torch(layers), x) + 3.0)
    canon = ts.canonical(in_units)
    assert torch.allclose(forward(net, as_torch(canon), x), 7.0 * student_out + 3.0)
    for W, b in canon[:-1]:     # every hidden unit's incoming (w, b) has norm sqrt(fan_in + 1)
        assert np.allclose(np.sqrt((W ** 2).sum(1) + b ** 2), np.sqrt(W.shape[1] + 1))
    # the canonical form is the same for every positively rescaled copy of the network
    rescaled = [(W * 3.0, b * 3.0) if l == 0 else (W / 3.0, b) if l == 1 else (W, b)
                for l, (W, b) in enumerate(in_units)]
    assert all(np.allclose(p, q) for lp, lq in zip(ts.canonical(rescaled), canon) for p, q in zip(lp, lq))


def test_matching_recovers_a_planted_permutation_and_positive_rescaling():
    teacher_W = ts.make_teacher(0)[0][0][0].numpy()                 # 75 first-layer units
    rng = np.random.default_rng(1)
    perm = rng.permutation(len(teacher_W))
    scale = rng.uniform(0.1, 10.0, size=len(teacher_W))
    student_W = teacher_W[perm] * scale[:, None]
    match, cos = ts.match_units(student_W, teacher_W)
    assert np.array_equal(perm[match], np.arange(len(teacher_W)))   # student unit match[j] is teacher j
    assert np.allclose(cos, 1.0)
    student_W[:5] *= -1                                             # negative rescaling is no symmetry
    _, cos = ts.match_units(student_W, teacher_W)
    assert np.sum(cos > 0.9) == len(teacher_W) - 5


def test_matching_with_fewer_student_units_leaves_teacher_units_unmatched():
    teacher_W = ts.make_teacher(0)[0][0][0].numpy()
    match, cos = ts.match_units(teacher_W[:10] * 2.0, teacher_W)
    assert np.array_equal(match[:10], np.arange(10)) and np.all(match[10:] == -1)
    assert np.allclose(cos[:10], 1.0) and np.all(np.isnan(cos[10:]))


# ----------------------------------------------------------------------------- distances

def test_distances_vanish_for_identical_samples():
    x = np.random.default_rng(0).normal(size=500)
    row = ts.describe(x, x.copy())
    assert row["w1_teacher"] == 0 and row["ks_teacher"] == 0 and row["n"] == 500


@pytest.mark.parametrize("x", [-1.3, 0.0, 0.4, 2.5])
def test_distances_to_normal_of_one_point_are_closed_form(x):
    w1, ks = ts.distances_to_normal([x])
    phi, Phi = stats.norm.pdf(x), stats.norm.cdf(x)
    assert w1 == pytest.approx(2 * phi + x * (2 * Phi - 1))          # E|x - Z|
    assert ks == pytest.approx(max(Phi, 1 - Phi))


def test_distances_to_normal_agree_with_scipy():
    x = np.random.default_rng(2).standard_t(df=4, size=3000) * 0.7 + 0.2
    w1, ks = ts.distances_to_normal(x)
    assert ks == pytest.approx(stats.kstest(x, "norm").statistic)
    grid = stats.norm.ppf((np.arange(200_000) + 0.5) / 200_000)     # fine quantile grid of N(0, 1)
    assert w1 == pytest.approx(stats.wasserstein_distance(x, grid), abs=2e-3)


def test_distribution_rows_pair_layers_of_identical_shape():
    teacher = ts.model_params(ts.make_teacher(0), 0)
    student = random_layers(ts.STUDENTS["S_u"].widths)
    rows = {(r["layer"], r["kind"]): r for r in ts.distribution_rows(student, teacher)}
    assert np.isnan(rows["L1", "weight"]["w1_teacher"])               # 10 x 100 has no teacher twin
    assert np.isfinite(rows["L2", "weight"]["w1_teacher"])            # 1 x 10 is the teacher's output layer
    assert rows["all", "all"]["n"] == ts.count_params(ts.STUDENTS["S_u"])
    self_rows = ts.distribution_rows(teacher, teacher)
    assert all(r["w1_teacher"] == 0 and r["ks_teacher"] == 0 for r in self_rows)


# ----------------------------------------------------------------------------- curves

def test_last_fifth_change_and_means():
    steps = np.arange(1000)
    flat = np.ones(1000)
    assert ts.last_fifth_change(flat, steps, 1000) == 0
    falling = np.where(steps < 800, 1.1, 1.0)
    assert ts.last_fifth_change(falling, steps, 1000) == pytest.approx(0.1)
    losses = np.stack([falling, np.full(1000, np.nan)])
    assert np.allclose(ts.last_fifth_mean(losses), [1.0, np.inf])   # a diverged run never wins
    means, centres = ts.block_means(np.arange(10.0), points=5)
    assert np.allclose(means, [0.5, 2.5, 4.5, 6.5, 8.5]) and np.allclose(centres, means)


# ----------------------------------------------------------------------------- configs

@pytest.mark.parametrize("changes, words", [
    ({"lrs": (1e-3, 0.0)}, "lrs"), ({"batch_size": 0}, "batch_size"), ({"match_cos": 1.5}, "match_cos"),
    ({"optimizer": "lbfgs"}, "optimizer"), ({"steps": (100, 0, 100)}, "steps"),
    ({"anneal_factor": 0.0}, "anneal_factor"), ({"anneal_end": 1.5}, "anneal_end"), ({"workers": 3}, "workers"),
])
def test_bad_field_values_are_rejected(changes, words):
    with pytest.raises(ConfigError, match=words):
        validate(dataclasses.replace(ts.Config(), **changes), "teacher_student")


@pytest.mark.parametrize("changes, words", [
    ({"steps": (100, 100)}, "one value per student"), ({"evals": 60, "steps": (50, 50, 50)}, "evals"),
    ({"seeds": (0, 0, 1)}, "repeat"), ({"anneal_start": 0.7, "anneal_end": 0.6}, "anneal_start"),
])
def test_inconsistent_configs_are_rejected(changes, words):
    with pytest.raises(ConfigError, match=words):
        ts.check(dataclasses.replace(ts.Config(), **changes))


def test_final_runs_hold_decay_then_hold_the_learning_rate():
    config = ts.Config()
    for steps in config.steps:
        factor = ts.schedule(config, steps)
        n = ts.constant_steps(config, steps)
        assert n == round(config.anneal_start * steps) and np.all(factor[:n] == 1) and factor[n] < 1
        assert np.all(np.diff(factor) <= 0)
        # both fifths that the quasi-stationarity criterion compares lie in the held phase
        assert np.allclose(factor[int(0.6 * steps):], config.anneal_factor)


def test_profiles_are_valid():
    for config in ts.PROFILES.values():
        validate(config, "teacher_student")
        ts.check(config)
    assert len(ts.Config().lrs) >= 5 and len(ts.Config().seeds) >= 3


# ----------------------------------------------------------------------------- the pipeline (smoke)

@pytest.fixture(scope="module")
def smoke():
    torch.set_num_threads(1)
    return ts.PROFILES["smoke"], ts.run(ts.PROFILES["smoke"])


def test_smoke_summary_has_one_row_per_student_and_seed(smoke):
    config, res = smoke
    summary = res["summary"]
    for column in ("student", "params", "lr", "seed", "steps", "final_test_loss"):
        assert column in summary
    assert list(zip(summary.student, summary.seed)) == [(s, seed) for s in ts.STUDENTS for seed in config.seeds]
    assert set(summary.lr) <= set(config.lrs)
    assert np.allclose(summary.final_test_loss, summary.final_test_loss_std * res["target_std"] ** 2)
    assert len(res["sweep"]) == len(ts.STUDENTS) * len(config.lrs) * len(config.seeds)


def test_smoke_teacher_stays_frozen_and_students_are_stored_in_teacher_units(smoke):
    config, res = smoke
    teacher = ts.make_teacher(config.teacher_seed)
    for l, (W, b) in enumerate(teacher):
        assert np.array_equal(res[f"T_weight_L{l + 1}"], W[0].numpy())
        assert np.array_equal(res[f"T_bias_L{l + 1}"], b[0].numpy())
    for name, net in ts.STUDENTS.items():
        shapes = [res[f"{name}_weight_L{l + 1}"].shape for l in range(len(net.layers))]
        assert shapes == [(len(config.seeds), o, i) for i, o in net.layers]
        cos = res[f"{name}_matched_cos"]
        assert cos.shape == (len(config.seeds), 75) and np.nanmax(np.abs(cos)) <= 1 + 1e-6


def test_smoke_constant_rate_change_is_measured_on_the_constant_part(smoke):
    config, res = smoke
    for name, steps in zip(ts.STUDENTS, config.steps):
        rows = res["summary"][res["summary"].student == name]
        assert np.all(np.isfinite(rows.constant_change)) and np.all(rows.steps == steps)


def test_students_in_two_processes_give_the_same_result_as_in_one():
    config = dataclasses.replace(ts.PROFILES["smoke"], steps=(30, 30, 30), sweep_steps=(10, 10, 10))
    one = ts.run(config)
    two = ts.run(dataclasses.replace(config, workers=2))
    for key, value in one.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, two[key], err_msg=key)
    pd.testing.assert_frame_equal(one["summary"], two["summary"])
    pd.testing.assert_frame_equal(one["distances"], two["distances"])


def test_linear_baseline_is_exact_for_an_affine_target_and_sees_the_noise_otherwise():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(4000, 5, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0], [0.0]])
    affine = X @ w + 7.0
    assert ts.linear_baseline_mse(X[:2000], affine[:2000], X[2000:], affine[2000:]) < 1e-8
    noisy = affine + 0.3 * torch.randn(4000, 1, generator=g)
    mse = ts.linear_baseline_mse(X[:2000], noisy[:2000], X[2000:], noisy[2000:])
    assert mse == pytest.approx(0.09, rel=0.1)   # the noise variance, up to sampling error
