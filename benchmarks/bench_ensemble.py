"""How fast is the batched engine? Two figures, printed last:

1. sweep: 8 residual MLPs of the Challenge 2B shape (6 -> 50, seven 50 -> 50, 50 -> 1; batch 20) for
   2,000 Adam steps, batched vs the same 8 runs one after another in plain PyTorch (nn.Module,
   torch.optim.Adam, loss.item() every step);
2. limit: this machine's fp32 matmul peak (a large square sgemm) vs the engine's achieved FLOP/s on
   the Challenge 2A over-parameterised student (100-200-200-200-100-1, batch 128, several models).

    .venv/bin/python benchmarks/bench_ensemble.py [--threads 1] [--steps 2000] [--quick] [--choices]
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from nnlab.device import threads
from nnlab.models import Module, Net, batch_loss, forward, init_params
from nnlab.train import shuffled_epochs, train

SWEEP_NET = Net((6,) + (50,) * 8 + (1,), residual=True)
STUDENT_NET = Net((100, 200, 200, 200, 100, 1))


def data(net: Net, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, net.widths[0], generator=g) * 2 - 1
    return X, X.prod(1, keepdim=True).repeat(1, net.widths[-1])


def sequential(net: Net, params, X, Y, batch: int, steps: int, lrs, seeds) -> float:
    """Seconds for the M runs one after another, the way a plain PyTorch script trains one model."""
    start = time.perf_counter()
    for m, (lr, seed) in enumerate(zip(lrs, seeds)):
        model = Module(net, params, m)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed)
        step = 0
        while step < steps:
            order = torch.randperm(len(X), generator=g)
            for s in range(0, len(X), batch):
                if step == steps:
                    break
                idx = order[s:s + batch]
                loss = F.mse_loss(model(X[idx]), Y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss.item()
                step += 1
    return time.perf_counter() - start


def batched(net: Net, M: int, batch: int, steps: int, threads: int, n_data: int = 1000) -> float:
    """Seconds for the engine to train M models (one shuffling order per model) for ``steps`` steps."""
    X, Y = data(net, n_data)
    seeds = list(range(M))
    lrs = [1e-3 * 1.5 ** m for m in range(M)]
    result = train(net, init_params(net, seeds), shuffled_epochs(X, Y, batch, seeds), steps, lrs,
                   threads=threads)
    return result.seconds


def sgemm_peak(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n x n fp32 matrix product: best of ``repeats`` timings of 3 products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        best = min(best, (time.perf_counter() - start) / 3)
    return 2 * n ** 3 / best


def gradient_seconds(net: Net, M: int, batch: int, how: str, repeats: int = 50) -> float:
    """Best time of one forward + backward of M models, through bmm (the engine) or torch.func.vmap."""
    params = init_params(net, range(M))
    leaves = [t.requires_grad_() for layer in params for t in layer]
    x, y = torch.randn(M, batch, net.widths[0]), torch.randn(M, batch, net.widths[-1])

    def one_model_loss(flat, xm, ym):
        return F.mse_loss(torch.func.functional_call(model, dict(zip(names, flat)), (xm,)), ym)
    model = Module(net)
    names = [n for n, _ in model.named_parameters()]
    vmapped = torch.func.vmap(torch.func.grad(one_model_loss))
    step = {"bmm": lambda: torch.autograd.grad(batch_loss(forward(net, params, x), y, "mse").sum(), leaves),
            "vmap": lambda: vmapped(tuple(t.detach() for t in leaves), x, y)}[how]
    step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def choices():
    """The measurements behind two choices: bmm rather than vmap, and one thread."""
    for net, M, batch in ((SWEEP_NET, 8, 20), (STUDENT_NET, 16, 128)):
        torch.set_num_threads(1)
        bmm, vmap = (gradient_seconds(net, M, batch, how) for how in ("bmm", "vmap"))
        print(f"choice {M} x {net.widths}, batch {batch}: forward+backward bmm {bmm * 1e3:.2f} ms, "
              f"vmap {vmap * 1e3:.2f} ms")
        steps = 200 if net is SWEEP_NET else 10
        per_step = {n: min(batched(net, M, batch, steps, n) for _ in range(3)) / steps
                    for n in range(1, (os.cpu_count() or 1) + 1)}
        print("choice   training step with " + ", ".join(f"{n} thread(s) {t * 1e3:.2f} ms"
                                                     for n, t in per_step.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=threads(),
                    help="torch threads for every figure (default: NNLAB_THREADS or 1, the engine's default)")
    ap.add_argument("--steps", type=int, default=2000, help="steps of the sweep")
    ap.add_argument("--models", type=int, default=16, help="models trained together in the limit test")
    ap.add_argument("--quick", action="store_true", help="a few steps only (checks that it runs)")
    ap.add_argument("--choices", action="store_true", help="first measure bmm vs vmap and 1 vs all threads")
    args = ap.parse_args()
    steps = 50 if args.quick else args.steps
    if args.choices:
        choices()
    torch.set_num_threads(args.threads)  # the sequential runs and the sgemm too
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")

    # 1. the sweep: same initial weights, same learning rates, same kind of batches
    M, batch, seeds = 8, 20, list(range(8))
    lrs = [1e-3 * 1.5 ** m for m in range(M)]
    X, Y = data(SWEEP_NET, 1000)
    batched(SWEEP_NET, M, batch, 20, args.threads)  # warm-ups
    sequential(SWEEP_NET, init_params(SWEEP_NET, seeds), X, Y, batch, 20, lrs[:1], seeds[:1])
    t_batched = batched(SWEEP_NET, M, batch, steps, args.threads)
    t_sequential = sequential(SWEEP_NET, init_params(SWEEP_NET, seeds), X, Y, batch, steps, lrs, seeds)
    ratio = t_sequential / t_batched
    print(f"sweep  {M} x {SWEEP_NET.widths}, batch {batch}, {steps} steps: sequential {t_sequential:.2f} s, "
          f"batched {t_batched:.2f} s ({t_batched / steps * 1e6:.0f} us/step for all {M})")

    # 2. the limit: achieved matmul FLOP/s of the engine vs a large sgemm, in the same run
    # both figures best of 5 timings (the machine is shared: the best timing is the least disturbed)
    peak = sgemm_peak()
    student_steps = 3 if args.quick else 20
    batched(STUDENT_NET, args.models, 128, 3, args.threads)  # warm-up
    seconds = min(batched(STUDENT_NET, args.models, 128, student_steps, args.threads) for _ in range(5))
    flops = STUDENT_NET.flops_per_sample() * args.models * 128 * student_steps
    achieved = flops / seconds
    percent = 100 * achieved / peak
    print(f"limit  sgemm 2048^3 peak ({args.threads} thread(s)) {peak / 1e9:.1f} GFLOP/s; engine on {args.models} x "
          f"{STUDENT_NET.widths}, batch 128: {achieved / 1e9:.1f} GFLOP/s (matmul FLOPs of forward + backward)")
    print(f"ensemble: {ratio:.1f}x faster than sequential; {percent:.0f}% of fp32 peak")


if __name__ == "__main__":
    main()
