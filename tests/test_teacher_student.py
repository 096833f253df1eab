"""Teacher/student (Challenge 2A): students, budgets, data, symmetry tools, distances, the pipeline."""
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
from nnlab.train import num_threads
from nnlab.specialisation import canonical, match_two_layers, match_units, recovery_step


def as_torch(layers):
    """One network's numpy layers as the engine's stacked parameters (M = 1)."""
    return [(torch.tensor(W)[None], torch.tensor(b)[None]) for W, b in layers]


def random_layers(widths, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(o, i)), rng.normal(size=o)) for i, o in zip(widths[:-1], widths[1:])]


# ----------------------------------------------------------------------------- students and budgets

def test_width_family_parameter_counts():
    config = ts.Config()
    nets = ts.students(config)
    for net in nets.values():       # weights and biases, as a stack of torch.nn.Linear layers counts them
        layers = [torch.nn.Linear(i, o) for i, o in net.layers]
        assert net.n_params() == sum(p.numel() for lin in layers for p in lin.parameters())
    n = {name: net.n_params() for name, net in nets.items()}
    assert n["S_e"] == ts.TEACHER.n_params() == 101 * 75 + 76 * 50 + 51 * 10 + 11
    assert n["S_u"] == 101 * 10 + 11 and n["S_o"] == 101 * 200 + 2 * 201 * 200 + 201 * 100 + 101
    assert list(n.values()) == sorted(n.values())                 # ordered by size
    assert len(nets) >= 8 and set(ts.CENTRAL) <= set(nets)
    ratios = np.array(list(n.values())) / n["S_e"]
    assert ratios.min() < 0.12 and ratios.max() > 8               # about 0.1 to about 10 times the teacher
    assert ts.scaled(2.0).widths == (100, 150, 100, 20, 1) and ts.scaled(0.01).widths == (100, 1, 1, 1, 1)


def test_equal_compute_steps_spend_the_reference_flops():
    config = ts.Config()
    nets = ts.students(config)
    reference = config.steps * ts.flops_per_step(nets[config.compute_reference], config.batch_size)
    for name, net in nets.items():
        steps = ts.horizon(config, name, "compute")
        per_step = ts.flops_per_step(net, config.batch_size)
        assert abs(steps * per_step - reference) <= per_step / 2 + 1e-6   # equal up to rounding to a step
        assert ts.horizon(config, name, "steps") == config.steps
    assert ts.horizon(config, "S_u", "compute") > config.steps > ts.horizon(config, "S_o", "compute")


def test_flops_per_sample_count_the_multiply_adds_of_one_training_step():
    # forward W x for every layer, backward dL/dW for every layer, dL/dx for every layer but the first
    net = ts.scaled(0.5)
    macs = sum(i * o for i, o in net.layers)
    assert net.flops_per_sample() == 2 * (3 * macs - net.widths[0] * net.widths[1])


# ----------------------------------------------------------------------------- teacher and data

def test_teacher_is_deterministic_standard_normal_and_seed_dependent():
    a, b, c = ts.make_teacher(3), ts.make_teacher(3), ts.make_teacher(4)
    assert all(torch.equal(x, y) for la, lb in zip(a, b) for x, y in zip(la, lb))
    assert not torch.equal(a[0][0], c[0][0])
    values = torch.cat([t.ravel() for layer in a for t in layer]).numpy()
    assert values.size == ts.TEACHER.n_params()
    assert stats.kstest(values, "norm").pvalue > 1e-3          # i.i.d. N(0, 1), not a fan-in scaled init


def stream_batch(runs, config=None, steps=1, standardise_inputs=True):
    config = config or dataclasses.replace(ts.PROFILES["smoke"], test_size=4000)
    data = ts.prepare(config)
    it = iter(ts.TeacherStream(data["teachers"], runs, 256, standardise_inputs))
    batches = [next(it) for _ in range(steps)]
    return data, torch.cat([x for x, _ in batches], 1), torch.cat([y for _, y in batches], 1)


