"""The batched training engine: M networks of one architecture trained at once, each exactly as alone.

The parameters of all models live in one flat tensor ``(M, P)``; a step sees per-layer views of it,
:func:`nnlab.models.loss_and_gradient` (one batched matmul per layer and direction, autograd's
arithmetic without its graph) writes the gradient into one ``(M, P)`` buffer, and Adam/SGD update the
parameters with a handful of whole-tensor operations whose arithmetic is that of
``torch.optim.Adam``/``SGD`` (CPU single-tensor path) on every model alone.
Losses go into preallocated tensors, and a model whose loss turns NaN/inf is frozen by masking its
update on the device; on a CPU, where reading a value costs nothing, the masking is skipped while
every model trains (on a GPU nothing in the loop waits for the host).

    stream = shuffled_epochs(X, Y, batch_size=32, seeds=range(8))
    result = train(net, init_params(net, range(8)), stream, steps=2000, lr=[1e-3] * 8)
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from nnlab.device import device as default_device, threads as default_threads
from nnlab.models import LOSSES, Net, eval_loss, loss_and_gradient
from nnlab.progress import bar

OPTIMIZERS = ("adam", "sgd")


# --------------------------------------------------------------------------- data streams
class ShuffledEpochs:
    """Minibatches of a fixed dataset, reshuffled every epoch, one order per model (see shuffled_epochs)."""

    def __init__(self, X, Y, batch_size: int, seeds: Sequence[int], shared: bool = False):
        if len(X) != len(Y):
            raise ValueError(f"X has {len(X)} samples but Y has {len(Y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size = {batch_size}: must be >= 1")
        self.X, self.Y, self.batch_size = X, Y, int(batch_size)
        self.seeds, self.shared = [int(s) for s in seeds], shared
        self.n_models = None if shared else len(self.seeds)  # shared: a leading axis of 1, any M
        self.steps_per_epoch = math.ceil(len(X) / self.batch_size)

    def to(self, device):
        self.X, self.Y = self.X.to(device), self.Y.to(device)
        return self

    def __iter__(self):
        N, B = len(self.X), self.batch_size
        if B >= N:  # full batch: every step sees the whole set in its stored order
            while True:
                yield self.X.unsqueeze(0), self.Y.unsqueeze(0)
        gens = [torch.Generator().manual_seed(s) for s in self.seeds[:1 if self.shared else None]]
        while True:
            order = torch.stack([torch.randperm(N, generator=g) for g in gens]).to(self.X.device)
            for s in range(0, N, B):  # gathered a batch at a time: (M or 1, B, ...)
                rows = order[:, s:s + B]  # X[rows], gathered as flat rows by index_select (5x faster)
                yield tuple(T.index_select(0, rows.reshape(-1)).view(*rows.shape, *T.shape[1:])
                            for T in (self.X, self.Y))


class FreshBatches:
    """Online data: a new batch from ``sample(generator, n)`` every step (see fresh_batches)."""

    steps_per_epoch = None

    def __init__(self, sample: Callable, batch_size: int, seeds: Sequence[int], shared: bool = False):
        self.sample, self.batch_size = sample, int(batch_size)
        self.seeds, self.shared = [int(s) for s in seeds], shared
        self.n_models = None if shared else len(self.seeds)

    def __iter__(self):
        gens = [torch.Generator().manual_seed(s) for s in self.seeds[:1 if self.shared else None]]
        while True:
            x, y = zip(*(self.sample(g, self.batch_size) for g in gens))
            yield torch.stack(x), torch.stack(y)


def shuffled_epochs(X, Y, batch_size: int, seeds: Sequence[int], shared: bool = False) -> ShuffledEpochs:
    """Batches of the dataset ``(X, Y)`` (torch tensors, first axis = samples) shared by all models.

    In epoch e model m sees the samples in the order of the e-th ``torch.randperm(N, generator=g_m)``,
    ``g_m = torch.Generator().manual_seed(seeds[m])`` (a DataLoader with ``shuffle=True`` gives the same
    kind of batches but draws extra numbers from its generator). ``shared=True``: one
    order (from ``seeds[0]``) for all models. drop_last=False: an epoch has ``ceil(N / batch_size)``
    steps and its last batch holds the remaining samples. ``batch_size >= N``: the whole set each
    step, unshuffled. Iterating yields ``(x, y)`` with a leading model axis (of length 1 when the
    batch is shared: :func:`train` broadcasts it to all models), forever.
    """
    return ShuffledEpochs(X, Y, batch_size, seeds, shared)


def fresh_batches(sample: Callable, batch_size: int, seeds: Sequence[int], shared: bool = False) -> FreshBatches:
    """Online batches: ``sample(generator, n) -> (x, y)`` is called for every model at every step with
    that model's ``torch.Generator`` seeded from ``seeds[m]`` (``shared=True``: once per step, with the
    generator of ``seeds[0]``, and the batch is broadcast to all models)."""
    return FreshBatches(sample, batch_size, seeds, shared)


# --------------------------------------------------------------------------- optimisers
class Adam:
    """``torch.optim.Adam`` (defaults, CPU single-tensor arithmetic) on flat parameters, an lr per model
    and step."""

    def __init__(self, flat: torch.Tensor, lr: torch.Tensor, betas=(0.9, 0.999), eps=1e-8):
        """``lr``: (steps, M), the learning rate of every model at every step."""
        self.beta1, self.beta2, self.eps = betas[0], betas[1], eps
        # sqrt of a subnormal is ~30x slower on x86, and long runs fill exp_avg_sq with them (a unit
        # whose gradient stays 0 decays there). Below the smallest normal number v adds less than half
        # an ulp to eps (sqrt(tiny) / sqrt(1 - beta2) < ulp(eps) / 2), so v is raised to it before the
        # sqrt: denom keeps every bit, and the state keeps the true v.
        tiny = torch.finfo(flat.dtype).tiny
        eps32 = torch.tensor(eps, dtype=flat.dtype)
        half_ulp = float(torch.nextafter(eps32, torch.tensor(math.inf, dtype=flat.dtype)) - eps32) / 2
        self.v_floor = tiny if math.sqrt(tiny) / math.sqrt(1 - self.beta2) < half_ulp else 0.0
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat)
        self.denom, self.update = torch.empty_like(flat), torch.empty_like(flat)  # reused every step
        # -lr / (1 - beta1^t) for every step t in float64 as torch's Python scalars, then cast to float32
        # as its kernel casts the scalar; precomputed so that the loop does no per-model host arithmetic
        steps = lr.shape[0]
        bias_correction1 = torch.tensor([1 - self.beta1 ** t for t in range(1, steps + 1)], dtype=torch.float64)
        self.neg_step_size = (-lr / bias_correction1.to(lr.device)[:, None]).float()[:, :, None]
        self.t = 0

    def step(self, param, grad, alive):
        """One update; ``alive`` (M, 1) is 1.0, or 0.0 for a frozen model (whose grad is zero), or the
        number 1.0 when every model trains."""
        self.t += 1
        self.exp_avg.lerp_(grad, 1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        bias_correction2_sqrt = (1 - self.beta2 ** self.t) ** 0.5
        root = torch.clamp(self.exp_avg_sq, min=self.v_floor, out=self.denom).sqrt_()  # see v_floor
        denom = root.div_(bias_correction2_sqrt).add_(self.eps)
        # torch: param.addcdiv_(exp_avg, denom, value=-step_size) = param + (-step_size * exp_avg) / denom,
        # the same operations with a step size per model
        step_size = self.neg_step_size[self.t - 1] * alive  # (M, 1)
        param.addcdiv_(torch.mul(self.exp_avg, step_size, out=self.update), denom)


class SGD:
    """``torch.optim.SGD`` (no momentum) on flat parameters, an lr per model and step."""

    def __init__(self, flat: torch.Tensor, lr: torch.Tensor):
        """``lr``: (steps, M), the learning rate of every model at every step."""
        self.neg_lr = (-lr).float()[:, :, None]  # (steps, M, 1)
        self.t = 0

    def step(self, param, grad, alive):
        # torch: param.add_(grad, alpha=-lr), a fused multiply-add, which addcmul_ reproduces
        self.t += 1
        param.addcmul_(grad, self.neg_lr[self.t - 1])


# --------------------------------------------------------------------------- the loop
@dataclass
class Result:
    """What :func:`train` returns; arrays are numpy, params stay torch tensors (on ``device``)."""
    params: list[tuple[torch.Tensor, torch.Tensor]]
    train_loss: np.ndarray   # (M, steps) float32, loss of the batch at step t (before update t); NaN after divergence
    eval_steps: np.ndarray   # (K,) int, number of updates made when evaluated (0 ... steps)
    eval_loss: np.ndarray    # (M, K) float32; NaN once diverged
    diverged_at: np.ndarray  # (M,) int, first step with a non-finite loss (or gradient), -1 if never
    seconds: float
    device: str


@contextlib.contextmanager
def num_threads(n: int):
    """Run with ``torch.set_num_threads(n)``, restoring the previous count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _lr_table(lr, lr_scale, steps: int, M: int, device) -> torch.Tensor:
    """(steps, M) float64: the learning rate of model m at step t, lr[m] * lr_scale[t]."""
    lr = torch.as_tensor(lr, dtype=torch.float64).reshape(-1)
    if lr.numel() == 1:
        lr = lr.expand(M)
    if lr.numel() != M or not bool(torch.all(torch.isfinite(lr) & (lr > 0))):
        raise ValueError(f"lr must be one positive number or {M} of them, got {lr.tolist()}")
    scale = torch.ones(steps, dtype=torch.float64) if lr_scale is None else \
        torch.as_tensor(np.asarray(lr_scale, dtype=np.float64))
    if scale.shape != (steps,) or not bool(torch.all(torch.isfinite(scale) & (scale > 0))):
        raise ValueError(f"lr_scale must hold {steps} positive finite factors, one per step, "
                         f"got shape {tuple(scale.shape)}")
    return (scale[:, None] * lr[None, :]).to(device)


