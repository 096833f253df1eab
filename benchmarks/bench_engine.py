"""How close does the batched engine come to this machine's fp32 matmul peak on the book's networks?

For the three networks Challenge 2 trains, at their batch sizes, with M models in one engine call
(Adam, a fixed dataset shuffled per model), it prints the achieved FLOP/s (matmul FLOPs of forward
and backward, ``Net.flops_per_sample``) against a large single-thread sgemm (2048^3) timed next to it,
and the time of the same model-steps done one model at a time in plain PyTorch (nn.Module,
torch.optim.Adam, loss.item() every step). Every figure is the best of ``--repeats`` timings: the
machine is shared, and the best timing is the least disturbed one. Last line:

    engine: S_e a%, S_o b%, bell c% of fp32 peak; d x faster than one model at a time

a, b, c at the number of models the experiments batch in one engine call (teacher_student: S_e's
lr sweep, 3 teachers x 5 rates = 15; S_o's, one teacher x 5 rates = 5; bell: one polynomial's
3 rates x 3 seeds = 9); d: all three workloads at those numbers together, batched against the same
model-steps one model at a time. 27 models (what a bigger batch would give) is printed above it, and
at the experiment's number the time of the step's matrix products and of its Adam update called alone
(what the step costs without per-operation overhead and the elementwise work).
Times are CPU seconds (``time.process_time``), steadier than wall time when other processes share
the cores.

    .venv/bin/python benchmarks/bench_engine.py [--models 5 15 27] [--repeats 3] [--quick]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nnlab.models import Module, Net, init_params
from nnlab.train import Adam, num_threads, shuffled_epochs, train

# name: (network, batch size, steps timed per call, models the experiment batches, other numbers of models)
WORKLOADS = {
    "S_e": (Net((100, 75, 50, 10, 1)), 128, 200, 15, (3, 27)),                   # the exact student
    "S_o": (Net((100, 200, 200, 200, 100, 1)), 128, 20, 5, (1, 27)),            # over-parameterised
    "bell": (Net((6,) + (50,) * 8 + (1,), residual=True), 20, 400, 9, (2, 27)),  # Bell's residual net
}


def cpu_seconds(f) -> float:
    """CPU seconds of ``f()``: on a shared machine far steadier than wall time (one thread runs it)."""
    start = time.process_time()
    f()
    return time.process_time() - start


def sgemm_peak(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n x n fp32 matrix product on the current thread count (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n ** 3 / min(cpu_seconds(lambda: a @ b) for _ in range(repeats))


def dataset(net: Net, batch: int):
    """50 batches of inputs in [-1, 1] and a smooth target."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(50 * batch, net.widths[0], generator=g) * 2 - 1
    return X, torch.sin(X.sum(1, keepdim=True))


def batched_seconds(net: Net, batch: int, M: int, steps: int) -> float:
    """CPU seconds per step of the engine training M models together (set-up included)."""
    X, Y = dataset(net, batch)
    seeds = list(range(M))
    return cpu_seconds(lambda: train(net, init_params(net, seeds), shuffled_epochs(X, Y, batch, seeds), steps,
                                     [1e-4 * 1.1 ** m for m in range(M)], threads=1)) / steps


def one_model_seconds(net: Net, batch: int, steps: int) -> float:
    """CPU seconds per step of one model trained the plain PyTorch way on the same kind of batches."""
    X, Y = dataset(net, batch)
    model = Module(net, init_params(net, [0]), 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))

    def run():
        for step in range(steps):
            idx = order[(step * batch) % len(X):][:batch]
            loss = F.mse_loss(model(X[idx]), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
    return cpu_seconds(run) / steps


def kernel_seconds(net: Net, batch: int, M: int, repeats: int = 20) -> tuple[float, float]:
    """CPU seconds per step of the two kernel groups a training step cannot do without, called alone
    exactly as autograd calls them: every layer's matrix products (forward baddbmm, input-gradient
    bmm except layer 0, weight-gradient bmm) and the Adam update of the (M, P) parameters."""
    g = torch.Generator().manual_seed(0)
    layers = [(torch.randn(M, batch, i, generator=g), torch.randn(M, o, i, generator=g),
               torch.randn(M, o, generator=g), torch.randn(M, batch, o, generator=g)) for i, o in net.layers]

    def matmuls():
        for l, (x, W, b, dz) in enumerate(layers):
            torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))
            if l:
                torch.bmm(dz, W)
            torch.bmm(x.transpose(1, 2), dz)
    flat, grad = torch.randn(M, net.n_params(), generator=g), torch.randn(M, net.n_params(), generator=g)
    adam = Adam(flat, torch.full((repeats + 1, M), 1e-4, dtype=torch.float64))
    matmuls(), adam.step(flat, grad, 1.0)  # warm-up
    return (cpu_seconds(lambda: [matmuls() for _ in range(repeats)]) / repeats,
            cpu_seconds(lambda: [adam.step(flat, grad, 1.0) for _ in range(repeats)]) / repeats)


def best(f, repeats: int) -> float:
    return min(f() for _ in range(repeats))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, nargs="+",
                    help="numbers of models trained together (default: per network, a few; the summary "
                         "line is always at the number the experiment batches)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="few steps (checks that it runs)")
    args = ap.parse_args()
    with num_threads(1):
        print(f"torch {torch.__version__}, 1 thread, CPU capability {torch.backends.cpu.get_cpu_capability()}")
        percent, batched_total, one_total = {}, 0.0, 0.0
        for name, (net, batch, steps, used, others) in WORKLOADS.items():
            steps = max(3, steps // 20) if args.quick else steps
            flops = net.flops_per_sample() * batch  # per model and step
            one = best(lambda: one_model_seconds(net, batch, steps), args.repeats)
            print(f"{name} {net.widths} batch {batch}: one model, plain PyTorch: {one * 1e3:.3f} ms/step "
                  f"({flops / one / 1e9:.1f} GFLOP/s)")
            for M in sorted(set(args.models or others) | {used}):
                batched_seconds(net, batch, M, 3)  # warm-up
                # the peak is measured next to every timing: the load of a shared machine drifts
                t, peak = float("inf"), 0.0
                for _ in range(args.repeats):
                    peak = max(peak, sgemm_peak(repeats=2))
                    t = min(t, batched_seconds(net, batch, M, steps))
                share = 100 * flops * M / t / peak
                print(f"  {M:3d} models: {t * 1e3:7.3f} ms/step, {t / M * 1e3:.3f} ms per model-step, "
                      f"{flops * M / t / 1e9:5.1f} GFLOP/s = {share:.0f}% of sgemm's {peak / 1e9:.0f}; "
                      f"{one * M / t:.1f}x one model at a time" + ("  (as the experiment)" if M == used else ""))
                if M == used:
                    mm, opt = (min(v) for v in zip(*(kernel_seconds(net, batch, M) for _ in range(args.repeats))))
                    print(f"       of which kernels alone: matmuls {mm / M * 1e3:.3f} + Adam {opt / M * 1e3:.3f} "
                          f"ms per model-step ({100 * (mm + opt) / t:.0f}% of the step; the rest is elementwise "
                          f"work, copies and autograd)")
                    percent[name] = share
                    batched_total += t * steps
                    one_total += one * M * steps
        print(f"engine: S_e {percent['S_e']:.0f}%, S_o {percent['S_o']:.0f}%, bell {percent['bell']:.0f}% "
              f"of fp32 peak; {one_total / batched_total:.1f} x faster than one model at a time")


if __name__ == "__main__":
    main()
