"""A weight-agnostic search for XOR in the spirit of Gaier & Ha (2019), small enough to enumerate.

A network is a feed-forward graph on the nodes ``bias (=1), x1, x2, h1 .. hH, out``: every hidden
node and the output apply an activation from WANN's list to the weighted sum of their inputs, and
the output ``y`` classifies an input as XOR = 1 when ``y > 0.5`` (targets 0 and 1). In the search
every connection carries the same weight w. All topologies with at most ``max_hidden`` hidden nodes
are evaluated at each w in ``shared_weights`` and ranked by mean accuracy over w, then by the
number of connections. The best topology is then also given independent weights: drawn at random,
and trained by gradient descent on the squared error.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from nnlab.config import param
from nnlab.train import num_threads

CHAPTER = "chapters/wann-review.qmd"

# WANN's activation functions (Gaier & Ha 2019; their code applies sin and cos to pi*x)
ACTIVATIONS = {
    "linear": lambda z: z,
    "step": lambda z: (z > 0).to(z.dtype) + 0 * z,    # + 0*z: derivative 0 (a.e.), still in the graph
    "sin": lambda z: torch.sin(torch.pi * z),
    "cos": lambda z: torch.cos(torch.pi * z),
    "gauss": lambda z: torch.exp(-z * z / 2),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "inverse": lambda z: -z,
    "abs": torch.abs,
    "relu": torch.relu,
}
N_SOURCES = 3                                   # bias, x1, x2
XOR_X = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float64)
XOR_T = torch.tensor([0, 1, 1, 0], dtype=torch.float64)


@dataclass(frozen=True)
class Config:
    max_hidden: int = param(2, ge=0, le=2)
    activations: tuple[str, ...] = param(tuple(ACTIVATIONS), choices=tuple(ACTIVATIONS), each=True)
    shared_weights: tuple[float, ...] = param((-2.0, -1.0, -0.5, 0.5, 1.0, 2.0), each=True)
    weight_range: float = param(2.0, gt=0)      # U(-r, r) for the random-weight conditions
    n_random: int = param(10000, ge=10)         # draws per random-weight condition
    sweep_points: int = param(1201, ge=11)      # shared weights in [-1.5 r, 1.5 r] for the figure
    top: int = param(20, ge=1)                  # ranked topologies kept in the summary
    train_inits: int = param(50, ge=1)
    train_steps: int = param(3000, ge=1)
    train_lr: float = param(0.05, gt=0)
    seed: int = param(0, ge=0)


PROFILES = {
    "full": Config(),
    "smoke": Config(max_hidden=1, n_random=100, sweep_points=61, top=5, train_inits=4, train_steps=50),
}


def node_names(n_hidden: int) -> list[str]:
    return ["bias", "x1", "x2", *(f"h{k + 1}" for k in range(n_hidden)), "out"]


def outputs(weights: torch.Tensor, acts, X: torch.Tensor = XOR_X) -> torch.Tensor:
    """Network outputs ``(..., len(X))``; ``weights[..., i, j]`` is the connection i -> j (0: none).

    ``acts`` names the activations of nodes 3, 4, ... (the hidden nodes in order, then the output).
    """
    lead = weights.shape[:-2]
    a = [torch.ones(*lead, len(X), dtype=weights.dtype),
         *(X[:, k].to(weights.dtype).expand(*lead, len(X)) for k in range(2))]
    for j, name in enumerate(acts, start=N_SOURCES):
        z = sum(a[i] * weights[..., i, j, None] for i in range(j))
        a.append(ACTIVATIONS[name](z))
    return a[-1]


def accuracy(y: torch.Tensor) -> torch.Tensor:
    """Fraction of the four XOR inputs classified right (XOR = 1 iff y > 0.5), over the last axis."""
    return ((y > 0.5) == XOR_T.bool()).to(torch.float64).mean(-1)


def topologies(n_hidden: int) -> np.ndarray:
    """Connection masks ``(n, N, N)`` of every feed-forward graph with ``n_hidden`` hidden nodes in
    which each hidden node has an input and an output and the output has an input; hidden nodes
    without a link between them are listed once per unordered pair (no relabelled duplicates)."""
    N = N_SOURCES + n_hidden + 1
    edges = [(i, j) for j in range(N_SOURCES, N) for i in range(j)]
    bits = np.array(list(itertools.product((False, True), repeat=len(edges))))
    masks = np.zeros((len(bits), N, N), dtype=bool)
    for e, (i, j) in enumerate(edges):
        masks[:, i, j] = bits[:, e]
    ok = masks[:, :, N - 1].any(1)
    for h in range(N_SOURCES, N - 1):
        ok &= masks[:, :, h].any(1) & masks[:, h, :].any(1)
    return masks[ok]


def canonical(mask: np.ndarray, acts: tuple[str, ...]) -> tuple:
    """A key equal for two networks that differ only by relabelling unlinked hidden nodes."""
    hidden = range(N_SOURCES, mask.shape[0] - 1)
    nodes = sorted((tuple(mask[:N_SOURCES, h]), bool(mask[h, -1]), acts[h - N_SOURCES], h) for h in hidden)
    if any(mask[h, k] for h in hidden for k in hidden):    # linked hidden nodes: keep the order
        return (mask.tobytes(), acts)
    return (tuple(n[:3] for n in nodes), tuple(mask[:N_SOURCES, -1]), acts[-1])


def describe(mask: np.ndarray) -> str:
    names = node_names(mask.shape[0] - N_SOURCES - 1)
    return " ".join(f"{names[i]}>{names[j]}" for i, j in zip(*np.nonzero(mask)))


def search(c: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every topology and activation assignment, evaluated at every shared weight.

    Returns the ranking (distinct networks, best first, ``top`` rows) and, per number of hidden
    nodes and connections, how many networks were evaluated and the best mean accuracy among them.
    """
    w = torch.tensor(c.shared_weights, dtype=torch.float64)
    found = []                                  # (n_hidden, masks, acts, accuracy (n_masks, n_w))
    for n_hidden in range(c.max_hidden + 1):
        masks = topologies(n_hidden)
        weights = torch.tensor(masks, dtype=torch.float64)[:, None] * w[None, :, None, None]
        for acts in itertools.product(c.activations, repeat=n_hidden + 1):
            found.append((n_hidden, masks, acts, accuracy(outputs(weights, acts)).numpy()))
    acc = np.concatenate([f[3] for f in found])
    where = [(k, i) for k, f in enumerate(found) for i in range(len(f[1]))]
    hidden = np.concatenate([np.full(len(f[1]), f[0]) for f in found])
    conns = np.concatenate([f[1].sum((1, 2)) for f in found])
    mean, best = acc.mean(1), acc.max(1)
    order = np.lexsort((hidden, -best, conns, -mean))    # mean desc, connections, max desc, hidden

    rows, seen = [], set()
    for n in order:
        k, i = where[n]
        mask, acts = found[k][1][i], found[k][2]
        key = canonical(mask, acts)
        if key in seen:
            continue
        seen.add(key)
        rows.append({"rank": len(rows) + 1, "hidden": int(hidden[n]), "connections": int(conns[n]),
                     "activations": ",".join(acts), "edges": describe(mask),
                     "mean_acc": mean[n], "min_acc": acc[n].min(), "max_acc": best[n],
                     **{f"acc_w{v:g}": a for v, a in zip(c.shared_weights, acc[n])}})
        if len(rows) == c.top:
            break
    pareto = (pd.DataFrame({"hidden": hidden, "connections": conns, "mean_acc": mean})
              .groupby(["hidden", "connections"])
              .agg(networks=("mean_acc", "size"), best_mean_acc=("mean_acc", "max")).reset_index())
    return pd.DataFrame(rows), pareto


