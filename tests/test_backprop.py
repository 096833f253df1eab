"""Backpropagation in matrix form and the input gradient of seed 004, against torch autograd and finite
differences; seed 001's eqs. 1-2 (nnlab.basic_net) against autograd and against the general pass."""
import numpy as np
import pytest

from nnlab import backprop as bp
from nnlab import basic_net
from nnlab.experiments.backprop import activations_for, as_layers, autograd_two_layer

NETWORKS = [(act, depth, out) for act in ("sigmoid", "tanh", "relu") for depth in (2, 3, 6)
            for out in ("activation", "linear")]


def network(depth, n_in=7, width=9, seed=0):
    rng = np.random.default_rng(seed + depth)
    return bp.random_network((n_in,) + (width,) * (depth - 2) + (1,), rng), rng


def assert_close_relative(a, b, rtol=1e-6):
    scale = np.abs(b).max()
    assert np.abs(a - b).max() <= rtol * scale + 1e-15, (np.abs(a - b).max(), scale)


@pytest.mark.parametrize("name,depth,out", NETWORKS)
def test_input_gradient_equals_autograd_and_central_differences(name, depth, out):
    params, rng = network(depth)
    act = activations_for(name, depth, out)
    for _ in range(3):
        x = rng.normal(size=7)
        g = bp.input_gradient(params, x, act)
        assert_close_relative(g, bp.autograd_input_gradient(params, x, act))
        g_fd = bp.central_difference(lambda v: bp.output(params, v[None, :], act)[0, 0], x)
        assert_close_relative(g, g_fd, rtol=1e-5)


def test_input_gradient_is_not_trivially_zero():
    # a linear-output ReLU network with positive weights has an active path: the check above is not 0 = 0
    params = [(np.abs(W), np.abs(b)) for W, b in network(4)[0]]
    g = bp.input_gradient(params, np.ones(7), ("relu", "relu", "identity"))
    assert np.all(g > 0)


@pytest.mark.parametrize("name,depth,out", NETWORKS)
def test_cost_gradients_equal_autograd(name, depth, out):
    params, rng = network(depth)
    act = activations_for(name, depth, out)
    X, Y = rng.normal(size=(11, 7)), rng.normal(size=(11, 1))
    for (dW, db), (rW, rb) in zip(bp.cost_gradients(params, X, Y, act),
                                  bp.autograd_cost_gradients(params, X, Y, act)):
        assert_close_relative(dW, rW)
        assert_close_relative(db, rb)


def test_cost_gradient_matches_finite_difference_of_the_cost():
    params, rng = network(4)
    X, Y = rng.normal(size=(5, 7)), rng.normal(size=(5, 1))
    (dW, _), *_ = bp.cost_gradients(params, X, Y, "tanh")
    W, b = params[0]

    def cost_of_first_layer(W_new):
        return bp.quadratic_cost([(W_new, b)] + params[1:], X, Y, "tanh")
    assert_close_relative(dW, bp.central_difference(cost_of_first_layer, W), rtol=1e-6)


def test_input_gradient_is_the_product_of_layer_jacobians():
    # a[L]'(x) = (diag s[L] W[L]) ... (diag s[2] W[2]), the matrix product seed 004 starts from
    params, rng = network(5)
    x = rng.normal(size=7)
    _, S = bp.forward(params, x[None, :], "tanh")
    product = np.eye(1)
    for (W, _), s in zip(reversed(params), reversed(S)):
        product = product @ (np.diag(s[0]) @ W)
    np.testing.assert_allclose(bp.input_gradient(params, x, "tanh"), product[0], atol=1e-15)


def test_forward_differences_use_n_plus_one_evaluations():
    calls = []
    f = lambda v: calls.append(1) or float(v @ v)  # noqa: E731
    g = bp.forward_difference_gradient(f, np.arange(5.0), h=1e-7)
    assert len(calls) == 6
    np.testing.assert_allclose(g, 2 * np.arange(5.0), atol=1e-5)


def test_input_gradient_needs_a_scalar_output():
    params = bp.random_network((3, 4, 2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="scalar output"):
        bp.input_gradient(params, np.zeros(3), "tanh")


def test_unknown_activation_is_refused_with_the_allowed_names():
    params = bp.random_network((3, 1), np.random.default_rng(0))
    with pytest.raises(ValueError, match="sigmoid"):
        bp.output(params, np.zeros((1, 3)), "softplus")


@pytest.mark.parametrize("h", [2, 3, 8])
def test_seed001_eqs_1_2_equal_autograd_and_the_general_backward_pass(h):
    rng = np.random.default_rng(h)
    U, V = rng.normal(size=(h - 1, 2)), rng.normal(size=(1, h))
    x = rng.uniform(-5, 5, 40)
    y = basic_net.f2(x)
    dU, dV = basic_net.gradients(U, V, x, y)
    rU, rV = autograd_two_layer(U, V, x, y)
    assert_close_relative(dU, rU)
    assert_close_relative(dV, rV)
    (dW2, db2), (dW3, db3) = bp.cost_gradients(as_layers(U, V), x[:, None], y[:, None], ("sigmoid", "identity"))
    np.testing.assert_allclose(dU, np.column_stack([dW2, db2]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dV, np.append(dW3, db3)[None, :], rtol=1e-12, atol=1e-14)


def test_seed001_dataset_gradient_is_the_average_of_per_sample_gradients():
    rng = np.random.default_rng(1)
    U, V = rng.normal(size=(3, 2)), rng.normal(size=(1, 4))
    x, y = rng.uniform(-5, 5, 6), rng.normal(size=6)
    per_sample = [basic_net.gradients(U, V, x[n:n + 1], y[n:n + 1]) for n in range(6)]
    dU, dV = basic_net.gradients(U, V, x, y)
    np.testing.assert_allclose(dU, np.mean([g[0] for g in per_sample], axis=0), atol=1e-14)
    np.testing.assert_allclose(dV, np.mean([g[1] for g in per_sample], axis=0), atol=1e-14)