def test_stream_gives_each_model_its_seeds_inputs_and_its_teachers_standardised_labels():
    runs = [ts.Run(0, 0, 1e-3), ts.Run(1, 0, 1e-2), ts.Run(0, 1, 1e-3)]
    data, z, y = stream_batch(runs, steps=60)             # more than one chunk of batches
    assert z.shape == (3, 60 * 256, ts.N_IN) and y.shape == (3, 60 * 256, 1)
    assert torch.equal(z[0], z[1]) and not torch.equal(z[0], z[2])     # inputs follow the seed
    x = z * ts.X_STD + ts.X_MEAN
    assert 0 <= x.min() and x.max() <= ts.X_MAX + 1e-5
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    for m, r in enumerate(runs):
        t = data["teachers"][r.teacher]
        assert torch.allclose(y[m] * t["std"] + t["mean"], ts.label(t["params"], x[m]), rtol=1e-4, atol=1e-2)
        assert abs(float(y[m].mean())) < 0.1 and abs(float(y[m].std()) - 1) < 0.1   # standardised target
    _, raw, _ = stream_batch(runs[:1], steps=2, standardise_inputs=False)
    assert torch.allclose(raw[0], x[0, :512], atol=1e-5)


@pytest.mark.parametrize("snr", [1.0, 10.0])
def test_label_noise_has_the_stated_signal_to_noise_ratio(snr):
    clean, noisy = ts.Run(0, 0, 1e-3), ts.Run(0, 0, 1e-3, snr)
    _, z, y = stream_batch([clean, noisy], steps=100)     # 25,600 labels
    noise = y[1] - y[0]                                   # same inputs, same teacher: the noise alone
    measured = float(y[0].var() / noise.var())
    assert measured == pytest.approx(snr, rel=0.05)
    assert abs(float(noise.mean())) < 4 * float(noise.std()) / len(noise) ** 0.5
    assert ts.noise_sd(float("inf")) == 0


# ----------------------------------------------------------------------------- symmetries and overlaps

def test_teacher_units_and_canonical_form_keep_the_function():
    net = Net((6, 5, 4, 1))
    layers = random_layers(net.widths)
    x = ts.X_MAX * torch.rand(1, 32, 6, dtype=torch.float64)
    student_out = forward(net, as_torch(layers), ts.standardise(x))     # learns (y - 3) / 7 from z
    in_units = ts.to_teacher_units(layers, mean=3.0, std=7.0)
    assert torch.allclose(forward(net, as_torch(in_units), x), 7.0 * student_out + 3.0)
    canon = canonical(in_units)
    assert torch.allclose(forward(net, as_torch(canon), x), 7.0 * student_out + 3.0)
    for W, b in canon[:-1]:     # every hidden unit's incoming (w, b) has norm sqrt(fan_in + 1)
        assert np.allclose(np.sqrt((W ** 2).sum(1) + b ** 2), np.sqrt(W.shape[1] + 1))
    rescaled = [(W * 3.0, b * 3.0) if l == 0 else (W / 3.0, b) if l == 1 else (W, b)
                for l, (W, b) in enumerate(in_units)]
    assert all(np.allclose(p, q) for lp, lq in zip(canonical(rescaled), canon) for p, q in zip(lp, lq))


def embed_teacher_in_s_o(teacher, rng):
    """An S_o-shaped network computing the teacher exactly: every layer padded with units whose
    outgoing weights are zero, the extra (fourth) hidden layer passing the teacher's ten non-negative
    third-layer outputs through unchanged (relu(h) = h for h >= 0); units permuted and rescaled."""
    widths = ts.S_O.widths
    layers = []
    for l, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        W, b = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
        layers.append([W, b])
    for l in range(3):                     # the teacher's three hidden layers in the first units
        Wt, bt = teacher[l]
        o, i = Wt.shape
        layers[l][0][:o, :i], layers[l][1][:o] = Wt, bt
        if l > 0:
            layers[l][0][:o, i:] = 0.0     # nothing from the padding units
    layers[3][0][:10, :] = 0.0
    layers[3][0][:10, :10], layers[3][1][:10] = np.eye(10), 0.0     # identity on non-negative inputs
    layers[4][0][:] = 0.0
    layers[4][0][0, :10], layers[4][1][:] = teacher[3][0][0], teacher[3][1]
    # a permutation and a positive rescaling of the first two hidden layers leave the function alone
    for l in range(2):
        perm, c = rng.permutation(widths[l + 1]), rng.uniform(0.2, 5.0, widths[l + 1])
        layers[l][0], layers[l][1] = layers[l][0][perm] * c[:, None], layers[l][1][perm] * c
        layers[l + 1][0] = layers[l + 1][0][:, perm] / c[None, :]
    return [tuple(p) for p in layers]


