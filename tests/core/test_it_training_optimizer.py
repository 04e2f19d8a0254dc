"""The hand-written optimizer (training.FlatOptimizer) is stock torch.optim bit for bit: the same values after
hundreds of steps, for Adam and SGD with and without weight decay and momentum, alone and inside the whole
training loop (the loop as it was before issue 15: stock torch.optim over whole tensors, pruned gradients
zeroed and the mask re-applied at every step)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ticketclient import data, models, spec, training
from ticketclient.format import Recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OPTIMIZERS = [
    dict(optimizer="adam"),
    dict(optimizer="adam", weight_decay=1e-3, betas=[0.8, 0.99]),
    dict(optimizer="sgd", lr=0.05),
    dict(optimizer="sgd", lr=0.05, weight_decay=5e-4),
    dict(optimizer="sgd", lr=0.05, momentum=0.9),
    dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4),
]
IDS = ["adam", "adam-wd-betas", "sgd", "sgd-wd", "sgd-momentum", "sgd-momentum-wd"]


def recipe(**changes: object) -> Recipe:
    base: dict[str, object] = dict(optimizer="adam", lr=1.2e-3, batch_size=32, iterations=300, eval_every=100)
    return Recipe.from_dict({**base, **changes})


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_flat_optimizer_is_stock_torch_optim_bit_for_bit_over_hundreds_of_steps(opt):
    r = recipe(**opt)
    rng = torch.Generator().manual_seed(0)
    ours = torch.randn(5000, generator=rng)
    stock = ours.clone().requires_grad_(True)
    flat = training.FlatOptimizer([ours], r)
    reference = training.make_optimizer([stock], r)
    for step in range(400):
        grad = torch.randn(5000, generator=rng) * 10.0 ** -(step % 7)
        grad[:1500] = 0.0  # kept weights whose gradient is exactly zero (dead units): torch's sqrt(0) path
        ours.grad, stock.grad = grad.clone(), grad.clone()
        flat.step()
        reference.step()
        lr = training.learning_rate(r, step) * (1.0 - step / 800)  # a moving lr, set on both as the loop does
        flat.param_groups[0]["lr"] = lr
        for group in reference.param_groups:
            group["lr"] = lr
    assert float((ours - stock.detach()).abs().max()) == 0.0
    state = reference.state[stock]
    for key, value in flat.state[ours].items():
        assert torch.equal(value, state[key]), key
    assert flat.steps == 400


def test_flat_optimizer_rejects_an_unknown_optimizer_and_a_missing_gradient():
    r = recipe()
    with pytest.raises(ValueError, match="unknown optimizer"):
        training.FlatOptimizer([torch.zeros(3)], Recipe(optimizer="rmsprop"))
    with pytest.raises(RuntimeError, match="no gradient"):
        training.FlatOptimizer([torch.zeros(3)], r).step()


@pytest.fixture(scope="module")
def mnist1d(tmp_path_factory) -> data.TaskData:
    return data.load("mnist1d", root=tmp_path_factory.mktemp("mnist1d"))


def _stock_loop(model: torch.nn.Module, mask: dict[str, np.ndarray], task: data.TaskData, r: Recipe,
                seed: int) -> None:
    """The training loop before issue 15, with stock torch.optim: whole tensors, pruned gradients zeroed and
    the mask re-applied every step (the arithmetic training.train must reproduce exactly)."""
    params = dict(model.named_parameters())
    masks = {n: torch.from_numpy(m).float() for n, m in mask.items()}
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m)
    optimizer = training.make_optimizer(list(params.values()), r)
    x, y = torch.as_tensor(task.x_train, dtype=torch.float32), torch.as_tensor(task.y_train, dtype=torch.long)
    order = training.batch_order(len(y), r.batch_size, r.iterations, seed)
    for it in range(r.iterations):
        for group in optimizer.param_groups:
            group["lr"] = training.learning_rate(r, it)
        idx = order[it * r.batch_size:(it + 1) * r.batch_size]
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        with torch.no_grad():
            for n, m in masks.items():
                params[n].grad.mul_(m)
            optimizer.step()
            for n, m in masks.items():
                params[n].mul_(m)


@pytest.mark.parametrize("opt", [OPTIMIZERS[1], OPTIMIZERS[5], OPTIMIZERS[2]], ids=[IDS[1], IDS[5], IDS[2]])
def test_the_training_loop_is_the_stock_torch_optim_loop_bit_for_bit(mnist1d, opt):
    arch = spec.resolve({"family": "mlp", "args": {"hidden": [64, 32]}}, input_shape=(40,), num_classes=10)
    rng = np.random.default_rng(1)
    mask = {n: rng.random(arch.tensors[n].shape) < 0.05 for n in arch.prunable}
    r = recipe(**opt, lr_schedule="cosine", warmup_iterations=20)
    ours = models.init_weights(models.build_model(arch), 2)
    stock = models.init_weights(models.build_model(arch), 2)
    training.train(ours, mask, mnist1d, r, seed=5, device="cpu", progress=False)
    _stock_loop(stock, mask, mnist1d, r, seed=5)
    stock_params = dict(stock.named_parameters())
    for name, p in ours.named_parameters():
        assert float((p.detach() - stock_params[name].detach()).abs().max()) == 0.0, name
