"""The basic network of seed 001: a two-layer perceptron with one input, bias units, a sigmoid hidden
layer and a linear output, trained by full-batch gradient descent on the mean of ½(o − y)².

    X = [x, 1],   H = [σ(U·X); 1],   o = V·H,     U ∈ R^{(h−1)×2},  V ∈ R^{1×h}.

``forward``/``gradients``/``loss`` are the plain vectorised formulas (seed 001, eqs. 1-2);
``train`` runs many epochs fast *and* in the seed notebook's floating-point order (see its docstring).
The standard data and initial weights are those of the seed's public notebook.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_TRAIN, N_TEST = 1000, 100
DATA_SEED = 222337497072607291153223098371913928704      # the notebook's `seed`
WEIGHT_SEED = 36255793825986746149655859236796938907     # the notebook's `seed_weights`


def f1(x):
    """Target f1(x) = exp(x/5) on [−5, 5]."""
    return np.exp(x / 5)


def f2(x):
    """Target f2(x) = sin(x)·(25 − x²) on [−5, 5] (written as the notebook does)."""
    return np.sin(x) * (-x * x + 25)


TARGETS = {"f1": f1, "f2": f2}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def data(seed: int = DATA_SEED, n_train: int = N_TRAIN, n_test: int = N_TEST):
    """Inputs (x_train, x_test) uniform on [−5, 5), drawn in the notebook's order from one generator.

    The default seed gives the notebook's standard datasets; any other seed a "random" dataset.
    """
    rng = np.random.default_rng(seed)
    x_train = (rng.random(n_train) - 0.5) * 10
    x_test = (rng.random(n_test) - 0.5) * 10
    return x_train, x_test


def initial_weights(h: int, seed: int = WEIGHT_SEED, scale: float = 0.01):
    """Small normal weights U (h−1, 2) then V (1, h) from one generator, as the notebook draws them."""
    rng = np.random.default_rng(seed)
    U = rng.normal(0, scale, size=(h - 1, 2))
    V = rng.normal(0, scale, size=(1, h))
    return U, V


def forward(U, V, x):
    """Hidden layer H (N, h) — last column the bias unit 1 — and outputs o (N,) for inputs x (N,)."""
    x = np.asarray(x, dtype=float)
    X = np.stack([x, np.ones_like(x)], axis=1)               # rows X = [x, 1]
    H = np.concatenate([sigmoid(X @ U.T), np.ones((x.size, 1))], axis=1)
    return H, H @ V[0]


def loss(U, V, x, y) -> float:
    """Mean over samples of ½(o − y)²."""
    _, o = forward(U, V, x)
    return float(np.mean((o - y) ** 2) / 2)


def gradients(U, V, x, y):
    """Gradients (dU, dV) of the mean loss, i.e. seed 001 eqs. (1)-(2) averaged over the N samples:

        dl/dV = (o − y) Hᵀ,     dl/dU_i = (o − y) V_i H_i (1 − H_i) Xᵀ.
    """
    H, o = forward(U, V, x)
    e = o - y
    X = np.stack([x, np.ones_like(x)], axis=1)
    dV = (e @ H)[None, :] / x.size
    delta = e[:, None] * V[0, :-1] * H[:, :-1] * (1 - H[:, :-1])   # (N, h−1): dl/d(U_i·X)
    dU = delta.T @ X / x.size
    return dU, dV


def hessian(params, h: int, x, y):
    """Exact Hessian (…, P, P) of the mean loss at parameter vectors ``params`` (…, P), ``flatten`` order:

        ∇²L = mean_n [∇o ∇oᵀ + (o − y) ∇²o],   ∇²o: ∂²o/∂U_ij∂U_il = V_i σ''_i X_j X_l,
                                                     ∂²o/∂U_ij∂V_i  = σ'_i X_j,
    with σ' = σ(1 − σ) and σ'' = σ'(1 − 2σ) at U_i·X; all other second derivatives are zero.
    """
    U, V = unflatten(params, h)
    lead, k = U.shape[:-2], h - 1
    X = np.stack([x, np.ones_like(x)], axis=-1)                      # (N, 2)
    s = sigmoid(X @ np.swapaxes(U, -1, -2))                          # (…, N, k)
    ds, v = s * (1 - s), V[..., 0, None, :k]
    e = s @ V[..., 0, :k, None] + V[..., 0, k:, None] - y[:, None]   # (…, N, 1)
    dU = ((v * ds)[..., None] * X[:, None, :]).reshape(*lead, len(x), 2 * k)   # ∂o/∂U_ij
    J = np.concatenate([dU, s, np.ones((*lead, len(x), 1))], axis=-1)          # ∂o/∂θ (…, N, P)
    H = np.swapaxes(J, -1, -2) @ J
    curv = e * v * ds * (1 - 2 * s)                                   # (…, N, k): e V_i σ''_i
    blocks = (np.swapaxes((curv[..., None] * X[:, None, :]).reshape(*lead, len(x), 2 * k), -1, -2)
              @ X).reshape(*lead, k, 2, 2)                            # Σ_n e V_i σ''_i X Xᵀ
    cross = np.swapaxes(e * ds, -1, -2) @ X                           # (…, k, 2): Σ_n e σ'_i X
    for i in range(k):
        H[..., 2 * i: 2 * i + 2, 2 * i: 2 * i + 2] += blocks[..., i, :, :]
        H[..., 2 * i: 2 * i + 2, 2 * k + i] += cross[..., i, :]
        H[..., 2 * k + i, 2 * i: 2 * i + 2] += cross[..., i, :]
    return H / len(x)


def flatten(U, V):
    """Parameter vector [U row by row, V] (the order used for gradients and Hessians)."""
    return np.concatenate([np.reshape(U, (*np.shape(U)[:-2], -1)), np.reshape(V, (*np.shape(V)[:-2], -1))], -1)


def unflatten(params, h: int):
    """Inverse of ``flatten``: (…, 3h−2) -> U (…, h−1, 2), V (…, 1, h)."""
    params = np.asarray(params)
    lead = params.shape[:-1]
    return params[..., : 2 * (h - 1)].reshape(*lead, h - 1, 2), params[..., 2 * (h - 1):].reshape(*lead, 1, h)


@dataclass
class Trajectory:
    """Everything recorded by ``train`` for R runs; index 0 of the epoch axis is before training.

    ``params`` (R, E+1, 3h−2) and ``gradient`` (R, E, 3h−2) use the ``flatten`` order; gradient[t] is
    the (mean-loss) gradient at params[t]. ``diverged_at`` is the first epoch whose loss is not
    finite, −1 for runs that stay finite.
    """
    h: int
    lr: np.ndarray
    test_error: np.ndarray
    train_error: np.ndarray
    params: np.ndarray
    gradient: np.ndarray
    diverged_at: np.ndarray

    @property
    def gradient_norm(self):
        return np.sqrt(np.sum(self.gradient ** 2, axis=-1))

    @property
    def gradient_angle(self):
        """Angle in degrees between consecutive gradients, (R, E−1): entry t is between steps t and t+1."""
        g = self.gradient
        cos = np.sum(g[:, 1:] * g[:, :-1], axis=-1) / (self.gradient_norm[:, 1:] * self.gradient_norm[:, :-1])
        return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def train(U0, V0, x_train, y_train, x_test, y_test, lr, epochs: int, dtype=np.float64,
          fma: bool = True) -> Trajectory:
    """Full-batch gradient descent for R runs at once (U0 (R, h−1, 2), V0 (R, 1, h); data (N,) or (R, N);
    lr scalar or (R,)), vectorised over samples and runs.

    The arithmetic is the seed notebook's, operation for operation: U·X through BLAS with X = [1, x]
    (the fused multiply-add the notebook's ``U @ X`` performs), V·H summed unit after unit, and every
    sum over samples taken sample after sample (``einsum`` over a (samples, terms) array) rather than
    pairwise. On the x86-64 machines of this book (OpenBLAS with FMA) this reproduces the per-sample
    loop bit for bit; ``fma=False`` rounds U_i0·x before adding U_i1, as BLAS does without FMA.
    These last-bit details matter once a run oscillates (see the chapter). Overflow gives inf/NaN, recorded
    in ``diverged_at``; other runs of the batch are unaffected.
    """
    U0 = np.asarray(U0, dtype)
    V0 = np.asarray(V0, dtype)
    if U0.ndim == 2:
        U0, V0 = U0[None], V0[None]
    R, k = U0.shape[0], U0.shape[1]
    h, P = k + 1, 3 * k + 1
    def both(a, b):                                 # (R, N+M): training then test samples
        return np.concatenate([np.broadcast_to(a, (R, np.shape(a)[-1])),
                               np.broadcast_to(b, (R, np.shape(b)[-1]))], -1).astype(dtype)

    x, y = both(x_train, x_test), both(y_train, y_test)
    N, M = np.shape(x_train)[-1], np.shape(x_test)[-1]
    if M > N:
        raise ValueError("train() needs at least as many training as test samples")
    lr = np.broadcast_to(np.asarray(lr, dtype), (R,))[:, None]
    ones_x = np.stack([np.ones_like(x), x], axis=1)              # (R, 2, N+M): rows [1, x]
    xs = x[:, None, :]
    xt = xs[..., :N]

    # Internal parameter order: [U_01, U_00, U_11, U_10, …, V_0 … V_{h−1}], so that
    # theta[:, :2k].reshape(R, k, 2) is U with its columns swapped, ready to multiply [1, x].
    swap = np.concatenate([np.arange(2 * k).reshape(k, 2)[:, ::-1].ravel(), np.arange(2 * k, P)])
    theta = flatten(U0, V0)[:, swap]
    params = np.full((R, epochs + 1, P), np.nan, dtype)
    gradient = np.full((R, epochs, P), np.nan, dtype)
    test_error = np.full((R, epochs + 1), np.nan, dtype)
    train_error = np.full((R, epochs + 1), np.nan, dtype)

    terms = np.zeros((R, P + 2, N), dtype)      # per-sample terms: gradient (P rows), ½e² train, ½e² test
    by_sample = np.empty((R, N, P + 2), dtype)  # the same, samples first, for the sample-by-sample sum
    sq = np.empty((R, N + M), dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(epochs + 1):
            params[:, t] = theta
            if fma:                                                  # U·X = fma(U_i0, x, U_i1)
                S = theta[:, : 2 * k].reshape(R, k, 2) @ ones_x      # (R, k, N+M)
            else:                                                    # U_i0·x rounded, then + U_i1
                S = theta[:, 1: 2 * k: 2, None] * xs + theta[:, 0: 2 * k: 2, None]
            np.negative(S, out=S)
            np.exp(S, out=S)
            S += 1
            np.divide(1, S, out=S)                                   # σ(U·X), in the notebook's steps
            v = theta[:, 2 * k: 3 * k, None]
            o = np.add.reduce(S * v, axis=1)                         # V·H, one hidden unit after another
            o += theta[:, -1:]
            e = np.subtract(o, y, out=o)
            np.multiply(e, e, out=sq)
            sq /= 2
            terms[:, -2] = sq[:, :N]
            terms[:, -1, :M] = sq[:, N:]
            if t < epochs:
                et, St = e[:, None, :N], S[:, :, :N]
                g = terms[:, 0: 2 * k: 2]                            # dl/dU_i1 = ((e V_i) H_i)(1 − H_i)
                np.multiply(et, v, out=g)
                g *= St
                g *= 1 - St
                np.multiply(g, xt, out=terms[:, 1: 2 * k: 2])        # dl/dU_i0 = (…)·x
                np.multiply(et, St, out=terms[:, 2 * k: 3 * k])      # dl/dV_i = e H_i
                terms[:, 3 * k] = e[:, :N]                           # dl/dV_{h−1} = e
            np.copyto(by_sample, terms.transpose(0, 2, 1))
            total = np.einsum("rnq->rq", by_sample)                  # sums over samples, in sample order
            train_error[:, t] = total[:, -2] / N
            test_error[:, t] = total[:, -1] / M
            if t == epochs:
                break
            gradient[:, t] = total[:, :P] / N
            theta = theta - lr * total[:, :P] / N
            if not np.isfinite(theta).any():                         # every run has blown up
                break
    unswap = np.argsort(swap)
    finite = np.isfinite(train_error) & np.isfinite(test_error)
    diverged_at = np.where(finite.all(axis=1), -1, np.argmin(finite, axis=1))
    return Trajectory(h, lr[:, 0].astype(float), test_error, train_error, params[..., unswap],
                      gradient[..., unswap], diverged_at)