def test_overlap_is_one_for_a_student_that_copies_the_teacher():
    teacher = ts.model_params(ts.make_teacher(0), 0)
    rng = np.random.default_rng(1)
    # S_e: the teacher's units permuted and positively rescaled
    perm, c = rng.permutation(75), rng.uniform(0.1, 10.0, 75)
    copy = [(teacher[0][0][perm] * c[:, None], teacher[0][1][perm] * c),
            (teacher[1][0][:, perm] / c[None, :], teacher[1][1]), *teacher[2:]]
    match, cos = match_units(copy[0][0], teacher[0][0])
    assert np.array_equal(perm[match], np.arange(75)) and np.allclose(cos, 1.0)
    cos1, cos2 = match_two_layers(copy, teacher)
    assert np.allclose(cos1, 1.0) and np.allclose(cos2, 1.0)
    # S_o contains the teacher: same function, and overlap 1 in both layers
    s_o = embed_teacher_in_s_o(teacher, rng)
    x = ts.X_MAX * torch.rand(1, 500, ts.N_IN, dtype=torch.float64)
    assert torch.allclose(forward(ts.S_O, as_torch(s_o), x), forward(ts.TEACHER, as_torch(teacher), x))
    cos1, cos2 = match_two_layers(s_o, teacher)
    assert np.allclose(cos1, 1.0) and np.allclose(cos2, 1.0)
    # a student that does not copy the teacher has overlaps well below 1
    other = ts.model_params(ts.make_teacher(1), 0)
    cos1, cos2 = match_two_layers(other, teacher)
    assert np.median(cos1) < 0.5 and np.median(cos2) < 0.5


def test_negative_rescaling_is_no_symmetry_and_fewer_units_leave_teacher_units_unmatched():
    teacher_W = ts.make_teacher(0)[0][0][0].numpy()
    flipped = teacher_W.copy()
    flipped[:5] *= -1
    _, cos = match_units(flipped, teacher_W)
    assert np.sum(cos > 0.9) == len(teacher_W) - 5
    match, cos = match_units(teacher_W[:10] * 2.0, teacher_W)
    assert np.array_equal(match[:10], np.arange(10)) and np.all(match[10:] == -1)
    assert np.allclose(cos[:10], 1.0) and np.all(np.isnan(cos[10:]))
    with pytest.raises(ValueError, match="fewer than the teacher"):
        match_two_layers([(teacher_W[:10], np.zeros(10)), (np.ones((1, 10)), np.zeros(1))],
                         ts.model_params(ts.make_teacher(0), 0))


def test_recovery_step_is_the_first_snapshot_from_which_the_overlap_stays_above():
    steps = [0, 10, 100, 1000]
    overlaps = np.array([[0.1, 0.95, 0.2, 0.1],
                         [0.95, 0.5, 0.3, 0.1],
                         [0.95, 0.95, 0.91, 0.1],
                         [0.96, 0.97, 0.92, 0.95]])
    assert np.allclose(recovery_step(overlaps, steps, 0.9), [10, 100, 100, 1000])
    overlaps[-1, 2] = 0.5
    assert np.isnan(recovery_step(overlaps, steps, 0.9)[2])


# ----------------------------------------------------------------------------- distances and curves

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


