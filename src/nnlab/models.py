"""M networks of one architecture, their parameters stacked along a leading model axis.

A layer's weights are ``W: (M, out, in)`` and biases ``b: (M, out)``; :func:`forward` maps inputs
``x: (M, B, n_in)`` to ``(M, B, n_out)`` with one batched matrix product per layer, so M small
networks cost about as many kernel launches as one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
LOSSES = ("mse", "xent")


@dataclass(frozen=True)
class Net:
    """Architecture: ``widths = (n_in, h1, ..., n_out)``; the output layer is linear.

    ``residual=True``: a hidden layer whose input and output widths are equal computes
    ``a + act(W a + b)``; where they differ (typically the first layer) there is no skip.
    """
    widths: tuple[int, ...]
    activation: str = "relu"
    residual: bool = False

    def __post_init__(self):
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"Net.widths = {self.widths!r}: need at least two positive widths")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Net.activation = {self.activation!r}: allowed are {', '.join(ACTIVATIONS)}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @property
    def layers(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every layer."""
        return list(zip(self.widths[:-1], self.widths[1:]))

    def skips(self) -> list[bool]:
        """Whether layer l adds its input to its output (hidden layers with equal widths)."""
        last = len(self.widths) - 2
        return [self.residual and l < last and n_in == n_out
                for l, (n_in, n_out) in enumerate(self.layers)]

    def n_params(self) -> int:
        """Number of weights and biases of one network."""
        return sum((n_in + 1) * n_out for n_in, n_out in self.layers)

    def flops_per_sample(self) -> int:
        """Multiply-adds x 2 of one training step (forward + backward) per sample and network."""
        # forward 2*in*out; backward: weight gradient 2*in*out, input gradient 2*in*out except layer 0
        fwd = sum(2 * n_in * n_out for n_in, n_out in self.layers)
        return 3 * fwd - 2 * self.widths[0] * self.widths[1]


