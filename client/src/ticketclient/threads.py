"""How many torch threads a CPU training run gets: chosen from the network's size.

Small networks spend their time in thread synchronisation when there are several threads, worst when the
cores are busy: ``ticket.train()`` of LeNet-300-100 on mnist1d took 6 min 33 s with 2 threads on a loaded
2-core machine and 15 s with 1. Large ones (convolutions, wide layers, big batches) gain from more threads.
The rule, for :meth:`Ticket.train` and :func:`ticketclient.find` on the CPU:

- ``threads=`` (an argument) or ``TICKETHUB_TORCH_THREADS`` when set, always;
- else one thread per :data:`MACS_PER_THREAD` multiply-adds of a training batch's forward pass (the
  network's dense multiply-adds per example x the batch size), at least 1 and at most ``os.cpu_count()``.

On a GPU the thread count is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ticketclient import constants
from ticketclient.recipe import Recipe
from ticketclient.spec import ArchSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Forward multiply-adds of one batch per CPU thread (LeNet-300-100 at batch 60 is ~16M: one thread).
MACS_PER_THREAD = 200_000_000


def choose_threads(batch_macs: int, *, cpus: int | None = None) -> int:
    """Torch threads for a run whose batch forward pass costs ``batch_macs`` multiply-adds."""
    configured = constants.torch_threads()
    if configured is not None:
        return configured
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(cpus, int(batch_macs // MACS_PER_THREAD)))


def batch_macs(model: torch.nn.Module | None, recipe: Recipe, arch: ArchSpec | None = None) -> int:
    """Dense forward multiply-adds of one training batch (from ``arch.forward_macs`` when known, else the
    parameter count, which is exact for fully connected layers)."""
    per_example = (arch.forward_macs or arch.num_parameters) if arch is not None else 0
    if not per_example and model is not None:
        per_example = sum(p.numel() for p in model.parameters())
    return per_example * recipe.batch_size


def cpu_device(device: str | torch.device | None) -> bool:
    """Whether a run with ``device`` (None: training.default_device's choice) trains on the CPU."""
    import torch  # torch stays out of the torch-free modules that import this one

    if device is None:
        return not torch.cuda.is_available()
    return torch.device(device).type == "cpu"


@contextmanager
def torch_threads(model: torch.nn.Module | None, recipe: Recipe, *, device: str | torch.device | None = None,
                  threads: int | None = None, arch: ArchSpec | None = None) -> Iterator[int | None]:
    """Set torch's thread count for a CPU run of ``model`` with ``recipe`` (restored afterwards); yields it.

    Pass ``device="cpu"`` on to ``training.train`` when ``device`` was None (see :func:`train_device`):
    its default device sets the thread count itself.
    """
    import torch  # torch stays out of the torch-free modules that import this one

    if not cpu_device(device):
        yield None
        return
    chosen = int(threads) if threads is not None else choose_threads(batch_macs(model, recipe, arch))
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, chosen))
    try:
        yield chosen
    finally:
        torch.set_num_threads(before)


def train_device(device: str | torch.device | None) -> str | torch.device | None:
    """``device``, or ``"cpu"`` when it is None and no GPU is there (so the chosen threads stay in force)."""
    return "cpu" if device is None and cpu_device(None) else device