def test_two_sample_floor_is_about_sqrt2_times_the_one_sample_floor():
    rng = np.random.default_rng(3)
    one = [ts.describe(rng.normal(size=1000))["w1_normal"] for _ in range(200)]
    two = [ts.describe(rng.normal(size=1000), rng.normal(size=1000))["w1_teacher"] for _ in range(200)]
    assert np.mean(two) / np.mean(one) == pytest.approx(2 ** 0.5, rel=0.1)


def test_last_fifth_change_and_log_block_means():
    falling = np.where(np.arange(1000) < 800, 1.1, 1.0)
    assert ts.last_fifth_change(np.ones(1000)) == 0
    assert ts.last_fifth_change(falling) == pytest.approx(0.1)
    assert np.allclose(ts.last_fifth_mean(np.stack([falling, np.full(1000, np.nan)])), [1.0, np.inf])
    loss = np.arange(1, 1001, dtype=float)[None].repeat(2, 0)       # loss = step number
    means, centres = ts.log_block_means(loss, points=30)
    n = np.count_nonzero(np.isfinite(centres))
    assert centres[0] == 1 and np.allclose(means[0, :n], centres[:n])  # mean of a block = its mean step
    assert np.all(np.diff(centres[:n]) > 0) and np.all(np.isnan(centres[n:]))


# ----------------------------------------------------------------------------- configs

@pytest.mark.parametrize("changes, words", [
    ({"lrs": (1e-3, 0.0)}, "lrs"), ({"batch_size": 0}, "batch_size"), ({"match_cos": 1.5}, "match_cos"),
    ({"steps": 0}, "steps"), ({"snrs": (-1.0,)}, "snrs"), ({"compute_reference": "S_x"}, "compute_reference"),
    ({"anneal_factor": 0.0}, "anneal_factor"), ({"anneal_end": 1.5}, "anneal_end"), ({"scales": (0.0, 1.0)}, "scales"),
])
def test_bad_field_values_are_rejected(changes, words):
    with pytest.raises(ConfigError, match=words):
        validate(dataclasses.replace(ts.Config(), **changes), "teacher_student")


@pytest.mark.parametrize("changes, words", [
    ({"scales": (0.5, 2.0)}, "must contain 1.0"), ({"seeds": (0, 0, 1)}, "repeat"), ({"teacher_seeds": ()}, "empty"),
    ({"anneal_start": 0.7, "anneal_end": 0.6}, "anneal_start"),
])
def test_inconsistent_configs_are_rejected(changes, words):
    with pytest.raises(ConfigError, match=words):
        ts.check(dataclasses.replace(ts.Config(), **changes))


def test_runs_hold_decay_then_hold_the_learning_rate():
    config = ts.Config()
    for steps in {ts.horizon(config, n, b) for n in ts.students(config) for b in ("steps", "compute")}:
        factor = ts.schedule(config, steps)
        n = ts.constant_steps(config, steps)
        assert abs(n - config.anneal_start * steps) <= 1 and np.all(factor[:n] == 1) and factor[n] < 1
        assert np.all(np.diff(factor) <= 0)
        assert np.allclose(factor[int(np.ceil(0.6 * steps)):], config.anneal_factor)   # the last two fifths


def test_profiles_are_valid_and_full_keeps_three_teachers_and_seeds():
    for config in ts.PROFILES.values():
        validate(config, "teacher_student")
        ts.check(config)
    full = ts.PROFILES["full"]
    assert len(full.teacher_seeds) >= 3 and len(full.seeds) >= 3 and len(ts.students(full)) >= 8
    assert np.allclose(np.diff(np.log10(full.lrs)), 0.25)           # a quarter-decade grid


# ----------------------------------------------------------------------------- the pipeline (smoke)

@pytest.fixture(scope="module")
def smoke():
    return ts.PROFILES["smoke"], ts.run(ts.PROFILES["smoke"])


