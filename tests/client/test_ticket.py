"""The Ticket: the masked module at its init, training with its recipe, compaction, prune interop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ticketclient import models
from ticketclient.format import TicketBundle
from ticketclient.ticket import Ticket
from torch.nn.utils import prune


@pytest.fixture
def ticket(make_bundle) -> Ticket:
    b = make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.25, seed=3)
    return Ticket.from_bundle(TicketBundle.from_bytes(config=b.config, init=b.init, mask=b.mask), name="local")


def test_model_is_the_masked_init(ticket: Ticket) -> None:
    model = ticket.model()
    state = models.to_numpy(model)
    for name, value in ticket.init.items():
        expected = np.where(ticket.mask[name], value, 0) if name in ticket.mask else value
        np.testing.assert_array_equal(state[name], expected)
    assert ticket.density == pytest.approx(sum(m.sum() for m in ticket.mask.values())
                                           / sum(m.size for m in ticket.mask.values()))

    pruned = ticket.model(torch_prune=True)
    assert prune.is_pruned(pruned)
    x = torch.randn(5, 40)
    torch.testing.assert_close(pruned(x), model(x))


def test_train_uses_the_recipe_and_keeps_pruned_weights_zero(ticket: Ticket) -> None:
    result = ticket.train(progress=False, iterations=60, eval_every=30)
    assert result.iterations == 60
    assert 0.0 <= result.final_test_accuracy <= 1.0
    again = ticket.train(progress=False, iterations=60, eval_every=30)
    assert again.final_test_accuracy == result.final_test_accuracy  # same seed, same data order, same result


def test_compact_and_prune_state_dict(ticket: Ticket) -> None:
    result = ticket.compact()
    assert result.params_after <= result.params_before
    x = torch.randn(16, 40)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), ticket.model().eval()(x), rtol=1e-4, atol=1e-4)

    state = ticket.prune_state_dict()
    target = ticket.model(torch_prune=True)
    target.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(target(x), ticket.model()(x))
