"""Torch's CPU thread count for ticket.train()/find comes from the network's size; the variable overrides it."""

from __future__ import annotations

import torch
from ticketclient import spec, threads


def test_small_networks_get_one_thread_large_ones_more(monkeypatch) -> None:
    monkeypatch.delenv("TICKETHUB_TORCH_THREADS", raising=False)
    lenet = spec.resolve(spec.default_architecture("lenet-300-100"), input_shape=(1, 28, 28), num_classes=10)
    conv = spec.resolve(spec.default_architecture("conv-2"), input_shape=(3, 32, 32), num_classes=10)
    assert threads.choose_threads(threads.batch_macs(None, type("R", (), {"batch_size": 60}), lenet), cpus=16) == 1
    assert threads.choose_threads(threads.batch_macs(None, type("R", (), {"batch_size": 60}), conv), cpus=16) > 1
    assert threads.choose_threads(10**12, cpus=4) == 4  # never more than the cores


def test_the_variable_and_the_argument_override_it_and_the_count_is_restored(monkeypatch) -> None:
    monkeypatch.setenv("TICKETHUB_TORCH_THREADS", "3")
    assert threads.choose_threads(1) == 3
    before = torch.get_num_threads()
    model = torch.nn.Linear(4, 2)
    recipe = type("R", (), {"batch_size": 8})
    with threads.torch_threads(model, recipe, device="cpu") as chosen:
        assert chosen == 3 and torch.get_num_threads() == 3
    with threads.torch_threads(model, recipe, device="cpu", threads=1) as chosen:
        assert chosen == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert threads.train_device(None) in ("cpu", None)
