"""The batched engine trains M networks exactly as M separate nn.Module + torch.optim runs would."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnlab.models import Module, Net, batch_loss, evaluate, forward, init_params, loss_and_gradient
from nnlab.train import SGD, Adam, fresh_batches, shuffled_epochs, step_decay, train

torch.set_num_threads(1)
RTOL = 1e-5


def solo_run(net, params, m, stream, steps, lr, optimizer, loss):
    """Model m alone on the stream's batches: per-step losses, its parameters after every step."""
    model = Module(net, params, m)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    losses, history = [], []
    for _, (x, y) in zip(range(steps), stream):
        out = model(x[m])
        value = F.mse_loss(out, y[m]) if loss == "mse" else F.cross_entropy(out, y[m])
        losses.append(value.item())
        history.append([(lin.weight.detach().clone(), lin.bias.detach().clone()) for lin in model.linears])
        opt.zero_grad()
        value.backward()
        opt.step()
    history.append([(lin.weight.detach().clone(), lin.bias.detach().clone()) for lin in model.linears])
    return np.array(losses), history


def rel(a, b):
    """Largest difference relative to the reference's largest magnitude."""
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max() / torch.as_tensor(b).abs().max())


def assert_same_params(batched, m, reference):
    for (W, b), (W_ref, b_ref) in zip(batched, reference):
        assert rel(W[m], W_ref) <= RTOL and rel(b[m], b_ref) <= RTOL


def dataset(net, loss, n=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, net.widths[0], generator=g)
    if loss == "xent":
        return X, (X @ torch.randn(net.widths[0], net.widths[-1], generator=g)).argmax(1)
    return X, torch.sin(X.sum(1, keepdim=True)).repeat(1, net.widths[-1])


@pytest.mark.parametrize("net, optimizer, loss, lrs", [
    (Net((3, 16, 16, 1)), "adam", "mse", (1e-3, 3e-3, 1e-2)),
    (Net((3, 12, 12, 12, 2), residual=True), "adam", "mse", (1e-3, 3e-3, 1e-2)),
    (Net((3, 12, 12, 12, 4), activation="tanh", residual=True), "adam", "xent", (2e-3, 5e-3, 2e-2)),
    (Net((3, 16, 16, 1), activation="tanh"), "sgd", "mse", (0.01, 0.05, 0.2)),
])
def test_batched_equals_separate_runs(net, optimizer, loss, lrs):
    """M models together: same per-step losses and final weights as M solo runs, 200 steps, lr per model."""
    seeds, steps = [11, 12, 13], 200
    X, Y = dataset(net, loss)
    params = init_params(net, seeds)
    stream = shuffled_epochs(X, Y, 16, seeds)  # 7 steps an epoch, last batch of 4
    result = train(net, params, stream, steps, list(lrs), optimizer=optimizer, loss=loss)
    assert result.train_loss.shape == (3, steps) and (result.diverged_at == -1).all()
    for m, lr in enumerate(lrs):
        losses, history = solo_run(net, params, m, stream, steps, lr, optimizer, loss)
        assert np.max(np.abs(result.train_loss[m] - losses) / np.abs(losses)) <= RTOL
        assert_same_params(result.params, m, history[-1])
    assert losses[-7:].mean() < 0.5 * losses[0]  # it did learn something (the comparison is not of idle runs)


