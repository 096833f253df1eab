"""The perceptron rule of seed 002 on AND, OR and XOR; the separation LP; 2-2-1 networks for XOR."""
import numpy as np
import pytest

from nnlab import backprop as bp
from nnlab import perceptron as pc
from nnlab.experiments.perceptron import SEED_REPORTED


def test_and_converges_to_w_2_1_b_minus_3():
    run = pc.perceptron_rule(pc.INPUTS, pc.TARGETS["AND"])
    assert run.status == "converged"
    assert run.w.tolist() == [2.0, 1.0] and run.b == -3.0


def test_or_converges_to_w_1_1_b_minus_1():
    run = pc.perceptron_rule(pc.INPUTS, pc.TARGETS["OR"])
    assert run.status == "converged"
    assert run.w.tolist() == [1.0, 1.0] and run.b == -1.0


@pytest.mark.parametrize("name", ["AND", "OR"])
def test_converged_weights_classify_every_input_and_the_last_epoch_is_error_free(name):
    t = pc.TARGETS[name]
    run = pc.perceptron_rule(pc.INPUTS, t)
    assert np.array_equal(pc.predict(run.w, run.b, pc.INPUTS), t)
    last = run.steps[run.steps[:, 0] == run.epochs]
    assert np.array_equal(last[:, 2], last[:, 3])        # t == a on every sample of the last epoch


def test_first_update_on_and_gives_bias_minus_one():
    # (0,0) with w = 0, b = 0: w.x + b = 0 >= 0 so a = 1, t = 0, hence b <- 0 + (0 - 1) = -1 (seed 002 writes +1)
    first = pc.perceptron_rule(pc.INPUTS, pc.TARGETS["AND"]).steps[0]
    assert (first[2], first[3], first[6]) == (0, 1, -1.0)


def test_updates_from_zero_with_alpha_one_are_integers():
    for t in pc.TARGETS.values():
        steps = pc.perceptron_rule(pc.INPUTS, t).steps
        assert np.array_equal(steps[:, 4:], np.round(steps[:, 4:]))


@pytest.mark.parametrize("name", ["AND", "OR"])
def test_seed_reported_weights_separate_but_are_unreachable(name):
    w1, w2, b = SEED_REPORTED[name]
    assert np.array_equal(pc.predict(np.array([w1, w2]), b, pc.INPUTS), pc.TARGETS[name])
    steps = pc.perceptron_rule(pc.INPUTS, pc.TARGETS[name]).steps
    assert not any(np.allclose(row[4:], (w1, w2, b)) for row in steps)


def test_xor_cycle_is_detected_and_really_repeats():
    run = pc.perceptron_rule(pc.INPUTS, pc.TARGETS["XOR"])
    assert run.status == "cycle" and run.cycle_length >= 1
    # replay: the state at the start of epoch cycle_start comes back cycle_length epochs later
    def start_state(epoch):
        before = run.steps[run.steps[:, 0] == epoch - 1]
        return tuple(before[-1, 4:]) if len(before) else (0.0, 0.0, 0.0)
    assert start_state(run.cycle_start) == start_state(run.cycle_start + run.cycle_length)
    in_cycle = run.steps[run.steps[:, 0] >= run.cycle_start]
    assert np.any(in_cycle[:, 2] != in_cycle[:, 3])      # errors keep happening: no convergence


def test_minus_sign_rule_runs_away():
    short = pc.perceptron_rule(pc.INPUTS, pc.TARGETS["AND"], alpha=-1.0, max_epochs=10)
    long = pc.perceptron_rule(pc.INPUTS, pc.TARGETS["AND"], alpha=-1.0, max_epochs=20)
    assert short.status == long.status == "max_epochs"
    assert abs(long.b) > abs(short.b) > 0


@pytest.mark.parametrize("name,feasible", [("AND", True), ("OR", True), ("XOR", False)])
def test_separation_lp_status(name, feasible):
    res = pc.separation_lp(pc.INPUTS, pc.TARGETS[name])
    assert res.status == (0 if feasible else 2)
    if feasible:
        margins = (2 * pc.TARGETS[name] - 1) * (pc.INPUTS @ res.x[:2] + res.x[2])
        assert margins.min() >= 1 - 1e-9


def test_xor_inequalities_have_a_farkas_certificate():
    # the signed constraints s_i (w.x_i + b) >= 1 summed with weights 1 give 0 >= 4
    s = 2 * pc.TARGETS["XOR"] - 1
    rows = s[:, None] * np.hstack([pc.INPUTS, np.ones((4, 1))])
    assert np.array_equal(rows.sum(axis=0), np.zeros(3))


def test_hand_set_network_computes_xor_and_separates_it_in_hidden_space():
    params = pc.hand_set_xor_network()
    out = bp.output(params, pc.INPUTS, "sigmoid")[:, 0]
    assert np.array_equal(out > 0.5, pc.TARGETS["XOR"].astype(bool))
    hidden = pc.hidden_representation(params)
    assert pc.separation_lp(hidden, pc.TARGETS["XOR"]).status == 0


def test_training_reduces_the_cost_of_a_2_2_1_network():
    _, costs = pc.train_xor_network(seed=3, epochs=300, lr=2.0)
    assert costs[-1] < costs[0]
