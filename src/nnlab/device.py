"""The torch device experiments run on: CPU unless NNLAB_DEVICE=cuda asks for a GPU that is present."""
from __future__ import annotations

import os

import torch


def device() -> torch.device:
    """``cuda`` only when NNLAB_DEVICE=cuda and CUDA is available; ``cpu`` otherwise."""
    wanted = os.environ.get("NNLAB_DEVICE", "cpu").strip().lower()
    if wanted not in ("cpu", "cuda"):
        raise ValueError(f"NNLAB_DEVICE={wanted!r}: allowed values are 'cpu' and 'cuda'")
    if wanted == "cuda" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def threads() -> int:
    """CPU threads the engine trains with: NNLAB_THREADS, default 1.

    One thread, because the matrices of these networks are small and the machine is shared: measured
    on 2 busy cores (benchmarks/bench_ensemble.py), two OpenMP threads made a training step 4-15x slower.
    """
    n = os.environ.get("NNLAB_THREADS", "1")
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"NNLAB_THREADS={n!r}: must be a positive integer")
    return int(n)
