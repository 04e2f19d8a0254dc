"""The masked training loop: one function, :func:`train`, to be read top to bottom.

It implements docs/ticket-format.md, "Recipe semantics", exactly (the verifier retrains every submission
with this same function, and :mod:`ticketclient.stacked` reuses its helpers):

* **Data order.** For run seed ``s`` a ``torch.Generator`` seeded with ``s`` draws one permutation of the
  training set per epoch; the permutations are concatenated and batch ``k`` is positions
  ``[k*B, (k+1)*B)`` of that stream, so batches cross epoch boundaries and all have exactly ``B`` examples
  (:func:`batch_order`).
* **Learning rate** at iteration ``t`` (:func:`learning_rate`): ``lr * warmup(t) * schedule(t)`` where
  ``warmup(t) = min(1, (t + 1) / warmup_iterations)`` (1 without warmup) and ``schedule`` is ``constant``
  (1), ``step`` (``gamma ** #milestones <= t``) or ``cosine`` (``(1 + cos(pi * u)) / 2`` with
  ``u = (t - W) / (T - W)`` after the ``W`` warmup iterations, reaching 0 at ``T = iterations``).
* **Optimizer**: ``sgd`` (momentum, weight decay) or ``adam`` (betas, weight decay), torch.optim's arithmetic
  written out (:class:`FlatOptimizer`; bit for bit :func:`make_optimizer`, stock ``torch.optim``).
* **Mask.** The mask is multiplied into the weights before the first step, the optimizer holds only the
  surviving weights (:class:`MaskedOptimizer`: its state is one entry per kept weight) and reads only their
  gradients (the pruned entries of ``.grad`` are zeroed after the last step), so pruned weights are never
  written and stay exactly zero at every iteration. The update of a kept weight is the optimizer's update,
  element by element, exactly as if the optimizer ran over the whole tensor with the pruned gradients
  zeroed (that is the same arithmetic: SGD and Adam are element-wise); it only skips the ~97% of the state
  that would stay zero at 3% density.
* **Evaluation** at iteration 0 and every ``eval_every`` iterations (before that iteration's step), and
  after the last step, on the validation and test splits (model in eval mode): mean cross-entropy and
  accuracy. The early-stop iteration is the evaluated iteration with the lowest validation loss (the
  first one on ties).
* **Augmentation** ``flip-crop`` (CIFAR): each training example is flipped horizontally with probability
  1/2 and cropped back to its size at a random offset after zero-padding 4 pixels on each side. The draws
  come from a second ``torch.Generator`` seeded with ``s + AUGMENT_SEED_OFFSET`` (on the CPU, so they do
  not depend on the device).
* **Other randomness** (dropout) uses torch's global generator, seeded with ``s`` inside
  ``torch.random.fork_rng`` so the caller's random state is left alone.

The whole training set is moved to the device once; a batch is an index into it (no DataLoader, no copy
per step from the host). See bench/bench_training.py for what that buys.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

import ticketclient
from ticketclient import constants
from ticketclient.constants import TORCH_THREADS_ENV as TORCH_THREADS_ENV  # the variable cpu_threads() reads
from ticketclient.data import TaskData
from ticketclient.format import Recipe

#: Examples per forward pass when evaluating a split (bounds memory on big splits).
EVAL_CHUNK = 2048
#: The augmentation generator of run seed ``s`` is seeded with ``s + AUGMENT_SEED_OFFSET``.
AUGMENT_SEED_OFFSET = 7_919
#: Zero padding (pixels per side) before the random crop of ``flip-crop``.
CROP_PADDING = 4
#: Adam's epsilon (torch.optim.Adam's default; the format has no field for it).
ADAM_EPS = 1e-8

EvalCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What one training run produced. ``to_dict()`` is json-serialisable (the verifier stores it)."""

    curve: list[dict[str, Any]]
    final_test_accuracy: float
    final_test_loss: float
    early_stop_iteration: int
    early_stop_test_accuracy: float
    iterations: int
    seed: int | None
    device: str
    wall_time_s: float
    versions: dict[str, str] = field(default_factory=lambda: library_versions())
    #: Every parameter and buffer after ``snapshot_iteration`` steps, when asked for (rewinding). Not in to_dict().
    snapshot: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def final_val_accuracy(self) -> float:
        return float(self.curve[-1]["val_accuracy"])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("snapshot")
        return out


