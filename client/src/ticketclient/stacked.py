"""Train several runs of one architecture together, as one batched ("stacked") model.

A verification trains the ticket with N data-order seeds and two controls with the same seeds: 3N
independent runs of the same shape. Trained one after another, a small network spends most of its time in
Python and kernel-launch overhead; stacked, every layer runs once for all runs (``torch.func.vmap`` over
the stacked parameters, which becomes batched matrix multiplies), so the machine is used fully.

The semantics are exactly those of :func:`ticketclient.training.train` (docs/ticket-format.md, "Recipe
semantics"), run by run, for every field of ``format.Recipe``:

* ``batch_size``, ``iterations``: the same data order per seed (:func:`training.batch_order`);
* ``lr``, ``warmup_iterations``, ``lr_schedule``, ``milestones``, ``gamma``: the same learning rate at
  every iteration (:func:`training.learning_rate`, one value shared by all runs of one recipe);
* ``optimizer``, ``momentum``, ``betas``, ``weight_decay``: the same optimizer over the kept weights
  (:class:`training.MaskedOptimizer`; SGD and Adam are element-wise, so one optimizer over stacked
  parameters is K independent optimizers);
* ``augment``: ``flip-crop`` draws each run's flips and crops from that run's own generator
  (:func:`training._augmenter` with the run's seed), applied to that run's batch, as ``train`` does;
* ``eval_every``: the same evaluations (iteration 0, every ``eval_every``, the end) and early-stop rule;
* ``rewind_iteration``: read only by IMP (``pruning.find_ticket``); a ticket's init already is the rewind
  point, and both engines train all ``iterations`` from it.

The loss is the sum over runs of each run's mean loss, so each run's gradient is its own. Results match
sequential training up to floating-point summation order (tests/verifier/test_stacked_engine.py checks
every field, on an MLP and a small conv net).

Declined (:func:`supports` is False; callers fall back to :func:`ticketclient.training.train`):
architectures with batch normalisation, dropout or residual blocks (running statistics and dropout's draws
from the global generator are per-run state that ``vmap`` does not carry), and any recipe value this module
does not know (an optimizer, schedule or augmentation added to the format later is declined until it is
implemented here and tested).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from ticketclient import models, training
from ticketclient.data import TaskData
from ticketclient.format import Recipe
from ticketclient.spec import ArchSpec

UNSUPPORTED_LAYERS = {"batchnorm1d", "batchnorm2d", "dropout", "residual"}
#: Examples per evaluation chunk (bounds memory: runs x chunk x classes logits).
EVAL_CHUNK = 2048


@dataclass(frozen=True)
class StackedRun:
    """One run: its initial tensors, its mask and its data-order seed."""

    init: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    seed: int


#: Recipe values the stacked engine reproduces exactly (anything else: :func:`supports` is False).
SUPPORTED_OPTIMIZERS = {"sgd", "adam"}
SUPPORTED_SCHEDULES = {"constant", "step", "cosine"}
SUPPORTED_AUGMENTS = {"none", "flip-crop"}
#: The Recipe fields this module reads (tests check the list equals ``format.Recipe``'s fields).
RECIPE_FIELDS = ("optimizer", "lr", "momentum", "betas", "weight_decay", "batch_size", "iterations",
                 "warmup_iterations", "lr_schedule", "milestones", "gamma", "rewind_iteration", "eval_every",
                 "augment")


def unsupported_reason(arch: ArchSpec, recipe: Recipe | None = None) -> str | None:
    """Why ``arch`` trained with ``recipe`` cannot be stacked exactly, or None when it can."""
    layers = sorted(_layer_types(arch) & UNSUPPORTED_LAYERS)
    if layers:
        return f"layers {layers} are not supported by stacked training"
    if recipe is None:
        return None
    unknown = sorted({f.name for f in dataclasses.fields(recipe)} - set(RECIPE_FIELDS))
    if unknown:
        return f"recipe fields {unknown} are not implemented by stacked training"
    checks = (("optimizer", recipe.optimizer.lower(), SUPPORTED_OPTIMIZERS),
              ("lr_schedule", recipe.lr_schedule, SUPPORTED_SCHEDULES),
              ("augment", recipe.augment.lower().replace("_", "-"), SUPPORTED_AUGMENTS))
    for name, value, allowed in checks:
        if value not in allowed:
            return f"recipe {name} {value!r} is not supported by stacked training"
    return None


def supports(arch: ArchSpec, recipe: Recipe | None = None) -> bool:
    """True when ``arch`` trained with ``recipe`` (when given) is reproduced exactly by stacked training."""
    return unsupported_reason(arch, recipe) is None


def is_mlp(arch: ArchSpec) -> bool:
    """True when ``arch`` is only flatten, linear and relu layers (the fast path of the stacked engine)."""
    return all(layer.get("type") in ("flatten", "linear", "relu") for layer in arch.layers)


def _mlp_forward(layers: Sequence[Mapping[str, Any]], params: Mapping[str, torch.Tensor], x: torch.Tensor,
                 ) -> torch.Tensor:
    """Stacked MLP: ``x`` [K, B, ...] through K sets of weights [K, out, in] -> logits [K, classes, B].

    Computed feature-major (activations [K, features, B], ``W @ h``): the backward matrix product then gives
    each weight's gradient in the weight's own [K, out, in] layout. Batch-major (``h @ W^T``) gives it as a
    transposed view that autograd copies into the parameter's layout at every step (measured 35% of a
    LeNet-300-100 job). The logits stay feature-major (class dimension 1, as ``F.cross_entropy`` takes
    them): transposing them back cost a copy and a slower softmax, 0.1 ms a step. Callers use this path only
    when the input is flat or the first layer is a flatten.
    """
    k, b = x.shape[0], x.shape[1]
    h = x.reshape(k, b, -1).transpose(1, 2)
    owned = False  # h is a product of ours (relu may overwrite it), not the caller's input
    for i, layer in enumerate(layers):
        kind = layer["type"]
        if kind == "linear":
            weight = params[f"layers.{i}.weight"]
            bias = params.get(f"layers.{i}.bias")
            h = torch.baddbmm(bias.unsqueeze(2), weight, h) if bias is not None else torch.bmm(weight, h)
            owned = True
        elif kind == "relu":
            h = torch.relu_(h) if owned else torch.relu(h)
        elif kind != "flatten":  # pragma: no cover - is_mlp() guards
            raise ValueError(f"layer type {kind!r} is not part of the MLP fast path")
    return h


def _layer_types(arch: ArchSpec) -> set[str]:
    return {str(layer.get("type")) for layer in arch.layers}


#: ``forward(params, buffers, x)``: ``x`` [K, B, ...] (or [B, ...] shared by every run) -> logits [K, C, B].
Forward = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor], torch.Tensor]


def _forwards(arch: ArchSpec, template: torch.nn.Module, k: int, flat_input: bool) -> tuple[Forward, Forward]:
    """(forward of K batches, forward of one batch shared by the K runs), both giving logits [K, C, B]."""
    if is_mlp(arch) and (flat_input or arch.layers[0].get("type") == "flatten"):
        # Batched matrix products written out: the same function as vmap of the module, with less overhead.
        def forward(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return _mlp_forward(arch.layers, p, x)

        def forward_shared(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return _mlp_forward(arch.layers, p, x.unsqueeze(0).expand(k, *x.shape))

        return forward, forward_shared

    def call(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = functional_call(template, (p, b), (x,))
        return out

    each, shared = vmap(call, in_dims=(0, 0, 0)), vmap(call, in_dims=(0, 0, None))

    def forward_vmap(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return each(p, b, x).transpose(1, 2)

    def forward_vmap_shared(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return shared(p, b, x).transpose(1, 2)

    return forward_vmap, forward_vmap_shared


def train_stacked(
    arch: ArchSpec,
    runs: Sequence[StackedRun],
    data: TaskData,
    recipe: Recipe,
    *,
    device: str | torch.device | None = None,
    on_eval: Callable[[int, dict[str, Any]], None] | None = None,
    return_state: bool = False,
) -> list[training.TrainResult]:
    """Train ``runs`` together; returns one ``training.TrainResult`` per run, in order.

    ``on_eval(run_index, point)`` is called at every evaluation of every run, with the same point dict as
    ``training.train``'s ``on_eval``. With ``return_state``, each result's ``snapshot`` holds that run's
    trained tensors (name -> numpy array), as ``models.to_numpy`` of a single-run model would.
    """
    if not runs:
        return []
    reason = unsupported_reason(arch, recipe)
    if reason is not None:
        raise ValueError(f"{reason}; use ticketclient.training.train")
    dev = torch.device(device) if device is not None else training.default_device()
    started = time.perf_counter()
    k, b, iterations = len(runs), int(recipe.batch_size), int(recipe.iterations)

    replicas = []
    for run in runs:
        module = models.build_model(arch)
        models.load_tensors(module, run.init)
        replicas.append(module)
    stacked_params, stacked_buffers = stack_module_state(replicas)  # type: ignore[no-untyped-call]
    params = {n: p.detach().to(dev).requires_grad_(True) for n, p in stacked_params.items()}
    buffers = {n: t.to(dev) for n, t in stacked_buffers.items()}
    # Float masks (1 = kept) in the parameters' dtype, as in training.train.
    masks = {
        name: torch.stack([torch.as_tensor(np.asarray(r.mask[name], dtype=bool)) for r in runs]).to(
            device=dev, dtype=params[name].dtype)
        for name in arch.prunable if name in params and all(name in r.mask for r in runs)
    }
    masked_params = [params[name] for name in masks]
    mask_values = list(masks.values())
    training.apply_masks(masked_params, mask_values)
    template = models.build_model(arch).to("meta")
    template.train()
    forward, forward_shared = _forwards(arch, template, k, np.ndim(data.x_train) == 2)

    x_train, y_train = _tensor(data.x_train, dev), _tensor(data.y_train, dev, torch.long)
    splits = {
        "val": (_tensor(data.x_val, dev), _tensor(data.y_val, dev, torch.long)),
        "test": (_tensor(data.x_test, dev), _tensor(data.y_test, dev, torch.long)),
    }
    optimizer = training.MaskedOptimizer(list(params.values()), masked_params, mask_values, recipe)
    augmenters = [training._augmenter(recipe.augment, r.seed) for r in runs]
    augment = None if all(a is None for a in augmenters) else augmenters
    # orders[it] is iteration it's batch of every run, [K, B], contiguous (one index_select per split a step).
    orders = torch.stack([training.batch_order(len(y_train), b, iterations, r.seed).view(iterations, b)
                          for r in runs], dim=1).to(dev)
    curves: list[list[dict[str, Any]]] = [[] for _ in runs]

    def evaluate(iteration: int) -> None:
        template.eval()
        with torch.no_grad():
            metrics = {s: _evaluate(forward_shared, params, buffers, x, y) for s, (x, y) in splits.items()}
        template.train()
        for i in range(k):
            point: dict[str, Any] = {"iteration": iteration}
            for s in ("val", "test"):
                point[f"{s}_loss"] = float(metrics[s][0][i])
                point[f"{s}_accuracy"] = float(metrics[s][1][i])
            curves[i].append(point)
            if on_eval is not None:
                on_eval(i, point)

    group = optimizer.param_groups[0]
    for it in range(iterations):
        if training.is_eval_iteration(it, recipe):
            evaluate(it)
        group["lr"] = training.learning_rate(recipe, it)
        idx = orders[it].view(-1)
        xb = x_train.index_select(0, idx).view(k, b, *x_train.shape[1:])
        yb = y_train.index_select(0, idx).view(k, b)
        if augment is not None:  # each run's own draws, on its own batch, as training.train does
            xb = torch.stack([aug(xb[i]) for i, aug in enumerate(augment) if aug is not None])
        losses = F.cross_entropy(forward(params, buffers, xb), yb, reduction="none")  # [K, B]
        optimizer.zero_grad()
        torch.autograd.backward(losses.mean(dim=1).sum())
        optimizer.step()
    evaluate(iterations)

    wall = time.perf_counter() - started
    results = [training.result_from_curve(curve, iterations=iterations, wall_time_s=wall, device=str(dev),
                                          seed=run.seed)
               for curve, run in zip(curves, runs, strict=True)]
    if return_state:
        for i, result in enumerate(results):
            result.snapshot = {name: t[i].detach().cpu().numpy().copy() for name, t in {**params, **buffers}.items()}
    return results


def _tensor(array: Any, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array), dtype=dtype, device=device)


def _evaluate(forward_shared: Forward, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
              x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per run: mean cross-entropy and accuracy over one split."""
    k = next(iter(params.values())).shape[0]
    loss_sum = torch.zeros(k, dtype=torch.float64, device=x.device)
    correct = torch.zeros(k, dtype=torch.int64, device=x.device)
    for start in range(0, len(y), EVAL_CHUNK):
        xb, yb = x[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
        logits = forward_shared(params, buffers, xb)  # [K, C, n]
        losses = F.cross_entropy(logits, yb.expand(k, len(yb)), reduction="none")  # [K, n]
        loss_sum += losses.sum(1).double()
        correct += (logits.argmax(1) == yb).sum(1)
    n_total = max(1, len(y))
    return (loss_sum / n_total).cpu().numpy(), (correct.double() / n_total).cpu().numpy()