def test_smoke_summary_has_one_row_per_run(smoke):
    config, res = smoke
    summary = res["summary"]
    for column in ("teacher_seed", "student", "params", "widths", "seed", "steps", "flops", "lr", "noise",
                   "final_test_loss", "final_test_loss_std"):
        assert column in summary
    sweep = summary[summary.kind == "sweep"]
    n_budgets = 2 * len(ts.students(config)) - 1
    assert len(sweep) == n_budgets * len(config.lrs) * len(config.teacher_seeds)
    assert set(summary.lr) <= set(config.lrs)
    s2 = summary.teacher_seed.map(res["teachers"].set_index("teacher_seed").target_std) ** 2
    assert np.allclose(summary.final_test_loss, summary.final_test_loss_std * s2)
    chosen = sweep[sweep.chosen]
    assert len(chosen.groupby(["student", "budget"]).lr.unique()) == n_budgets   # one rate per student, budget
    for name in ts.CENTRAL:   # the central students: every teacher x seed at the chosen rate
        rows = summary[(summary.student == name) & (summary.budget == "steps") & (summary.noise == 0) & summary.chosen]
        assert sorted(zip(rows.teacher_seed, rows.seed)) == [(t, s) for t in config.teacher_seeds for s in config.seeds]
    assert res["curves"].shape == (len(summary), ts.CURVE_POINTS)


def test_smoke_teacher_stays_frozen_and_students_are_stored_in_teacher_units(smoke):
    config, res = smoke
    teacher = ts.make_teacher(config.teacher_seeds[0])
    for l, (W, b) in enumerate(teacher):
        assert np.array_equal(res[f"T_weight_L{l + 1}"], W[0].numpy())
    for name in ts.CENTRAL:
        net = ts.students(config)[name]
        shapes = [res[f"{name}_weight_L{l + 1}"].shape for l in range(len(net.layers))]
        assert shapes == [(len(config.seeds), o, i) for i, o in net.layers]
        cos = res[f"{name}_overlap_L1"]
        assert cos.shape == (len(config.teacher_seeds), len(config.seeds), 75) and np.nanmax(np.abs(cos)) <= 1 + 1e-6
    series = res["S_o_overlap_series"]
    assert series.shape == (len(config.teacher_seeds), len(res["overlap_steps"]), 75)
    assert res["overlap_steps"][0] == 0 and res["overlap_steps"][-1] == config.steps
    assert np.array_equal(series[:, -1], res["S_o_overlap_L1"][:, 0])


def test_prefix_rerun_reproduces_the_start_of_the_run():
    # the same seeds, data and schedule: the same run, up to float rounding (a batch of a different
    # number of models may sum in a different order)
    config = dataclasses.replace(ts.PROFILES["smoke"], steps=12)
    data = ts.prepare(config)
    runs = [ts.Run(t, 0, lr) for t in config.teacher_seeds for lr in config.lrs]
    with ts.num_threads(1):
        whole = ts.fit(ts.TEACHER, runs, 12, config, data)
        prefix = ts.fit(ts.TEACHER, runs[1:2], (6, 12), config, data)
        other = ts.fit(ts.TEACHER, runs[1:2], 6, config, data)    # a 6-step run of its own decays earlier
    np.testing.assert_allclose(whole.train_loss[1:2, :6], prefix.train_loss, rtol=1e-5)
    assert not np.allclose(whole.train_loss[1:2, 3:6], other.train_loss[:, 3:6], rtol=1e-3)


def test_the_linear_baseline_is_the_same_number_every_time():
    """Computed in the process that runs the experiment, wherever the allocator puts its arrays: with
    torch's lstsq the same call gave 10 different values in 30 (one thread, allocations in between)."""
    g = torch.Generator().manual_seed(0)
    X, Xt = torch.randn(20000, 100, generator=g), torch.randn(5000, 100, generator=g)
    y, yt = X @ torch.randn(100, generator=g) + torch.randn(20000, generator=g), Xt @ torch.randn(100, generator=g)
    sizes, values, junk = np.random.default_rng(0).integers(1, 5000, 30), set(), []
    with num_threads(2):
        for size in sizes:
            junk.append(torch.empty(int(size)))  # moves the next allocations
            values.add(ts.linear_baseline_mse(X, y, Xt, yt))
    assert len(values) == 1