@pytest.mark.parametrize("net, loss, shared", [
    (Net((3, 16, 16, 1)), "mse", False),
    (Net((3, 12, 12, 12, 2), residual=True), "mse", True),
    (Net((3, 12, 12, 12, 4), activation="tanh", residual=True), "xent", False),
    (Net((6, 50, 50, 50, 1), residual=True), "mse", False),
    (Net((100, 75, 50, 10, 1)), "mse", False),
])
def test_loss_and_gradient_is_autograd_bit_for_bit(net, loss, shared):
    """The engine's hand-written backward gives autograd's losses and gradients to the last bit."""
    M, B = 4, 20
    g = torch.Generator().manual_seed(5)
    params = init_params(net, range(M))
    x = torch.randn(1 if shared else M, B, net.widths[0], generator=g).expand(M, B, net.widths[0])
    y = torch.randint(net.widths[-1], (M, B), generator=g) if loss == "xent" else \
        torch.randn(M, B, net.widths[-1], generator=g)
    leaves = [t.clone().requires_grad_() for layer in params for t in layer]
    pairs = list(zip(leaves[::2], leaves[1::2]))
    reference = batch_loss(forward(net, pairs, x), y, loss)
    expected = torch.autograd.grad(reference.sum(), leaves)
    grads = [(torch.empty_like(W), torch.empty_like(b)) for W, b in params]
    losses = loss_and_gradient(net, params, x, y, loss, grads)
    assert torch.equal(losses, reference.detach())
    assert all(torch.equal(ours, theirs) for ours, theirs in zip([t for pair in grads for t in pair], expected))


@pytest.mark.parametrize("ours, reference", [(Adam, torch.optim.Adam), (SGD, torch.optim.SGD)])
def test_optimizer_step_is_bitwise_torch_optim(ours, reference):
    """Given the same gradients, the batched update equals torch.optim's to the last bit, lr per model and
    per step (torch: the param group's lr set before every step, as a scheduler does).
    (The engine's remaining ~1e-7 differences come from bmm and mm summing in different orders.)"""
    M, P, steps = 3, 1000, 30
    lr = torch.tensor([1e-3, 3e-3, 0.1], dtype=torch.float64)
    scale = torch.tensor(step_decay(steps, 0.3, 0.7, 0.01))
    table = scale[:, None] * lr[None, :]
    start, grads = torch.randn(M, P), torch.randn(steps, M, P)
    flat, alive = start.clone(), torch.ones(M, 1)
    opt = ours(flat, table)
    solo = [start[m].clone().requires_grad_() for m in range(M)]
    solo_opts = [reference([p], lr=float(lr[m])) for m, p in enumerate(solo)]
    for t in range(steps):
        opt.step(flat, grads[t].clone(), alive)
        for m in range(M):
            solo_opts[m].param_groups[0]["lr"] = float(lr[m]) * float(scale[t])
            solo[m].grad = grads[t, m].clone()
            solo_opts[m].step()
    assert all(torch.equal(flat[m], solo[m].detach()) for m in range(M))