def parse(row) -> tuple[np.ndarray, tuple[str, ...]]:
    """The mask and activations of a row of the search table."""
    names = node_names(int(row["hidden"]))
    mask = np.zeros((len(names), len(names)), dtype=bool)
    for edge in row["edges"].split():
        i, j = edge.split(">")
        mask[names.index(i), names.index(j)] = True
    return mask, tuple(row["activations"].split(","))


def train_weights(mask: np.ndarray, acts, c: Config) -> dict:
    """Gradient descent (Adam, full batch, squared error) on independent weights of one topology,
    from ``train_inits`` starts drawn from U(-r, r)."""
    g = torch.Generator().manual_seed(c.seed)
    m = torch.tensor(mask, dtype=torch.float64)
    weights = ((torch.rand(c.train_inits, *mask.shape, generator=g, dtype=torch.float64) * 2 - 1)
               * c.weight_range * m).requires_grad_(True)
    opt = torch.optim.Adam([weights], lr=c.train_lr)
    losses = np.empty((c.train_inits, c.train_steps), dtype=np.float32)
    for step in range(c.train_steps):
        loss = (outputs(weights * m, acts) - XOR_T).square().mean(-1)
        losses[:, step] = loss.detach().numpy()
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        final = accuracy(outputs(weights * m, acts)).numpy()
    return {"loss": losses, "accuracy": final}


def run(c: Config) -> dict:
    with num_threads(1):      # tiny tensors: threads only add overhead (four times slower on 2 cores)
        return _run(c)


def _run(c: Config) -> dict:
    ranked, pareto = search(c)
    best_mask, best_acts = parse(ranked.iloc[0])
    m = torch.tensor(best_mask, dtype=torch.float64)
    g = torch.Generator().manual_seed(c.seed)
    uniform = lambda *shape: (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) * c.weight_range  # noqa: E731

    # accuracy against the shared weight, for the three best topologies
    w_sweep = torch.linspace(-1.5 * c.weight_range, 1.5 * c.weight_range, c.sweep_points, dtype=torch.float64)
    sweep = np.stack([accuracy(outputs(torch.tensor(parse(row)[0], dtype=torch.float64) * w_sweep[:, None, None],
                                       parse(row)[1])).numpy() for _, row in ranked.head(3).iterrows()])

    # Gaier & Ha's four ways of setting the weights, for the best topology
    in_range = (w_sweep.abs() <= c.weight_range).numpy()
    trained = train_weights(best_mask, best_acts, c)
    per_condition = {
        "random weights": accuracy(outputs(uniform(c.n_random, *best_mask.shape) * m, best_acts)).numpy(),
        "random shared weight": accuracy(outputs(uniform(c.n_random, 1, 1) * m, best_acts)).numpy(),
        "tuned shared weight": np.array([sweep[0][in_range].max()]),
        "trained weights": trained["accuracy"],
    }
    conditions = pd.DataFrame([{"condition": k, "acc_mean": float(v.mean()), "acc_sd": float(v.std()),
                                "frac_perfect": float((v == 1).mean()), "n": len(v)}
                               for k, v in per_condition.items()])

    return {
        "summary": ranked,
        "pareto": pareto,
        "conditions": conditions,
        "w_sweep": w_sweep.numpy(),
        "acc_vs_w": sweep,
        "trained_loss": trained["loss"][:, ::max(1, c.train_steps // 500)],
        "trained_accuracy": trained["accuracy"],
        "n_evaluated": int(pareto["networks"].sum()),
    }
