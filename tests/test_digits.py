"""The two-layer classifier (hand-written backward pass, batched SGD) and the digits experiment."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from nnlab.config import ConfigError, validate
from nnlab.experiments import digits
from nnlab.twolayer_classifier import init_params, loss_and_grads, train


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_gradients_equal_autograd(activation):
    rng = np.random.default_rng(0)
    m, batch, n_in, hidden, classes = 3, 7, 5, 6, 4
    params = init_params([np.random.default_rng(s) for s in range(m)], n_in, hidden, classes, 0.7)
    params["b1"] = rng.standard_normal(params["b1"].shape)      # non-zero biases: every path used
    params["b2"] = rng.standard_normal(params["b2"].shape)
    X = rng.standard_normal((m, batch, n_in))
    y = rng.integers(0, classes, (m, batch))
    reg = np.array([0.0, 0.1, 2.0])
    loss, grads = loss_and_grads(params, X, y, reg, activation)

    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    act = torch.relu if activation == "relu" else torch.sigmoid
    logits = act(torch.tensor(X) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, classes),
                                           torch.tensor(y).reshape(-1), reduction="none")
    reg_t = torch.tensor(reg)
    loss_t = (ce.reshape(m, batch).mean(1)
              + 0.5 * reg_t * ((t["W1"] ** 2).sum((1, 2)) + (t["W2"] ** 2).sum((1, 2))))
    loss_t.sum().backward()                 # models are independent: the sum separates them
    np.testing.assert_allclose(loss, loss_t.detach().numpy(), rtol=1e-12)
    for key in params:
        np.testing.assert_allclose(grads[key], t[key].grad.numpy(), rtol=1e-10, atol=1e-12)


def _small_problem():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 8))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    return X, y


def test_models_trained_together_equal_models_trained_alone():
    X, y = _small_problem()
    seeds, lrs, regs = [3, 4, 5], [0.5, 0.1, 1.0], [0.0, 1e-2, 1e-3]
    kw = dict(batch_size=16, epochs=3, n_hidden=6, init_scale=0.3, monitor={"train": (X, y)})
    together, h_together = train(X, y, seeds=seeds, lr=lrs, reg=regs, **kw)
    for m, (seed, lr, reg) in enumerate(zip(seeds, lrs, regs)):
        alone, h_alone = train(X, y, seeds=[seed], lr=[lr], reg=[reg], **kw)
        for key in alone:
            np.testing.assert_allclose(together[key][m], alone[key][0], rtol=1e-12, atol=1e-14)
        for key in h_alone:
            np.testing.assert_allclose(h_together[key][m], h_alone[key][0], rtol=1e-12)


def test_a_diverging_model_is_flagged_and_leaves_the_others_alone():
    X, y = _small_problem()
    kw = dict(batch_size=16, epochs=2, n_hidden=6, init_scale=0.3, reg=0.0)
    together, history = train(X, y, seeds=[0, 0], lr=[0.1, 1e300], **kw)
    alone, _ = train(X, y, seeds=[0], lr=[0.1], **kw)
    assert history["diverged"].tolist() == [False, True]
    np.testing.assert_allclose(together["W1"][0], alone["W1"][0], rtol=1e-12)


def test_split_is_a_stratified_partition_and_standardised_on_train():
    _, labels = digits.load_digits(return_X_y=True)
    index = digits.split_indices(0, labels)
    everything = np.concatenate(list(index.values()))
    assert len(everything) == len(labels) and set(everything) == set(range(len(labels)))
    for part, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        counts = np.bincount(labels[index[part]], minlength=10)
        assert np.all(np.abs(counts - share * np.bincount(labels)) <= 1.5)
    data = digits.split_digits(0)
    X_train = data["train"][0].astype(float)
    assert np.allclose(X_train.mean(0), 0, atol=1e-5)
    assert np.all(np.isclose(X_train.std(0), 1, atol=1e-4) | (X_train.std(0) == 0))
    assert np.array_equal(digits.split_indices(0, labels)["val"], index["val"])


@pytest.mark.parametrize("change, field", [
    ({"lrs": (1.0, -0.1)}, "lrs"),
    ({"regs": (-1e-3,)}, "regs"),
    ({"activation": "tanh"}, "activation"),
    ({"search_batch_sizes": (0, 32)}, "search_batch_sizes"),
    ({"epochs": 0}, "epochs"),
])
def test_out_of_range_config_is_rejected_by_name(change, field):
    with pytest.raises(ConfigError, match=field):
        validate(dataclasses.replace(digits.Config(), **change), "digits")


@pytest.mark.parametrize("change, field", [({"seeds": ()}, "seeds"),
                                           ({"search_seeds": (1, 1)}, "search_seeds"),
                                           ({"search_lrs": ()}, "search_lrs")])
def test_empty_lists_and_repeated_seeds_are_rejected(change, field):
    with pytest.raises(ConfigError, match=field):
        digits.run(dataclasses.replace(digits.PROFILES["smoke"], **change))


def test_profiles_are_valid():
    for config in digits.PROFILES.values():
        validate(config, "digits")
        digits.check(config)


def test_sigmoid_template_is_the_course_templates_network():
    # Linear -> Sigmoid -> Linear, weights 0.001 * randn, biases 0
    full = digits.PROFILES["full"]
    assert full.template_activation == "sigmoid" and full.init_scale == 1e-3
    params = init_params([np.random.default_rng(s) for s in range(3)], 64, 128, 10, full.init_scale)
    for key in ("W1", "W2"):
        assert np.std(params[key]) == pytest.approx(1e-3, rel=0.03)
        assert abs(np.mean(params[key])) < 1e-4
    assert not params["b1"].any() and not params["b2"].any()


def test_seed_update_budget_is_ten_mnist_epochs():
    full = digits.PROFILES["full"]
    assert full.long_updates == 10 * math.ceil(60_000 / full.batch_size)


def test_at_small_sigmoid_weights_W2_moves_as_a_second_output_bias():
    """h = sigmoid(0) = 1/2 for every unit, so dW2 = h^T dz is 1/2 db2 in every row, up to terms of
    the order of the initial weights; a ReLU unit outputs about 0 and has no such term."""
    config = dataclasses.replace(digits.PROFILES["full"], seeds=(0, 1))
    g = digits.initial_gradients(digits.split_digits(0), config)
    sig = g[g["activation"] == "sigmoid"]
    assert np.allclose(sig["hidden_mean"], 0.5, atol=1e-3)
    expected = 0.5 * np.sqrt(config.hidden) * sig["b2"]
    np.testing.assert_allclose(sig["W2_shared"], expected, rtol=1e-2)
    np.testing.assert_allclose(sig["W2"], expected, rtol=2e-2)
    relu = g[g["activation"] == "relu"]
    assert (relu["W2_shared"] < 0.5 * relu["W2"]).all()