def library_versions() -> dict[str, str]:
    return {"torch": torch.__version__, "ticketclient": ticketclient.__version__}


# --- the loop ---------------------------------------------------------------------------------------------


def train(
    model: nn.Module,
    mask: Mapping[str, Any] | None,
    data: TaskData,
    recipe: Recipe,
    *,
    seed: int,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_eval: EvalCallback | None = None,
    eval_every: int | None = None,
    max_iterations: int | None = None,
    snapshot_iteration: int | None = None,
    progress_desc: str = "train",
    progress_leave: bool = True,
) -> TrainResult:
    """Train ``model`` in place under ``mask`` with ``recipe``; returns the learning curve and final metrics.

    ``mask`` maps prunable weight names to boolean arrays (None or {} trains densely). ``data`` is a
    ``data.TaskData`` (numpy arrays). ``eval_every`` and ``max_iterations`` override the recipe (quick
    runs); ``snapshot_iteration=k`` keeps a copy of every tensor after ``k`` steps in ``result.snapshot``
    (the rewind point of IMP with rewinding); ``progress_desc``/``progress_leave`` label the iteration bar
    (IMP shows one per round under its round bar). ``on_eval(point)`` is called at every evaluation with
    ``{"iteration", "val_loss", "val_accuracy", "test_loss", "test_accuracy"}``.
    """
    started = time.perf_counter()
    dev = torch.device(device) if device is not None else default_device()
    iterations = int(recipe.iterations if max_iterations is None else min(max_iterations, recipe.iterations))
    every = int(recipe.eval_every if eval_every is None else eval_every)
    batch = int(recipe.batch_size)

    # Everything on the device once: the model, the masks, the three splits, the whole batch order.
    model.to(dev)
    params = dict(model.named_parameters())
    masks = _mask_tensors(mask or {}, params)
    masked_params = [params[name] for name in masks]
    mask_values = list(masks.values())
    x_train, y_train = _as_tensor(data.x_train, dev), _as_tensor(data.y_train, dev, torch.long)
    splits = {
        "val": (_as_tensor(data.x_val, dev), _as_tensor(data.y_val, dev, torch.long)),
        "test": (_as_tensor(data.x_test, dev), _as_tensor(data.y_test, dev, torch.long)),
    }
    order = batch_order(len(y_train), batch, iterations, seed).to(dev)
    augment = _augmenter(recipe.augment, seed)
    apply_masks(masked_params, mask_values)
    optimizer = MaskedOptimizer(list(params.values()), masked_params, mask_values, recipe)

    curve: list[dict[str, Any]] = []
    snapshot: dict[str, np.ndarray] | None = None
    bar = tqdm(total=iterations, disable=not progress, desc=progress_desc, unit="it", dynamic_ncols=True,
               leave=progress_leave)

    def evaluate_now(iteration: int) -> None:
        point: dict[str, Any] = {"iteration": iteration}
        for split, (x, y) in splits.items():
            point[f"{split}_loss"], point[f"{split}_accuracy"] = evaluate(model, x, y)
        curve.append(point)
        bar.set_postfix(val_acc=f"{point['val_accuracy']:.4f}", test_acc=f"{point['test_accuracy']:.4f}")
        if on_eval is not None:
            on_eval(point)

    with torch.random.fork_rng(devices=[_cuda_index(dev)] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model.train()
        for it in range(iterations):
            if snapshot_iteration is not None and it == snapshot_iteration:
                snapshot = _numpy_state(model)
            if is_eval_iteration(it, recipe, every):
                evaluate_now(it)

            lr = learning_rate(recipe, it)
            for group in optimizer.param_groups:
                group["lr"] = lr

            idx = order[it * batch:(it + 1) * batch]
            xb, yb = x_train[idx], y_train[idx]
            if augment is not None:
                xb = augment(xb)
            loss = F.cross_entropy(model(xb), yb)

            optimizer.zero_grad()
            torch.autograd.backward(loss)
            optimizer.step()
            bar.update(1)
        optimizer.mask_gradients()

        if snapshot_iteration is not None and snapshot_iteration == iterations:
            snapshot = _numpy_state(model)
        evaluate_now(iterations)
    bar.close()

    result = result_from_curve(curve, iterations=iterations, wall_time_s=time.perf_counter() - started,
                               device=str(dev), seed=seed)
    result.snapshot = snapshot
    return result


# --- the pieces the loop (and the stacked engine) uses ------------------------------------------------------


class FlatOptimizer:
    """The recipe's optimizer written out over flat vectors: torch.optim's arithmetic, op for op, without its
    ``Optimizer.step`` machinery (hooks, profiler records, grouping by device and dtype: ~0.5 ms a step, more
    than the arithmetic on a verification's few thousand kept weights).

    ``adam`` is ``torch.optim.Adam(foreach=True)``: ``lerp_`` of the first moment, ``mul_`` then ``addcmul_`` of
    the second, bias corrections as Python floats (``1 - beta ** step`` with ``step`` a float), ``sqrt``,
    ``div_``, ``add_(eps)``, ``addcdiv_`` with ``value = (lr / bias_correction1) * -1``; weight decay is
    ``grad.add(param, alpha=weight_decay)``. ``sgd`` is ``torch.optim.SGD(foreach=True)``: weight decay the
    same, the momentum buffer a clone of the first gradient, then ``mul_(momentum).add_(grad, alpha=1)``, and
    ``param.add_(buffer, alpha=-lr)``. On a CPU torch's foreach ops are these same per-tensor ops, so the
    results are bit for bit those of :func:`make_optimizer` (tests/core/test_it_training.py checks hundreds of
    steps of each). ``param_groups`` (one group; the loop sets its ``lr`` every iteration) and ``state`` (per
    vector: ``exp_avg``/``exp_avg_sq`` or ``momentum_buffer``) are shaped like torch.optim's.
    """

    def __init__(self, vectors: Sequence[torch.Tensor], recipe: Recipe) -> None:
        self.kind = recipe.optimizer.lower()
        if self.kind not in ("sgd", "adam"):
            raise ValueError(f"unknown optimizer {recipe.optimizer!r} (expected sgd or adam)")
        group: dict[str, Any] = {"params": list(vectors), "lr": float(recipe.lr),
                                 "weight_decay": float(recipe.weight_decay)}
        if self.kind == "adam":
            group.update(betas=(float(recipe.betas[0]), float(recipe.betas[1])), eps=ADAM_EPS)
        else:
            group.update(momentum=float(recipe.momentum), dampening=0.0)
        self.param_groups: list[dict[str, Any]] = [group]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {v: {} for v in group["params"]}
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        """One update of every vector from its ``.grad``."""
        self.steps += 1
        group = self.param_groups[0]
        if self.kind == "adam":
            self._adam(group)
        else:
            self._sgd(group)

    def _adam(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        step = float(self.steps)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = (lr / bias_correction1) * -1
        bias_correction2_sqrt = bias_correction2 ** 0.5
        for param in group["params"]:
            grad = _grad_of(param)
            state = self.state[param]
            if not state:
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2)
            exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)
            denom = exp_avg_sq.sqrt()
            denom.div_(bias_correction2_sqrt)
            denom.add_(eps)
            param.addcdiv_(exp_avg, denom, value=step_size)

    def _sgd(self, group: dict[str, Any]) -> None:
        lr, weight_decay = float(group["lr"]), float(group["weight_decay"])
        momentum, dampening = float(group["momentum"]), float(group["dampening"])
        for param in group["params"]:
            grad = _grad_of(param)
            if weight_decay != 0:
                grad = grad.add(param, alpha=weight_decay)
            if momentum != 0:
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.detach().clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(grad, alpha=1 - dampening)
                grad = state["momentum_buffer"]
            param.add_(grad, alpha=-lr)