def test_adam_stays_bitwise_torch_optim_when_its_state_turns_subnormal():
    """Tiny and zero gradients drive exp_avg_sq below the smallest normal float (the engine raises it to
    that number before the sqrt, for speed): the update is still torch.optim.Adam's to the last bit,
    on parameters small enough that a changed denominator would show."""
    M, P, steps = 2, 64, 40
    g = torch.Generator().manual_seed(3)
    start = torch.randn(M, P, generator=g) * 1e-16
    scales = torch.tensor([1e-21, 1e-24, 0.0, 1e-19]).repeat(P // 4)  # g^2 between 1e-48 and 1e-38, or 0
    grads = torch.randn(steps, M, P, generator=g) * scales
    lr = torch.tensor([1e-3, 1e-2], dtype=torch.float64)
    flat = start.clone()
    opt = Adam(flat, lr.expand(steps, M).clone())
    solo = [start[m].clone().requires_grad_() for m in range(M)]
    solo_opts = [torch.optim.Adam([p], lr=float(lr[m])) for m, p in enumerate(solo)]
    for t in range(steps):
        opt.step(flat, grads[t].clone(), 1.0)
        for m in range(M):
            solo[m].grad = grads[t, m].clone()
            solo_opts[m].step()
    v = opt.exp_avg_sq
    assert int(((v > 0) & (v < torch.finfo(v.dtype).tiny)).sum()) > M * P // 4  # the case is exercised
    assert all(torch.equal(flat[m], solo[m].detach()) for m in range(M))
    assert not torch.equal(flat, start)  # and the updates are not all lost in rounding


def test_step_decay_schedule():
    f = step_decay(1000, 0.5, 0.6, 1e-2)
    assert np.all(f[:500] == 1) and np.allclose(f[599:], 1e-2)             # updates 1-500, then 600-1000
    assert np.allclose(np.diff(np.log(f[499:600])), np.log(1e-2) / 100)    # geometric: log falls linearly
    assert np.array_equal(step_decay(10, 0.5, 0.5, 0.1), [1] * 5 + [0.1] * 5)
    with pytest.raises(ValueError, match="start <= end"):
        step_decay(10, 0.7, 0.5, 0.1)


def test_train_rejects_bad_lr_scale():
    net = Net((2, 3, 1))
    stream = fresh_batches(lambda g, n: (torch.rand(n, 2, generator=g), torch.rand(n, 1, generator=g)), 4, [0])
    for bad in (np.ones(9), np.r_[np.ones(9), 0.0], np.r_[np.ones(9), np.nan]):
        with pytest.raises(ValueError, match="lr_scale must hold 10 positive finite factors"):
            train(net, init_params(net, [0]), stream, steps=10, lr=0.1, lr_scale=bad)


def test_init_matches_nn_linear_and_keeps_global_rng():
    net = Net((5, 7, 3))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    params = init_params(net, [4, 9])
    assert torch.equal(torch.get_rng_state(), before)
    for m, seed in enumerate([4, 9]):
        torch.manual_seed(seed)
        linears = [torch.nn.Linear(i, o) for i, o in net.layers]
        for (W, b), lin in zip(params, linears):
            assert torch.equal(W[m], lin.weight.detach()) and torch.equal(b[m], lin.bias.detach())


def test_custom_init_is_normal_with_given_std_and_seeded():
    net = Net((200, 300, 1))
    W = init_params(net, [1, 2], std=2.0)[0][0]
    assert torch.equal(W[0], init_params(net, [1], std=2.0)[0][0][0])  # model m depends on seeds[m] only
    assert not torch.equal(W[0], W[1])
    assert abs(W.std().item() - 2.0) < 0.02 and abs(W.mean().item()) < 0.02  # 120,000 draws: ~0.004 s.e.


def test_residual_skips_only_hidden_layers_of_equal_width():
    net = Net((3, 5, 5, 5, 2), residual=True)
    assert net.skips() == [False, True, True, False]
    assert Net((4, 4, 4), residual=True).skips() == [True, False]  # the output layer stays linear
    # zero weights and biases make a skip layer the identity (act(0) = 0): the net collapses to 3 -> 5 -> 2
    params = init_params(net, [0, 1])
    short = Net((3, 5, 2))
    x = torch.randn(2, 6, 3)
    for W, b in params[1:3]:
        W.zero_(), b.zero_()
    assert torch.equal(forward(net, params, x), forward(short, [params[0], params[3]], x))
    plain = Net((3, 5, 5, 5, 2), residual=False)
    assert not torch.allclose(forward(net, init_params(net, [0]), x[:1]),
                              forward(plain, init_params(plain, [0]), x[:1]))


def test_diverging_model_is_frozen_and_the_others_are_untouched():
    net = Net((3, 16, 16, 1))
    seeds, lrs, steps = [1, 2, 3], [0.05, 50.0, 0.1], 120
    X, Y = dataset(net, "mse")
    params = init_params(net, seeds)
    stream = shuffled_epochs(X, Y, 20, seeds)
    result = train(net, params, stream, steps, lrs, optimizer="sgd", eval_every=10, eval_data=(X, Y))
    losses, history = solo_run(net, params, 1, stream, steps, lrs[1], "sgd", "mse")
    first_bad = int(np.flatnonzero(~np.isfinite(losses))[0])
    assert result.diverged_at.tolist() == [-1, first_bad, -1]
    assert np.allclose(result.train_loss[1, :first_bad], losses[:first_bad], rtol=RTOL)
    assert np.isnan(result.train_loss[1, first_bad + 1:]).all()
    assert_same_params(result.params, 1, history[first_bad])  # frozen where its loss went non-finite
    assert np.isnan(result.eval_loss[1, result.eval_steps >= first_bad]).all()
    for m in (0, 2):
        losses, history = solo_run(net, params, m, stream, steps, lrs[m], "sgd", "mse")
        assert np.max(np.abs(result.train_loss[m] - losses) / losses) <= RTOL
        assert_same_params(result.params, m, history[-1])


@pytest.mark.parametrize("shared", [False, True])
def test_shuffled_epochs_visit_every_sample_once_per_epoch(shared):
    N, B, seeds = 23, 5, [3, 4, 5]
    X = torch.arange(N, dtype=torch.float32)[:, None]
    stream = shuffled_epochs(X, -X, B, seeds, shared=shared)
    assert stream.steps_per_epoch == math.ceil(N / B)
    batches = iter(stream)
    epochs = []
    for _ in range(3):
        xs, ys = zip(*(next(batches) for _ in range(stream.steps_per_epoch)))
        assert [x.shape[1] for x in xs] == [5, 5, 5, 5, 3]  # drop_last=False
        x, y = torch.cat(xs, 1)[..., 0], torch.cat(ys, 1)[..., 0]
        assert torch.equal(y, -x)  # inputs and targets stay paired
        assert x.shape[0] == (1 if shared else 3)  # a shared order comes once, train() broadcasts it
        assert all(torch.equal(row.sort().values, X[:, 0]) for row in x)
        epochs.append(x)
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled every epoch
    assert shared or not torch.equal(epochs[0][0], epochs[0][1])  # one order per model
    g = torch.Generator().manual_seed(seeds[0])
    assert torch.equal(epochs[1][0], torch.stack([torch.randperm(N, generator=g) for _ in range(2)])[1].float())


def test_fresh_batches_use_each_models_own_generator():
    def sample(g, n):
        x = torch.rand(n, 2, generator=g)
        return x, x.sum(1, keepdim=True)
    batches = iter(fresh_batches(sample, 4, [7, 8]))
    x1, y1 = next(batches)
    x2, _ = next(batches)
    g = torch.Generator().manual_seed(8)
    assert torch.equal(x1[1], sample(g, 4)[0]) and torch.equal(x2[1], sample(g, 4)[0])
    assert torch.equal(y1, x1.sum(2, keepdim=True)) and not torch.equal(x1[0], x1[1])


def test_eval_runs_at_zero_every_k_and_at_the_end():
    net = Net((3, 8, 1))
    X, Y = dataset(net, "mse")
    params = init_params(net, [0, 1])
    result = train(net, params, shuffled_epochs(X, Y, 10, [0, 1]), 25, 0.01,
                   eval_every=10, eval_data=(X[:50], Y[:50]))
    assert result.eval_steps.tolist() == [0, 10, 20, 25]
    np.testing.assert_allclose(result.eval_loss[:, 0], evaluate(net, params, X[:50], Y[:50]), rtol=1e-6)
    np.testing.assert_allclose(result.eval_loss[:, -1], evaluate(net, result.params, X[:50], Y[:50], chunk=7),
                               rtol=1e-6)


def test_bad_arguments_are_named():
    net = Net((2, 3, 1))
    params = init_params(net, [0, 1])
    stream = shuffled_epochs(torch.zeros(4, 2), torch.zeros(4, 1), 2, [0, 1])
    with pytest.raises(ValueError, match="lr"):
        train(net, params, stream, 3, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="optimizer"):
        train(net, params, stream, 3, 0.1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="3 models"):
        train(net, params, shuffled_epochs(torch.zeros(4, 2), torch.zeros(4, 1), 2, [0, 1, 2]), 3, 0.1)
    with pytest.raises(ValueError, match="activation"):
        Net((2, 3, 1), activation="sigmoid")


def test_a_shared_stream_equals_identical_per_model_streams():
    net = Net((3, 8, 1))
    X, Y = dataset(net, "mse")
    params = init_params(net, [0, 1])
    shared = train(net, params, shuffled_epochs(X, Y, 16, [5], shared=True), 30, [0.01, 0.02])
    same = train(net, params, shuffled_epochs(X, Y, 16, [5, 5]), 30, [0.01, 0.02])
    np.testing.assert_allclose(shared.train_loss, same.train_loss, rtol=RTOL)