def step_decay(steps: int, start: float, end: float, factor: float) -> np.ndarray:
    """Per-step lr factors: the k-th of ``steps`` updates (k = 1, 2, ...) gets ``factor ** p`` with
    p = clip((k/steps - start) / (end - start), 0, 1): 1 for the first ``start`` of training, geometric
    decay until ``end``, then ``factor`` (0 <= start <= end <= 1)."""
    if not (0 <= start <= end <= 1 and factor > 0):
        raise ValueError(f"step_decay needs 0 <= start <= end <= 1 and factor > 0, got {start}, {end}, {factor}")
    t = np.arange(1, steps + 1) / steps
    progress = np.clip((t - start) / (end - start), 0, 1) if end > start else (t > start).astype(float)
    return factor ** progress


def _eval_schedule(steps: int, eval_every: int) -> list[int]:
    if not eval_every:
        return []
    return sorted(set(range(0, steps + 1, eval_every)) | {steps})


def train(net: Net, params, stream, steps: int, lr, optimizer: str = "adam", loss: str = "mse",
          eval_every: int = 0, eval_data=None, device=None, progress: str | None = None,
          threads: int | None = None, lr_scale=None) -> Result:
    """Train the M networks whose stacked ``params`` come from :func:`nnlab.models.init_params`.

    ``stream``: :func:`shuffled_epochs` / :func:`fresh_batches` (or any iterable of ``(x, y)`` with a
    leading model axis). ``lr``: one number or M. ``lr_scale``: optional factor for every step (a
    schedule such as :func:`step_decay`; torch: every param group's lr set before each step).
    ``eval_every=k``: loss on ``eval_data=(X, Y)`` after 0, k, 2k, ... and ``steps`` updates.
    ``progress``: tqdm description, None for no bar. ``threads``: torch CPU threads during the call
    (None: NNLAB_THREADS, default 1). ``params`` are not modified.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer = {optimizer!r}: allowed are {', '.join(OPTIMIZERS)}")
    if loss not in LOSSES:
        raise ValueError(f"loss = {loss!r}: allowed are {', '.join(LOSSES)}")
    if eval_every and eval_data is None:
        raise ValueError("eval_every > 0 needs eval_data=(X, Y)")
    dev = torch.device(device) if device is not None else default_device()
    M = params[0][0].shape[0]
    if getattr(stream, "n_models", None) not in (None, M):
        raise ValueError(f"the stream feeds {stream.n_models} models but params hold {M}")
    if hasattr(stream, "to"):
        stream.to(dev)

    # one leaf (M, P); the layers are views of it, so the gradient arrives as one (M, P) tensor
    tensors = [t for layer in params for t in layer]
    sizes = [t[0].numel() for t in tensors]
    flat = torch.cat([t.detach().reshape(M, -1) for t in tensors], 1).to(dev, torch.float32)
    grad = torch.empty_like(flat)  # the gradient of every step is written here

    def layers(flat):
        pieces = flat.split(sizes, dim=1)
        return [(pieces[2 * l].view(M, *W.shape[1:]), pieces[2 * l + 1]) for l, (W, _) in enumerate(params)]

    weights, grad_layers = layers(flat), layers(grad)  # views, made once: flat and grad are updated in place
    opt = (Adam if optimizer == "adam" else SGD)(flat, _lr_table(lr, lr_scale, steps, M, dev))
    train_loss = torch.empty(M, steps, device=dev)
    eval_steps = _eval_schedule(steps, eval_every)
    eval_losses = torch.empty(M, len(eval_steps), device=dev)
    if eval_steps:
        X_eval, Y_eval = (t.to(dev) for t in eval_data)
    alive = torch.ones(M, dtype=torch.bool, device=dev)
    steps_alive = torch.zeros(M, dtype=torch.long, device=dev)  # = the step a frozen model diverged at
    all_alive = True  # while True the masking below is skipped (a check on the host: a CPU only)

    eval_column = {s: k for k, s in enumerate(eval_steps)}

    def evaluate_at(step):
        if step in eval_column:
            eval_losses[:, eval_column[step]] = eval_loss(net, weights, X_eval, Y_eval, loss)

    batches = iter(stream)
    start = time.perf_counter()
    with num_threads(threads or default_threads()):
        for step in bar(range(steps), desc=progress) if progress else range(steps):
            evaluate_at(step)
            x, y = next(batches)
            x, y = (t.to(dev).expand(M, *t.shape[1:]) for t in (x, y))  # a shared batch: axis of 1
            losses = loss_and_gradient(net, weights, x, y, loss, grad_layers)
            train_loss[:, step] = losses
            # freeze a model once its loss or gradient is non-finite: zero gradient, zero step
            alive &= torch.isfinite(losses) & torch.isfinite(grad.sum(1))
            steps_alive += alive
            all_alive = all_alive and dev.type == "cpu" and bool(alive.all())
            training = 1.0 if all_alive else alive.float()[:, None]  # 1.0, or 0.0 for a frozen model
            if not all_alive:
                grad.nan_to_num_(0.0, 0.0, 0.0).mul_(training)
            opt.step(flat, grad, training)
        evaluate_at(steps)
        train_loss, eval_losses = train_loss.cpu().numpy(), eval_losses.cpu().numpy()
        diverged_at = torch.where(steps_alive < steps, steps_alive, -1).cpu().numpy()
    seconds = time.perf_counter() - start

    # after divergence the frozen model's losses mean nothing: NaN
    for m in np.flatnonzero(diverged_at >= 0):
        train_loss[m, diverged_at[m] + 1:] = np.nan
        eval_losses[m, np.asarray(eval_steps) >= diverged_at[m]] = np.nan
    final = [(W.clone(), b.clone()) for W, b in weights]
    return Result(final, train_loss, np.asarray(eval_steps, dtype=int), eval_losses, diverged_at,
                  seconds, str(dev))