def _grad_of(param: torch.Tensor) -> torch.Tensor:
    if param.grad is None:
        raise RuntimeError("the optimizer's vector has no gradient")
    return param.grad


@dataclass
class _Part:
    """One parameter's place in a flat vector: its kept flat indices (None: all of it), its slices."""

    param: torch.Tensor
    index: torch.Tensor | None
    value: torch.Tensor
    grad: torch.Tensor
    #: the caller reads ``value`` and writes ``grad`` itself (see MaskedOptimizer.kept)
    direct: bool = False


class MaskedOptimizer:
    """The recipe's optimizer (:class:`FlatOptimizer`) over the *surviving* weights of the masked parameters.

    The optimizer sees one flat vector (per dtype and device): the kept entries of every masked parameter
    ``p`` (mask ``m``, same shape, 1 = kept), ``p.flatten()[flat indices of m]``, followed by every unmasked
    parameter (biases, batch norm) whole. :meth:`step` gathers the kept entries of ``p.grad`` into the
    vector's gradient, runs the optimizer, and writes the vector back into the parameters (masked ones at
    the kept positions only). Pruned entries are never read nor written, so they stay exactly zero (the
    caller multiplies the mask into the weights once, before the first step), and the optimizer's state
    (Adam's ``exp_avg``/``exp_avg_sq``, SGD's momentum) exists only for kept weights. SGD and Adam are
    element-wise, so this is the same arithmetic, value for value, as stock ``torch.optim`` over the whole
    tensors with zeroed pruned gradients (tests check bit equality), without the ~97% of the state that
    stays zero at 3% density (``sqrt`` of exact zeros is slow on some CPUs) and with one tensor per
    optimizer call instead of one per parameter (bench/RESULTS.md). :meth:`mask_gradients` zeroes the pruned
    entries of the parameters' ``.grad`` (the training loop calls it after the last step). The training
    loop and the stacked engine (parameters ``[K, ...]``, masks ``[K, ...]``) both use it. Every parameter
    must receive a gradient at every step (true of every whitelisted architecture); one without is an error.
    """

    def __init__(self, params: Sequence[torch.Tensor], masked_params: Sequence[torch.Tensor],
                 mask_values: Sequence[torch.Tensor], recipe: Recipe) -> None:
        self.params = list(params)
        # An all-ones mask (the dense parent) keeps everything: that parameter is optimized whole.
        kept = {id(p): m for p, m in zip(masked_params, mask_values, strict=True) if not bool(m.all())}
        self._masked = [p for p in self.params if id(p) in kept]
        self._masks = [kept[id(p)] for p in self._masked]
        self._parts: list[_Part] = []
        groups: dict[tuple[torch.dtype, torch.device], list[tuple[torch.Tensor, torch.Tensor | None]]] = {}
        with torch.no_grad():
            for p in self.params:
                idx = torch.nonzero(kept[id(p)].reshape(-1)).squeeze(1) if id(p) in kept else None
                groups.setdefault((p.dtype, p.device), []).append((p, idx))
            vectors = []
            for members in groups.values():
                flat = torch.cat([p.detach().reshape(-1) if idx is None else p.detach().reshape(-1).index_select(0, idx)
                                  for p, idx in members])
                flat.grad = torch.zeros_like(flat)
                start = 0
                for p, idx in members:
                    n = p.numel() if idx is None else idx.numel()
                    self._parts.append(_Part(p, idx, flat[start:start + n], flat.grad[start:start + n]))
                    start += n
                vectors.append(flat)
        self.optimizer = FlatOptimizer(vectors, recipe)

    def kept(self, param: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, gradient) of ``param``'s kept entries: views of the flat vector and of its gradient, in the
        row-major order of the kept positions (all of ``param`` when it is unmasked).

        From this call on, ``param`` is *direct*: :meth:`step` neither gathers its ``.grad`` nor writes its
        values back; the caller writes the kept gradient into the view before each step and reads the kept
        values from the other (a sparse layer does, bench/RESULTS.md), and :meth:`write_back` puts the
        values into ``param`` when the caller needs the dense tensor."""
        part = next(part for part in self._parts if part.param is param)
        part.direct = True
        return part.value, part.grad

    def kept_index(self, param: torch.Tensor) -> torch.Tensor | None:
        """The flat indices of ``param``'s kept entries (ascending), None when it is optimized whole."""
        return next(part.index for part in self._parts if part.param is param)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One optimizer step of the kept weights; pruned gradients never read, pruned weights untouched."""
        for part in self._parts:
            if part.direct:
                continue
            grad = part.param.grad
            if grad is None:
                raise RuntimeError(f"parameter {self.params.index(part.param)} received no gradient this step; "
                                   "every parameter must")
            if part.index is None:
                part.grad.copy_(grad.reshape(-1))
            else:
                torch.index_select(grad.reshape(-1), 0, part.index, out=part.grad)
        self.optimizer.step()
        self.write_back(direct=False)

    @torch.no_grad()
    def write_back(self, *, direct: bool = True) -> None:
        """Write the vector into the parameters (the direct ones with ``direct``, the others without)."""
        for part in self._parts:
            if part.direct != direct:
                continue
            if part.index is None:
                part.param.detach().view(-1).copy_(part.value)
            else:
                part.param.detach().view(-1).index_copy_(0, part.index, part.value)

    @torch.no_grad()
    def mask_gradients(self) -> None:
        """Zero the pruned entries of every masked parameter's ``.grad`` (the update never reads them)."""
        for p, mask in zip(self._masked, self._masks, strict=True):
            if p.grad is not None:
                p.grad.mul_(mask)


