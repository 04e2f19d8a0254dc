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
import warnings
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
# torch warns once per process that sparse CSR support is beta; say it here, silenced, single-threaded at
# import (the engine's lanes build their matrices in threads, where catch_warnings is not safe).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    torch.sparse_csr_tensor(torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), torch.zeros(0),
                            (0, 0))
#: On a CPU, a masked linear weight keeping at most this fraction of its entries (over the stacked runs) is
#: multiplied as a block-diagonal sparse matrix (``_BlockSparse``; bench/RESULTS.md).
SPARSE_MAX_DENSITY = 0.1


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


class _BlockSparse:
    """A stacked masked weight [K, O, I] as one block-diagonal sparse CSR matrix [K*O, K*I] of its kept entries.

    Its values *are* the optimizer's view of the weight's kept values (``MaskedOptimizer.kept``, the kept flat
    indices in ascending order, which is CSR order), so every optimizer step updates the matrix in place, and
    the weight gradient is written by ``sampled_addmm`` straight into the optimizer's kept-gradient view: no
    gather, no scatter. The transpose (for the gradient of the layer's input) is a second CSR structure whose
    values are a permutation of the first's, gathered once a step.
    """

    def __init__(self, index: torch.Tensor, shape: tuple[int, int, int], values: torch.Tensor,
                 grad: torch.Tensor) -> None:
        k, o, i = shape
        rows = (index // (o * i)) * o + (index // i) % o
        cols = (index // (o * i)) * i + index % i
        self.perm = torch.argsort(cols * (k * o) + rows)  # kept entries in (column, row) order
        self.values_t = torch.empty_like(values)
        self.matrix = _csr(rows, cols, values, (k * o, k * i))
        self.matrix_t = _csr(cols[self.perm], rows[self.perm], self.values_t, (k * i, k * o))
        self.grad = _csr(rows, cols, grad, (k * o, k * i))

    def mm(self, h: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``W @ h (+ bias)`` for ``h`` [K*I, B] and ``bias`` [K, O] -> [K*O, B] (the bias folded into the
        product's output: 0.6x the time of adding it after)."""
        if bias is None:
            return self.matrix @ h
        return torch.addmm(bias.reshape(-1, 1).expand(-1, h.shape[1]), self.matrix, h)

    def mm_t(self, g: torch.Tensor) -> torch.Tensor:
        """``W^T @ g`` for ``g`` [K*O, B] -> [K*I, B]."""
        torch.index_select(self.matrix.values(), 0, self.perm, out=self.values_t)
        return self.matrix_t @ g

    def write_grad(self, g: torch.Tensor, h: torch.Tensor) -> None:
        """The kept entries of ``g @ h^T`` (``g`` [K*O, B], ``h`` [K*I, B]) into the optimizer's gradient view."""
        torch.sparse.sampled_addmm(self.matrix, g, h.t(), beta=0.0, out=self.grad)


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A CSR matrix of entries sorted by row (then column) sharing ``values``' storage."""
    crow = torch.zeros(size[0] + 1, dtype=torch.int64, device=values.device)
    crow[1:] = torch.bincount(rows, minlength=size[0]).cumsum(0)
    index_dtype = torch.int32 if max(*size, values.numel()) < 2**31 else torch.int64  # int32: ~5% faster
    matrix = torch.sparse_csr_tensor(crow.to(index_dtype), cols.to(index_dtype), values, size,
                                     check_invariants=False)
    if values.numel() and matrix.values().data_ptr() != values.data_ptr():
        raise RuntimeError("this torch copies a sparse tensor's values; the stacked engine needs them shared")
    return matrix


@dataclass
class _Linear:
    weight: torch.Tensor  # [K, O, I]
    bias: torch.Tensor | None  # [K, O]
    relu: bool  # followed by a relu
    sparse: _BlockSparse | None


class _StackedMLP:
    """K MLPs (flatten, linear and relu layers only) trained together, forward and backward written out.

    Feature-major (activations [K, features, B], ``W @ h``), so each weight's gradient comes out of the matrix
    product in the weight's own [K, out, in] layout (batch-major, autograd copied a transposed view into it
    at every step: 35% of a LeNet-300-100 job). The backward pass is written out too (softmax minus one-hot
    over the batch, the transposed products, relu's mask), without autograd's graph (0.2-0.3 ms a step on a
    CPU). On a CPU, a masked weight keeping at most ``SPARSE_MAX_DENSITY`` of its entries over the stack is a
    block-diagonal CSR matrix (:class:`_BlockSparse`): at 3.6% density its three products cost ~0.3x the dense
    ones. Every path computes the same function as ``training.train``'s module, up to floating-point
    summation order.
    """

    def __init__(self, layers: Sequence[Mapping[str, Any]], params: Mapping[str, torch.Tensor],
                 optimizer: training.MaskedOptimizer, k: int, sparse: bool) -> None:
        self.k = k
        self.input_relu = False
        self.linears: list[_Linear] = []
        for i, layer in enumerate(layers):
            kind = layer["type"]
            if kind == "linear":
                weight = params[f"layers.{i}.weight"]
                index = optimizer.kept_index(weight)
                block = None
                if sparse and index is not None and index.numel() <= SPARSE_MAX_DENSITY * weight.numel():
                    values, grad = optimizer.kept(weight)
                    block = _BlockSparse(index, (weight.shape[0], weight.shape[1], weight.shape[2]), values, grad)
                self.linears.append(_Linear(weight, params.get(f"layers.{i}.bias"), False, block))
            elif kind == "relu":
                if self.linears:
                    self.linears[-1].relu = True
                else:
                    self.input_relu = True
            elif kind != "flatten":  # pragma: no cover - is_mlp() guards
                raise ValueError(f"layer type {kind!r} is not part of the MLP fast path")

    def forward(self, x: torch.Tensor, *, shared: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits [K, C, B] of ``x`` [K, B, ...] (``shared``: [B, ...], the same batch for every run), and the
        input of each linear layer ([K, I, B], contiguous: what the backward pass reads)."""
        k = self.k
        if shared:
            h = x.reshape(x.shape[0], -1).t().unsqueeze(0).expand(k, -1, -1).contiguous()
        else:
            h = x.reshape(k, x.shape[1], -1).transpose(1, 2).contiguous()
        if self.input_relu:
            h = torch.relu(h)
        inputs = []
        for layer in self.linears:
            inputs.append(h)
            _, features, n = h.shape
            if layer.sparse is not None:
                h = layer.sparse.mm(h.view(k * features, n), layer.bias).view(k, -1, n)
            elif layer.bias is not None:
                h = torch.baddbmm(layer.bias.unsqueeze(2), layer.weight, h)
            else:
                h = torch.bmm(layer.weight, h)
            if layer.relu:
                h = torch.relu_(h)
        return h, inputs

    def forward_shared(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
                       ) -> torch.Tensor:
        """Logits [K, C, n] of one batch ``x`` shared by every run (a ``Forward``; the tensors are already ours)."""
        return self.forward(x, shared=True)[0]

    def backward(self, logits: torch.Tensor, y: torch.Tensor, inputs: list[torch.Tensor]) -> None:
        """Gradients of the sum over runs of each run's mean cross-entropy: into each bias's and dense weight's
        ``.grad``, and into the optimizer's kept-gradient view for each sparse weight."""
        k, _, b = logits.shape
        g = torch.softmax(logits, dim=1)
        g.scatter_add_(1, y.unsqueeze(1), torch.full((k, 1, b), -1.0, dtype=g.dtype, device=g.device))
        g.div_(b)
        if self.linears[-1].relu:
            g = torch.ops.aten.threshold_backward(g, logits, 0)
        for j in range(len(self.linears) - 1, -1, -1):
            layer, h = self.linears[j], inputs[j]
            _, features, _ = h.shape
            if layer.bias is not None:
                layer.bias.grad = g.sum(2)
            if layer.sparse is not None:
                layer.sparse.write_grad(g.view(-1, b), h.view(k * features, b))
            else:
                layer.weight.grad = torch.bmm(g, h.transpose(1, 2))
            if j == 0:
                break
            if layer.sparse is not None:
                g = layer.sparse.mm_t(g.view(-1, b)).view(k, features, b)
            else:
                g = torch.bmm(layer.weight.transpose(1, 2), g)
            if self.linears[j - 1].relu:
                g = torch.ops.aten.threshold_backward(g, h, 0)


def _layer_types(arch: ArchSpec) -> set[str]:
    return {str(layer.get("type")) for layer in arch.layers}


#: ``forward(params, buffers, x)``: ``x`` [K, B, ...] (or [B, ...] shared by every run) -> logits [K, C, B].
Forward = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor], torch.Tensor]


def _vmap_forwards(template: torch.nn.Module) -> tuple[Forward, Forward]:
    """(forward of K batches, forward of one batch shared by the K runs) by ``vmap`` of the module."""

    def call(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = functional_call(template, (p, b), (x,))
        return out

    each, shared = vmap(call, in_dims=(0, 0, 0)), vmap(call, in_dims=(0, 0, None))

    def forward(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return each(p, b, x).transpose(1, 2)

    def forward_shared(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return shared(p, b, x).transpose(1, 2)

    return forward, forward_shared


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
    groups = _density_groups(arch, runs, data, dev)
    if len(groups) > 1:
        return _train_groups(arch, runs, groups, data, recipe, device=dev, on_eval=on_eval, return_state=return_state)
    started = time.perf_counter()
    k, b, iterations = len(runs), int(recipe.batch_size), int(recipe.iterations)

    replicas = []
    for run in runs:
        module = models.build_model(arch)
        models.load_tensors(module, run.init)
        replicas.append(module)
    stacked_params, stacked_buffers = stack_module_state(replicas)
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

    x_train, y_train = _tensor(data.x_train, dev), _tensor(data.y_train, dev, torch.long)
    splits = {
        "val": (_tensor(data.x_val, dev), _tensor(data.y_val, dev, torch.long)),
        "test": (_tensor(data.x_test, dev), _tensor(data.y_test, dev, torch.long)),
    }
    optimizer = training.MaskedOptimizer(list(params.values()), masked_params, mask_values, recipe)
    mlp: _StackedMLP | None = None
    forward, forward_shared = _vmap_forwards(template)
    if _uses_mlp_path(arch, data):
        mlp = _StackedMLP(arch.layers, params, optimizer, k, sparse=dev.type == "cpu")
        forward_shared = mlp.forward_shared
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
        optimizer.zero_grad()
        if mlp is not None:
            with torch.no_grad():
                logits, inputs = mlp.forward(xb)
                mlp.backward(logits, yb, inputs)
        else:
            losses = F.cross_entropy(forward(params, buffers, xb), yb, reduction="none")  # [K, B]
            torch.autograd.backward(losses.mean(dim=1).sum())
        optimizer.step()
    evaluate(iterations)
    optimizer.write_back()

    wall = time.perf_counter() - started
    results = [training.result_from_curve(curve, iterations=iterations, wall_time_s=wall, device=str(dev),
                                          seed=run.seed)
               for curve, run in zip(curves, runs, strict=True)]
    if return_state:
        for i, result in enumerate(results):
            result.snapshot = {name: t[i].detach().cpu().numpy().copy() for name, t in {**params, **buffers}.items()}
    return results


def _uses_mlp_path(arch: ArchSpec, data: TaskData) -> bool:
    return is_mlp(arch) and (np.ndim(data.x_train) == 2 or arch.layers[0].get("type") == "flatten")


def _density_groups(arch: ArchSpec, runs: Sequence[StackedRun], data: TaskData, device: torch.device,
                    ) -> list[list[int]]:
    """The runs to stack together: on the CPU's MLP path, runs whose masks keep more than
    ``SPARSE_MAX_DENSITY`` (the dense parent) apart from the sparser ones, which then stay block-sparse (one
    dense run among twelve 3.6% tickets makes every stacked weight 28% kept, too dense for sparse products);
    otherwise all runs in one group."""
    if device.type != "cpu" or not _uses_mlp_path(arch, data):
        return [list(range(len(runs)))]
    dense: list[int] = []
    sparse: list[int] = []
    for i, run in enumerate(runs):
        kept = sum(int(np.count_nonzero(run.mask[n])) for n in arch.prunable if n in run.mask)
        total = sum(int(np.size(run.mask[n])) for n in arch.prunable if n in run.mask)
        (sparse if total and kept <= SPARSE_MAX_DENSITY * total else dense).append(i)
    return [g for g in (sparse, dense) if g]


def _train_groups(arch: ArchSpec, runs: Sequence[StackedRun], groups: list[list[int]], data: TaskData,
                  recipe: Recipe, *, device: torch.device, on_eval: Callable[[int, dict[str, Any]], None] | None,
                  return_state: bool) -> list[training.TrainResult]:
    """:func:`train_stacked` of each group in turn; results (and ``on_eval``'s run index) in ``runs``' order."""
    results: dict[int, training.TrainResult] = {}
    for members in groups:

        def report(j: int, point: dict[str, Any], members: list[int] = members) -> None:
            if on_eval is not None:
                on_eval(members[j], point)

        trained = train_stacked(arch, [runs[i] for i in members], data, recipe, device=device, on_eval=report,
                                return_state=return_state)
        results.update(zip(members, trained, strict=True))
    return [results[i] for i in range(len(runs))]


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
