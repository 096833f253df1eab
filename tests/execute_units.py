"""Unit functions for tests/test_execute.py, in a module of their own so that Dask workers import them."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import torch

from nnlab.device import device
from nnlab.models import Net, init_params
from nnlab.train import fresh_batches, train

NET = Net((5, 16, 16, 1))


def sample(g: torch.Generator, n: int):
    x = torch.rand(n, 5, generator=g)
    return x, torch.sin(3 * x).sum(1, keepdim=True)


def train_seeds(seeds) -> dict:
    """A small engine run of one model per seed: losses and final weights as numpy arrays."""
    result = train(NET, init_params(NET, seeds), fresh_batches(sample, 16, seeds), steps=60,
                   lr=[3e-3] * len(seeds), eval_every=20, eval_data=sample(torch.Generator().manual_seed(99), 64))
    return {"train_loss": result.train_loss, "eval_loss": result.eval_loss,
            "W0": result.params[0][0].cpu().numpy(), "device": result.device,
            "threads": torch.get_num_threads()}


def die_once_then_train(unit) -> dict:
    """Kills its own worker process the first time (a marker file remembers), then trains."""
    seeds, marker = unit
    if not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return train_seeds(seeds) | {"pid": os.getpid()}


def fail_on_odd(n: int) -> int:
    if n % 2:
        raise ValueError(f"odd unit {n}")
    return n


def on_device(_) -> str:
    return str(device())


def same(a: dict, b: dict) -> bool:
    """Equal to the last bit (arrays) or equal (other values)."""
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k], equal_nan=True) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a)


def pid(_) -> int:
    return os.getpid()


def environ(names) -> dict:
    """The worker's values of the environment variables ``names``."""
    return {name: os.environ.get(name) for name in names}
