"""Backpropagation in matrix form for the network of Higham & Higham (2019), eqs. (3.1)-(3.2).

    a[1] = x,   z[l] = W[l] a[l-1] + b[l],   a[l] = sigma_l(z[l]),   l = 2, ..., L.

A batch is stored one sample per row (A[l] has shape N x n_l), so every per-sample quantity is a row
vector, as in the backward pass of seed 004: the row g[l] = dC/da[l] is pulled back by

    g[l-1] = (g[l] * s[l]) W[l],   s[l] = sigma_l'(z[l])^T   (elementwise product, then a matrix product).

One backward pass serves both uses: with g[L] = (a[L] - y)/N it yields the gradients of the quadratic
cost with respect to every W[l], b[l]; with g[L] = 1 it yields g[1], the gradient of the output a[L]
with respect to the input x. ``activation`` is one name for every layer (Higham's network) or one name
per layer, e.g. ("tanh", "tanh", "identity") for a linear output. Finite differences and torch
autograd give independent references.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Params = list[tuple[np.ndarray, np.ndarray]]  # [(W[2], b[2]), ..., (W[L], b[L])]


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1/(1+e^-z), without overflow warnings for large |z|


ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    # name: (sigma(z), sigma'(z)); ReLU'(0) is taken as 0, as torch does.
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "identity": (lambda z: z, np.ones_like),
}


def per_layer(activation: str | Sequence[str], n_layers: int) -> list[str]:
    """One activation name per layer 2..L; a single name is used for every layer."""
    names = [activation] * n_layers if isinstance(activation, str) else list(activation)
    if len(names) != n_layers or any(n not in ACTIVATIONS for n in names):
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or a list of {n_layers} "
                         f"of them; got {activation!r}")
    return names


def random_network(sizes: Sequence[int], rng: np.random.Generator, scale: float = 1.0) -> Params:
    """Weights W[l] ~ N(0, scale^2 / n_{l-1}) and biases b[l] ~ N(0, 0.1^2) for layer sizes n_1..n_L."""
    return [(rng.normal(0.0, scale / np.sqrt(n_in), (n_out, n_in)), rng.normal(0.0, 0.1, n_out))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def forward(params: Params, X: np.ndarray, activation):
    """Forward pass on a batch X (N x n_1): the activations A[1..L] and the slopes S[2..L] = sigma'(Z)."""
    A, S = [X], []
    for (W, b), name in zip(params, per_layer(activation, len(params))):
        sigma, dsigma = ACTIVATIONS[name]
        Z = A[-1] @ W.T + b
        A.append(sigma(Z))
        S.append(dsigma(Z))
    return A, S


def backward(params: Params, A: list, S: list, G: np.ndarray, param_grads: bool = True):
    """Pull the rows G = dC/dA[L] back through the network.

    Returns the parameter gradients [(dC/dW[l], dC/db[l])] and G[1] = dC/dA[1]: for each layer,
    Delta = G * S[l] (its rows are the delta[l]^T), dC/dW[l] = Delta^T A[l-1], dC/db[l] = the column
    sums of Delta, and G <- Delta W[l]. ``param_grads=False`` skips the outer products (returns []).
    """
    grads = []
    for (W, _), A_prev, S_l in zip(reversed(params), reversed(A[:-1]), reversed(S)):
        delta = G * S_l
        if param_grads:
            grads.append((delta.T @ A_prev, delta.sum(axis=0)))
        G = delta @ W
    return grads[::-1], G


def output(params: Params, X: np.ndarray, activation) -> np.ndarray:
    """The network output a[L] for each row of X."""
    return forward(params, X, activation)[0][-1]


def quadratic_cost(params: Params, X: np.ndarray, Y: np.ndarray, activation) -> float:
    """C = (1/N) sum_n 1/2 ||a[L](x_n) - y_n||^2, the dataset average of the squared error."""
    return float(0.5 * ((output(params, X, activation) - Y) ** 2).sum() / len(X))


def cost_gradients(params: Params, X: np.ndarray, Y: np.ndarray, activation) -> Params:
    """dC/dW[l], dC/db[l] of the quadratic cost by one forward and one backward pass."""
    A, S = forward(params, X, activation)
    grads, _ = backward(params, A, S, (A[-1] - Y) / len(X))
    return grads


def input_gradient(params: Params, x: np.ndarray, activation) -> np.ndarray:
    """The gradient of the scalar output a[L](x) (n_L = 1) with respect to the input x (seed 004).

    Forward pass saving s[l] = sigma'(z[l])^T; backward pass from g[L] = 1 (not a[L]) through
    g[l-1] = (g[l] * s[l]) W[l]; the row g[1] is the gradient, transposed.
    """
    if params[-1][0].shape[0] != 1:
        raise ValueError(f"input_gradient needs a scalar output (n_L = 1); here n_L = {params[-1][0].shape[0]}")
    A, S = forward(params, x[None, :], activation)
    _, g = backward(params, A, S, np.ones((1, 1)), param_grads=False)
    return g[0]


def central_difference(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-6):
    """Jacobian df/dx by central differences (f(x + h e_j) - f(x - h e_j)) / 2h; shape f(x).shape + x.shape.

    Truncation error O(h^2), rounding error O(eps/h): h ~ 1e-5..1e-6 balances them in float64.
    """
    columns = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = h
        columns.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.moveaxis(np.array(columns), 0, -1).reshape(columns[0].shape + x.shape)


def forward_difference_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6):
    """Gradient of a scalar f by forward differences: n + 1 evaluations of f, one per input plus f(x)."""
    f0 = f(x)
    grad = np.empty(x.size)
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = h
        grad[j] = (f(x + e) - f0) / h
    return grad


# --- torch autograd references (float64), imported lazily -------------------------------------

def _torch_output(params, x, activation):
    import torch
    fns = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}
    a = x
    for (W, b), name in zip(params, per_layer(activation, len(params))):
        a = fns[name](a @ W.T + b)
    return a


def autograd_input_gradient(params: Params, x: np.ndarray, activation) -> np.ndarray:
    """Reference for input_gradient: torch reverse-mode autodiff."""
    import torch
    Wb = [(torch.from_numpy(W), torch.from_numpy(b)) for W, b in params]
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    _torch_output(Wb, xt, activation).sum().backward()
    return xt.grad.numpy()


def autograd_cost_gradients(params: Params, X: np.ndarray, Y: np.ndarray, activation) -> Params:
    """Reference for cost_gradients: torch autograd of the same quadratic cost."""
    import torch
    Wb = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in params]
    out = _torch_output(Wb, torch.from_numpy(X), activation)
    (0.5 * ((out - torch.from_numpy(Y)) ** 2).sum() / len(X)).backward()
    return [(W.grad.numpy(), b.grad.numpy()) for W, b in Wb]