@torch.no_grad()
def apply_masks(params: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> None:
    """Multiply each mask (1 = kept) into its parameter in place: pruned weights become exactly zero."""
    for param, mask in zip(params, masks, strict=True):
        param.mul_(mask)


def warm_up() -> None:
    """Pay torch's one-time start-up costs now (call it once when a worker process starts).

    Builds and steps each optimizer once on a 4-element tensor, and runs one batched matrix product (the
    first call of a kernel loads and initialises it). Training no longer constructs a ``torch.optim``
    optimizer, whose first construction imports most of ``torch._dynamo`` (1.7-3.8 s measured).
    """
    for name in ("adam", "sgd"):
        p = torch.zeros(4, requires_grad=True)
        mask = torch.tensor([1.0, 0.0, 1.0, 1.0])
        opt = MaskedOptimizer([p], [p], [mask], Recipe(optimizer=name, lr=1e-3, momentum=0.9))
        p.grad = torch.ones(4)
        opt.step()
    torch.baddbmm(torch.zeros(1, 2, 1), torch.ones(1, 2, 3), torch.ones(1, 3, 2))


def default_device() -> torch.device:
    """CUDA when available; otherwise the CPU with :func:`cpu_threads` torch threads."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(cpu_threads())
    return torch.device("cpu")


def cpu_threads() -> int:
    """Torch threads for CPU training: ``$TICKETHUB_TORCH_THREADS``, else one per core (``os.cpu_count()``).

    Set it to 1 on a machine shared by several training processes: small networks spend their time in
    thread synchronisation when the cores are oversubscribed (measured 30x slower on a busy 2-core box).
    """
    return constants.torch_threads() or os.cpu_count() or 1


def batch_order(n: int, batch_size: int, iterations: int, seed: int) -> torch.Tensor:
    """The training-example indices of a whole run, ``iterations * batch_size`` long (int64, CPU).

    Batch ``k`` is ``order[k*B:(k+1)*B]``. One permutation of ``range(n)`` per epoch, drawn from a
    ``torch.Generator`` seeded with ``seed``, concatenated (docs/ticket-format.md, "Recipe semantics").
    """
    if n <= 0 or batch_size <= 0:
        raise ValueError(f"cannot draw batches of {batch_size} from {n} training examples")
    needed = iterations * batch_size
    generator = torch.Generator().manual_seed(int(seed))
    epochs = max(1, math.ceil(needed / n))
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(epochs)])[:needed]


def is_eval_iteration(iteration: int, recipe: Recipe, eval_every: int | None = None) -> bool:
    """True when the model is evaluated before the step of ``iteration`` (0, E, 2E, ...)."""
    every = int(recipe.eval_every if eval_every is None else eval_every)
    return every > 0 and iteration % every == 0


def learning_rate(recipe: Recipe, iteration: int) -> float:
    """The learning rate of ``iteration``: linear warmup, then the schedule (see the module docstring)."""
    t, total, warm = iteration, int(recipe.iterations), int(recipe.warmup_iterations)
    factor = min(1.0, (t + 1) / warm) if warm > 0 else 1.0
    schedule = recipe.lr_schedule
    if schedule == "constant":
        pass
    elif schedule == "step":
        passed = sum(1 for m in recipe.milestones if t >= int(m))
        factor *= float(recipe.gamma) ** passed
    elif schedule == "cosine":
        u = min(1.0, max(0.0, (t - warm) / max(1, total - warm)))
        factor *= 0.5 * (1.0 + math.cos(math.pi * u))
    else:
        raise ValueError(f"unknown lr_schedule {schedule!r} (expected constant, step or cosine)")
    return float(recipe.lr) * factor


def make_optimizer(params: list[torch.Tensor], recipe: Recipe) -> torch.optim.Optimizer:
    """Stock ``torch.optim``, ``sgd`` (momentum, weight decay) or ``adam`` (betas, weight decay), at the
    recipe's base lr: the reference :class:`FlatOptimizer` reproduces bit for bit (the training loop itself
    uses :class:`FlatOptimizer`).

    The multi-tensor (``foreach``) implementations, on every device: same arithmetic as the per-tensor loop."""
    name = recipe.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=float(recipe.lr), momentum=float(recipe.momentum),
                               weight_decay=float(recipe.weight_decay), foreach=True)
    if name == "adam":
        beta1, beta2 = recipe.betas
        return torch.optim.Adam(params, lr=float(recipe.lr), betas=(float(beta1), float(beta2)), eps=ADAM_EPS,
                                weight_decay=float(recipe.weight_decay), foreach=True)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r} (expected sgd or adam)")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode on one split; restores the mode after."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(y), EVAL_CHUNK):
        logits = model(x[start:start + EVAL_CHUNK])
        yb = y[start:start + EVAL_CHUNK]
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
    model.train(was_training)
    n = max(1, len(y))
    return float(loss_sum) / n, int(correct) / n


def result_from_curve(curve: list[dict[str, Any]], *, iterations: int, wall_time_s: float, device: str,
                      seed: int | None = None) -> TrainResult:
    """A TrainResult from the evaluations of a run (the last point is the final model)."""
    if not curve:
        raise ValueError("a training run has at least one evaluation (the final one)")
    best = min(range(len(curve)), key=lambda i: (curve[i]["val_loss"], i))
    return TrainResult(
        curve=curve,
        final_test_accuracy=float(curve[-1]["test_accuracy"]),
        final_test_loss=float(curve[-1]["test_loss"]),
        early_stop_iteration=int(curve[best]["iteration"]),
        early_stop_test_accuracy=float(curve[best]["test_accuracy"]),
        iterations=int(iterations),
        seed=seed,
        device=device,
        wall_time_s=float(wall_time_s),
    )


def _as_tensor(array: Any, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array), dtype=dtype).to(device)


def _mask_tensors(mask: Mapping[str, Any], params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mask as float tensors on each weight's device (1 = kept), checked against the model."""
    out: dict[str, torch.Tensor] = {}
    for name, m in mask.items():
        if name not in params:
            raise KeyError(f"mask names {name!r}, which is not a parameter of the model")
        p = params[name]
        t = torch.as_tensor(np.asarray(m.cpu() if isinstance(m, torch.Tensor) else m)).to(dtype=torch.bool)
        if tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"mask {name!r} has shape {tuple(t.shape)}, the weight has {tuple(p.shape)}")
        out[name] = t.to(device=p.device, dtype=p.dtype)
    return out


def _cuda_index(dev: torch.device) -> int:
    return dev.index if dev.index is not None else torch.cuda.current_device()


def _numpy_state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _augmenter(kind: str | None, seed: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The batch augmentation of the recipe (None for ``none``)."""
    kind = (kind or "none").lower().replace("_", "-")
    if kind == "none":
        return None
    if kind not in ("flip-crop", "flipcrop"):
        raise ValueError(f"unknown augment {kind!r} (expected none or flip-crop)")
    generator = torch.Generator().manual_seed(int(seed) + AUGMENT_SEED_OFFSET)

    def flip_crop(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"flip-crop needs image batches [B, C, H, W], got shape {tuple(x.shape)}")
        b, c, h, w = x.shape
        pad = CROP_PADDING
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        padded = F.pad(x, (pad, pad, pad, pad))
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        return padded[torch.arange(b, device=x.device)[:, None, None, None],
                      torch.arange(c, device=x.device)[None, :, None, None], rows, cols]

    return flip_crop
