"""The softmax Jacobian J = diag(s) - s s^T and the cross-entropy gradient s - y, checked against torch
autograd and finite differences; J's properties; the stable softmax where the naive one overflows."""
import numpy as np
import pytest
import torch

from nnlab import softmax as sm
from nnlab.backprop import central_difference
from nnlab.experiments.softmax import autograd_cross_entropy_gradient, autograd_jacobian

CASES = [(K, spread, offset) for K in (2, 5, 40) for spread in (1.0, 8.0) for offset in (0.0, 1000.0, -1000.0)]


def logits(K, spread, offset, seed=0):
    return offset + spread * np.random.default_rng(seed).normal(size=K)


def assert_close_relative(a, b, rtol=1e-6):
    """max |a - b| <= rtol * max |b|: relative to the size of the reference."""
    assert np.abs(a - b).max() <= rtol * np.abs(b).max(), np.abs(a - b).max()


@pytest.mark.parametrize("K,spread,offset", CASES)
def test_jacobian_equals_autograd(K, spread, offset):
    z = logits(K, spread, offset)
    assert_close_relative(sm.jacobian(z), autograd_jacobian(z))


@pytest.mark.parametrize("K,spread,offset", CASES)
def test_jacobian_equals_central_differences(K, spread, offset):
    z = logits(K, spread, offset)
    assert_close_relative(sm.jacobian(z), central_difference(sm.softmax, z, 1e-6), rtol=1e-5)


def test_jacobian_entries_are_s_i_delta_ij_minus_s_j():
    z = logits(4, 1.0, 0.0)
    s, J = sm.softmax(z), sm.jacobian(z)
    for i in range(4):
        for j in range(4):
            assert J[i, j] == pytest.approx(s[i] * ((i == j) - s[j]), abs=1e-15)


@pytest.mark.parametrize("K", [2, 3, 10, 30])
def test_jacobian_is_symmetric_psd_with_zero_row_sums_and_rank_K_minus_1(K):
    J = sm.jacobian(logits(K, 1.0, 0.0, seed=K))
    eig = np.linalg.eigvalsh(J)
    assert np.array_equal(J, J.T)
    np.testing.assert_allclose(J.sum(axis=1), 0.0, atol=1e-15)
    assert np.linalg.matrix_rank(J) == K - 1
    assert eig[0] > -1e-15 and eig[1] > 1e-6          # one zero eigenvalue (eigenvector 1), the rest > 0


def test_softmax_is_invariant_to_a_constant_shift():
    z = logits(6, 2.0, 0.0)
    for c in (-700.0, -3.0, 5.0, 700.0):
        np.testing.assert_allclose(sm.softmax(z + c), sm.softmax(z), atol=1e-13)


def test_naive_softmax_overflows_where_stable_softmax_does_not():
    z = np.array([1000.0, 999.0, 998.0])
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(sm.softmax_naive(z)).any()
        assert np.isnan(sm.softmax_naive(-z)).all()      # every exp underflows: 0/0
    expected = sm.softmax_naive(z - 1000.0)
    np.testing.assert_allclose(sm.softmax(z), expected, rtol=1e-15)
    np.testing.assert_allclose(sm.softmax(z), torch.softmax(torch.from_numpy(z), 0).numpy(), rtol=1e-14)


@pytest.mark.parametrize("K,spread,offset", CASES)
def test_cross_entropy_gradient_is_s_minus_y(K, spread, offset):
    z = logits(K, spread, offset)
    y = np.eye(K)[K // 2]
    g = sm.cross_entropy_gradient(z, y)
    assert_close_relative(g, autograd_cross_entropy_gradient(z, y))
    assert_close_relative(g, central_difference(lambda v: sm.cross_entropy(v, y), z, 1e-5), rtol=1e-5)


def test_cross_entropy_gradient_is_chain_rule_through_the_jacobian():
    z, y = logits(5, 1.0, 0.0), np.array([0.1, 0.2, 0.3, 0.4, 0.0])
    s = sm.softmax(z)
    chain = sm.jacobian(z).T @ (-y / s)                  # dC/dz = J^T dC/ds with C = -sum y log s
    np.testing.assert_allclose(sm.cross_entropy_gradient(z, y), chain, atol=1e-14)


def test_cross_entropy_gradient_rejects_a_target_that_is_not_a_distribution():
    with pytest.raises(ValueError, match="must sum to 1"):
        sm.cross_entropy_gradient(np.zeros(3), np.array([1.0, 1.0, 0.0]))
