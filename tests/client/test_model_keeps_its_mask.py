"""The pulled model keeps its mask under the user's own loop, and ``Ticket.train`` returns what it trained."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import ticketclient
import torch
from ticketclient import interop, models, training
from ticketclient.format import TicketBundle
from ticketclient.ticket import Ticket, TrainedTicket

OPTIMIZERS = {
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adamw-decay": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
}


@pytest.fixture
def ticket(make_bundle) -> Ticket:
    b = make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.25, seed=3)
    return Ticket.from_bundle(TicketBundle.from_bytes(config=b.config, init=b.init, mask=b.mask), name="local")


def pruned_nonzeros(model: torch.nn.Module, mask: dict[str, np.ndarray]) -> int:
    state = model.state_dict()
    return sum(int((state[name][~torch.from_numpy(m)] != 0).sum()) for name, m in mask.items())


def density(model: torch.nn.Module, mask: dict[str, np.ndarray]) -> float:
    state = model.state_dict()
    return sum(int((state[n] != 0).sum()) for n in mask) / sum(m.size for m in mask.values())


def users_own_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int = 150) -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 40, generator=gen), torch.randint(0, 10, (256,), generator=gen)
    for step in range(steps):
        idx = torch.arange(step * 32, step * 32 + 32) % 256
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        optimizer.step()


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_default_model_keeps_pruned_weights_zero_under_any_optimizer(ticket: Ticket, optimizer: str) -> None:
    model = ticket.model()
    before = density(model, ticket.mask)
    users_own_loop(model, OPTIMIZERS[optimizer](model.parameters()))
    assert pruned_nonzeros(model, ticket.mask) == 0
    assert density(model, ticket.mask) <= before
    assert density(model, ticket.mask) == pytest.approx(ticket.density, abs=0.01)
    # the names and shapes of a dense module's state dict: no extra keys
    assert set(model.state_dict()) == set(ticket.init)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_plain_module_on_request_forgets_its_mask(ticket: Ticket, optimizer: str) -> None:
    plain = ticket.model(masked=False)
    assert not interop.is_masked(plain)
    users_own_loop(plain, OPTIMIZERS[optimizer](plain.parameters()))
    assert pruned_nonzeros(plain, ticket.mask) > 0  # what the old default did: the mask is gone

    unmasked = ticketclient.unmask(ticket.model())
    assert not interop.is_masked(unmasked) and not list(unmasked.buffers())
    users_own_loop(unmasked, OPTIMIZERS[optimizer](unmasked.parameters()))
    assert pruned_nonzeros(unmasked, ticket.mask) > 0


def test_the_mask_survives_a_deepcopy_and_a_manual_write(ticket: Ticket) -> None:
    model = copy.deepcopy(ticket.model())
    users_own_loop(model, torch.optim.Adam(model.parameters(), lr=1e-2), steps=20)
    assert pruned_nonzeros(model, ticket.mask) == 0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(2, 40))  # the next forward re-applies the mask
    assert pruned_nonzeros(model, ticket.mask) == 0
    np.testing.assert_array_equal(interop.kept_masks(model)["layers.1.weight"]
                                  if "layers.1.weight" in ticket.mask else next(iter(interop.kept_masks(model).values())),
                                  ticket.mask["layers.1.weight"] if "layers.1.weight" in ticket.mask
                                  else next(iter(ticket.mask.values())))


def test_train_trains_the_model_it_is_given_and_returns_it(ticket: Ticket) -> None:
    model = ticket.model()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    trained = ticket.train(model, progress=False, iterations=60, eval_every=30)
    assert isinstance(trained, TrainedTicket) and trained.model is model
    assert isinstance(trained.result, training.TrainResult)
    assert trained.final_test_accuracy == trained.result.final_test_accuracy  # fields read through
    assert any(not torch.equal(init[k], v) for k, v in model.state_dict().items())  # the quick start's model trained
    assert pruned_nonzeros(model, ticket.mask) == 0 and interop.is_masked(model)

    fresh = ticket.train(progress=False, iterations=60, eval_every=30)
    assert fresh.model is not model
    assert fresh.final_test_accuracy == trained.final_test_accuracy  # same seed, same data order, same result
    for k, v in fresh.model.state_dict().items():
        torch.testing.assert_close(v, model.state_dict()[k], rtol=0, atol=0)


def test_train_is_the_verifiers_training_loop(ticket: Ticket, monkeypatch) -> None:
    calls = []
    real = training.train

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    trained = ticket.train(progress=False, iterations=20, eval_every=10)
    assert calls == [trained.model]
    # and it gives what training.train gives on a plain model of the same init
    plain = models.build_model(ticket.arch)
    models.load_tensors(plain, ticket.masked_init())
    reference = real(plain, ticket.mask, ticketclient.data.load(ticket.task), ticket.recipe.__class__(
        **{**ticket.recipe.__dict__, "iterations": 20, "eval_every": 10}), seed=0, device="cpu", progress=False)
    assert reference.final_test_accuracy == trained.final_test_accuracy