def init_params(net: Net, seeds: Sequence[int], std: float | None = None,
                device: str | torch.device = "cpu") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Initial parameters of ``len(seeds)`` networks, model m drawn from its own ``seeds[m]``.

    ``std=None``: exactly ``torch.nn.Linear``'s default initialisation after ``torch.manual_seed(seed)``,
    layer by layer in order (the global RNG state of the caller is left untouched).
    ``std=s``: every weight and bias i.i.d. N(0, s^2) from ``torch.Generator().manual_seed(seed)``.
    """
    per_model = []
    for seed in seeds:
        if std is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                linears = [torch.nn.Linear(n_in, n_out) for n_in, n_out in net.layers]
            per_model.append([(lin.weight.detach(), lin.bias.detach()) for lin in linears])
        else:
            g = torch.Generator().manual_seed(int(seed))
            per_model.append([(torch.randn(n_out, n_in, generator=g) * std,
                               torch.randn(n_out, generator=g) * std) for n_in, n_out in net.layers])
    return [(torch.stack([m[l][0] for m in per_model]).to(device),
             torch.stack([m[l][1] for m in per_model]).to(device)) for l in range(len(net.layers))]


def forward(net: Net, params, x: torch.Tensor) -> torch.Tensor:
    """Outputs ``(M, B, n_out)`` of the M networks on inputs ``x: (M, B, n_in)``; differentiable."""
    act = ACTIVATIONS[net.activation]
    last = len(params) - 1
    for l, ((W, b), skip) in enumerate(zip(params, net.skips())):
        z = torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))
        if l == last:
            return z
        x = x + act(z) if skip else act(z)
    return x


ACTIVATION_GRADIENTS = {"relu": lambda g, a: torch.ops.aten.threshold_backward(g, a, 0),
                        "tanh": torch.ops.aten.tanh_backward}  # autograd's own formulas, in terms of act(z)


@torch.no_grad()
def loss_and_gradient(net: Net, params, x: torch.Tensor, y: torch.Tensor, loss: str, grads) -> torch.Tensor:
    """Mean loss ``(M,)`` of every model on its batch, and the gradient of their sum written into
    ``grads`` (``[(dW, db)]`` shaped like ``params``, typically views of one flat buffer).

    The numbers are autograd's on :func:`forward` + :func:`batch_loss`, bit for bit: the same kernels
    on the same operands (dW^T = x^T dz and dx = dz W as ``BaddbmmBackward`` computes them, db = dz
    summed over the batch, the activation's backward on its output, a residual's two gradients added),
    but without recording a graph, and every dW is written straight into ``grads`` (autograd would
    copy it twice: out of its transposed layout, then into the concatenated flat gradient).
    """
    act, backward = ACTIVATIONS[net.activation], ACTIVATION_GRADIENTS[net.activation]
    skips, last = net.skips(), len(params) - 1
    inputs, outputs = [], []  # of every layer: its input, and act(z) for the hidden ones
    for l, (W, b) in enumerate(params):
        inputs.append(x)
        z = torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))
        if l < last:
            outputs.append(act(z))
            x = x + outputs[-1] if skips[l] else outputs[-1]
    with torch.enable_grad():  # the loss's own gradient: autograd on the loss alone
        out = z.requires_grad_()
        losses = batch_loss(out, y, loss)
        (dz,) = torch.autograd.grad(losses.sum(), out)
    for l in range(last, -1, -1):
        (W, _), (dW, db) = params[l], grads[l]
        dW.copy_(torch.bmm(inputs[l].transpose(1, 2), dz).transpose(1, 2))
        db.copy_(dz.sum(1, keepdim=True).squeeze(1))
        if l == 0:
            break
        dx = torch.bmm(dz, W)
        if skips[l]:  # x_{l+1} = x_l + act(z_l): the identity path brings x_{l+1}'s gradient
            dx = dx + dx_next
        dx_next = dx
        dz = backward(dx, outputs[l - 1])
    return losses.detach()


class Module(torch.nn.Module):
    """One network of ``net`` written the plain PyTorch way (nn.Linear layers): the reference the
    engine is tested and benchmarked against, and a handy single model for analysis."""

    def __init__(self, net: Net, params=None, m: int = 0):
        super().__init__()
        self.net = net
        self.linears = torch.nn.ModuleList(torch.nn.Linear(i, o) for i, o in net.layers)
        if params is not None:
            with torch.no_grad():
                for lin, (W, b) in zip(self.linears, params):
                    lin.weight.copy_(W[m])
                    lin.bias.copy_(b[m])

    def forward(self, x):
        act = ACTIVATIONS[self.net.activation]
        *hidden, out = self.linears
        for lin, skip in zip(hidden, self.net.skips()):
            x = x + act(lin(x)) if skip else act(lin(x))
        return out(x)


def sample_losses(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample losses ``(M, B)``: squared error summed over outputs, or softmax cross-entropy."""
    if loss == "mse":
        y = y.unsqueeze(-1) if y.dim() < out.dim() else y
        return (out - y).square().sum(-1)
    if loss == "xent":
        M, B, C = out.shape
        return F.cross_entropy(out.reshape(M * B, C), y.reshape(M * B), reduction="none").view(M, B)
    raise ValueError(f"loss = {loss!r}: allowed are {', '.join(LOSSES)}")


def batch_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean loss of every model ``(M,)``, as ``F.mse_loss`` / ``F.cross_entropy`` on each model alone."""
    if loss == "mse":
        y = y.unsqueeze(-1) if y.dim() < out.dim() else y
        return (out - y).square().mean(dim=(1, 2))
    return sample_losses(out, y, loss).mean(1)


@torch.no_grad()
def eval_loss(net: Net, params, X: torch.Tensor, Y: torch.Tensor, loss: str = "mse",
              chunk: int = 4096) -> torch.Tensor:
    """Loss ``(M,)`` of every model on one shared set (X, Y), in chunks of samples; stays on device."""
    M, total = params[0][0].shape[0], 0.0
    for s in range(0, X.shape[0], chunk):
        x, y = X[s:s + chunk], Y[s:s + chunk]
        out = forward(net, params, x.unsqueeze(0).expand(M, *x.shape))
        total = total + sample_losses(out, y.unsqueeze(0).expand(M, *y.shape), loss).sum(1)
    n_out = params[-1][0].shape[1] if loss == "mse" else 1
    return total / (X.shape[0] * n_out)


def evaluate(net: Net, params, X: torch.Tensor, Y: torch.Tensor, loss: str = "mse",
             chunk: int = 4096) -> np.ndarray:
    """Loss of every model on the shared set (X, Y) as a numpy array ``(M,)`` (mean over samples
    and outputs for "mse", over samples for "xent"), evaluated ``chunk`` samples at a time."""
    device = params[0][0].device
    return eval_loss(net, params, X.to(device), Y.to(device), loss, chunk).cpu().numpy()
