"""The weight-agnostic XOR search: the network evaluator, the enumeration and the ranking."""
import dataclasses

import numpy as np
import pytest
import torch

from nnlab.config import ConfigError, validate
from nnlab.experiments import wann as W

X = W.XOR_X.numpy()


def _weights(n_hidden, edges, value):
    names = W.node_names(n_hidden)
    w = torch.zeros(len(names), len(names), dtype=torch.float64)
    for (i, j), v in zip(edges, np.broadcast_to(value, len(edges))):
        w[names.index(i), names.index(j)] = float(v)
    return w


def test_outputs_match_the_formula_of_a_shared_weight_network():
    edges = [("x1", "h1"), ("x2", "h1"), ("h1", "h2"), ("h2", "out")]
    for w in (-2.0, 0.5, 1.3):
        y = W.outputs(_weights(2, edges, w), ("gauss", "linear", "sin")).numpy()
        s = X.sum(1)
        np.testing.assert_allclose(y, np.sin(np.pi * w * w * np.exp(-(w * s) ** 2 / 2)), rtol=1e-12)


def test_a_hand_built_xor_network_is_fully_accurate():
    # XOR = relu(x1 + x2) - 2 relu(x1 + x2 - 1), read out with y > 0.5
    edges = [("x1", "h1"), ("x2", "h1"), ("x1", "h2"), ("x2", "h2"), ("bias", "h2"), ("h1", "out"), ("h2", "out")]
    w = _weights(2, edges, [1, 1, 1, 1, -1, 1, -2])
    y = W.outputs(w, ("relu", "relu", "linear"))
    np.testing.assert_allclose(y.numpy(), [0, 1, 1, 0])
    assert float(W.accuracy(y)) == 1.0
    assert float(W.accuracy(1 - y)) == 0.0


def test_topologies_are_valid_feed_forward_graphs_counted_exactly():
    # no hidden node: any non-empty set of sources feeds the output; one hidden node: it has a
    # non-empty set of sources, feeds the output, and the output may take any set of sources too
    assert len(W.topologies(0)) == 7 and len(W.topologies(1)) == 7 * 8
    for masks in (W.topologies(1), W.topologies(2)):
        n = masks.shape[1]
        assert not np.any(np.tril(np.ones((n, n), bool)) & masks)           # i -> j only for i < j
        assert not masks[:, :, : W.N_SOURCES].any()                          # nothing enters a source
        hidden = slice(W.N_SOURCES, n - 1)
        assert masks[:, :, hidden].any(1).all() and masks[:, hidden, :].any(2).all()


def test_canonical_key_merges_relabelled_hidden_nodes_only():
    m = np.zeros((6, 6), bool)
    m[1, 3] = m[2, 4] = m[3, 5] = m[4, 5] = True
    swapped = m[[0, 1, 2, 4, 3, 5]][:, [0, 1, 2, 4, 3, 5]]
    assert W.canonical(m, ("linear", "inverse", "abs")) == W.canonical(swapped, ("inverse", "linear", "abs"))
    assert W.canonical(m, ("linear", "inverse", "abs")) != W.canonical(m, ("inverse", "linear", "abs"))
    linked = m.copy()
    linked[3, 4] = True
    assert W.canonical(linked, ("linear", "inverse", "abs")) != W.canonical(
        linked[[0, 1, 2, 4, 3, 5]][:, [0, 1, 2, 4, 3, 5]], ("inverse", "linear", "abs"))


def test_step_nodes_stay_differentiable_with_zero_derivative():
    w = _weights(1, [("x1", "h1"), ("x2", "h1"), ("h1", "out")], 1.0).requires_grad_(True)
    W.outputs(w, ("tanh", "step")).sum().backward()
    assert torch.all(w.grad == 0)


def test_search_ranks_by_mean_accuracy_then_connections_and_parse_inverts_describe():
    c = W.PROFILES["smoke"]
    ranked, pareto = W.search(c)
    keys = list(zip(-ranked["mean_acc"], ranked["connections"]))
    assert keys == sorted(keys)
    assert ranked["mean_acc"].iloc[0] == pareto["best_mean_acc"].max()
    for _, row in ranked.iterrows():
        mask, acts = W.parse(row)
        acc = W.accuracy(W.outputs(torch.tensor(mask, dtype=torch.float64)
                                   * torch.tensor(c.shared_weights)[:, None, None], acts))
        np.testing.assert_allclose(acc.mean().item(), row["mean_acc"])


def test_bad_activation_name_is_refused():
    with pytest.raises(ConfigError, match="activations"):
        validate(dataclasses.replace(W.Config(), activations=("linear", "softplus")), "wann")


def test_canonical_key_tells_apart_networks_that_differ_only_in_direct_input_output_edges():
    n = W.N_SOURCES + 2                                                     # sources, one hidden, out
    plain = np.zeros((n, n), dtype=bool)
    plain[1, W.N_SOURCES] = plain[W.N_SOURCES, -1] = True                      # x1 -> h1 -> out
    direct = plain.copy()
    direct[2, -1] = True                                                   # plus x2 -> out
    acts = ("tanh", "sigmoid")
    assert W.canonical(plain, acts) != W.canonical(direct, acts)
