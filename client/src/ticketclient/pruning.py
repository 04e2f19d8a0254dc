"""Finding lottery tickets by iterative magnitude pruning (IMP), and the controls a ticket must beat.

IMP (Frankle & Carbin 2019; rewinding: Frankle et al. 2019/2020), as :func:`find_ticket` runs it:

1. initialise the dense network with :func:`ticketclient.models.init_weights` (``seed``; every weight
   and bias drawn, :data:`ticketclient.models.INIT_DESCRIPTION`), keep theta_0;
2. train it with the recipe (:func:`ticketclient.training.train`, data-order seed ``seed``); with
   ``rewind_iteration=k > 0`` keep the weights after ``k`` steps, theta_k: that is the ticket's init;
3. prune the smallest-magnitude *surviving* weights of the trained network (:func:`prune`):
   :class:`Layerwise` removes ``rate`` of each layer's survivors (the output layer ``output_rate``),
   :class:`Global` removes ``rate`` of all survivors with one magnitude threshold across layers;
   only the prunable weights (Linear and Conv2d weights) are pruned, never biases or batch norm;
4. reset the survivors to the init (theta_0, or theta_k when rewinding), train again; repeat 3-4.

Every round trains the full ``recipe.iterations`` from the init (theta_k included), exactly as the
verifier retrains a submitted ticket. Round ``k`` (1-based) is the network after ``k`` prunings, trained; its :class:`~ticketclient.format.TicketBundle`
holds the init, the round's mask, and claims measured by that training. The number pruned is
``round(rate * survivors)``, so after ``k`` layer-wise rounds a layer keeps about ``(1 - rate) ** k`` of
its weights (LeNet-300-100, 20%/10%: ``(265,200 * 0.8**k + 1,000 * 0.9**k) / 266,200``).

Controls (the verifier trains them next to the ticket): :func:`reinit_control` (same mask, fresh init),
:func:`random_mask_control` (same init and per-layer density, mask shuffled within each layer) and
:func:`supermask_accuracy` (the masked init, untrained, on the test split).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import ticketclient
from ticketclient import data as data_module
from ticketclient import models, policy, spec, stacked, tasks, training
from ticketclient.bundle import TicketBundle
from ticketclient.config import TicketConfig
from ticketclient.recipe import Recipe


@dataclass(frozen=True)
class Layerwise:
    """Prune ``rate`` of each layer's surviving weights per round; the output layer at ``output_rate``.

    ``conv_rate`` (when set) is the rate of convolution kernels (4-D weights), as in the paper's
    Conv-2/4/6 (conv 10% or 15%, fully connected 20%, output 10%).
    """

    rate: float = 0.2
    output_rate: float = 0.1
    conv_rate: float | None = None
    name = "layerwise"

    def rates(self) -> dict[str, float]:
        out = {"default": self.rate, "output": self.output_rate}
        if self.conv_rate is not None:
            out["conv"] = self.conv_rate
        return out

    def rate_of(self, name: str, shape: tuple[int, ...], output_layer: str | None) -> float:
        if name == output_layer:
            return self.output_rate
        if self.conv_rate is not None and len(shape) == 4:
            return self.conv_rate
        return self.rate


@dataclass(frozen=True)
class Global:
    """Prune ``rate`` of all surviving prunable weights per round, one magnitude threshold across layers.

    With ``prune_linear=False`` the fully connected weights (2-D) are left dense and the threshold is
    taken over the convolution kernels only (open_lth's VGG/ResNet setting).
    """

    rate: float = 0.2
    prune_linear: bool = True
    name = "global"

    def rates(self) -> dict[str, float]:
        return {"default": self.rate} if self.prune_linear else {"default": self.rate, "linear": 0.0}


Strategy = Layerwise | Global


def default_strategy(architecture: Mapping[str, Any]) -> Strategy:
    """The pruning of an architecture when none is given: its family's registered ``default_pruning``
    (``spec.FAMILIES``: layer-wise with per-type rates for LeNet and Conv nets, global for VGG and ResNet);
    layer-wise 20% (output 10%) for an architecture given as a layer list."""
    family = architecture.get("family")
    if isinstance(family, str) and family in spec.FAMILIES:
        return strategy_from_dict(spec.FAMILIES[family].default_pruning)
    return Layerwise(0.2, 0.1)


def strategy_from_dict(pruning: Mapping[str, Any]) -> Strategy:
    """A strategy from ``{"strategy": "layerwise"|"global", "rates": {...}}`` (spec.FAMILIES' default_pruning
    and a ticket's provenance). Rate keys: ``default``, ``output``, ``conv``, ``linear``."""
    kind = pruning.get("strategy", "layerwise")
    rates: dict[str, float] = {str(k): float(v) for k, v in dict(pruning.get("rates") or {}).items()}
    if kind == "layerwise":
        default = rates.get("linear", rates.get("default", 0.2))
        return Layerwise(rate=default, output_rate=rates.get("output", default), conv_rate=rates.get("conv"))
    if kind == "global":
        return Global(rate=rates.get("default", 0.2), prune_linear=rates.get("linear", 1.0) != 0.0)
    raise ValueError(f"unknown pruning strategy {kind!r} (expected layerwise or global)")


# --- one pruning step -------------------------------------------------------------------------------------


def prune(weights: Mapping[str, np.ndarray], mask: Mapping[str, np.ndarray], strategy: Strategy, *,
          output_layer: str | None = None) -> dict[str, np.ndarray]:
    """The next mask: ``mask`` with the smallest-magnitude surviving ``weights`` removed per ``strategy``.

    ``mask`` names the prunable weights (True = kept). Ties in magnitude are broken by position (the
    earlier weight goes first), so the result is deterministic.
    """
    for name, m in mask.items():
        if np.shape(weights[name]) != np.shape(m):
            raise ValueError(f"weight {name!r} has shape {np.shape(weights[name])}, its mask {np.shape(m)}")
    if isinstance(strategy, Layerwise):
        out = {}
        for name, m in mask.items():
            rate = strategy.rate_of(name, np.shape(m), output_layer)
            out[name] = _prune_smallest([weights[name]], [m], rate)[0]
        return out
    if isinstance(strategy, Global):
        out = {name: np.array(m, dtype=bool) for name, m in mask.items()}
        names = [n for n in mask if strategy.prune_linear or np.ndim(mask[n]) != 2]
        pruned = _prune_smallest([weights[n] for n in names], [mask[n] for n in names], strategy.rate)
        out.update(zip(names, pruned, strict=True))
        return out
    raise TypeError(f"unknown pruning strategy {strategy!r} (use pruning.Layerwise or pruning.Global)")


def _prune_smallest(weights: Sequence[np.ndarray], masks: Sequence[np.ndarray], rate: float) -> list[np.ndarray]:
    """Remove ``round(rate * survivors)`` of the smallest |w| among the survivors of all given tensors."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"a pruning rate is a fraction in [0, 1), got {rate}")
    if not masks:
        return []
    flat_mask = np.concatenate([np.asarray(m, dtype=bool).ravel() for m in masks])
    scores = np.concatenate([np.abs(np.asarray(w, dtype=np.float64)).ravel() for w in weights])
    scores[~flat_mask] = -np.inf  # already pruned: first in line, stay pruned
    already = int((~flat_mask).sum())
    survivors = flat_mask.size - already
    n_prune = int(round(rate * survivors))
    order = np.argsort(scores, kind="stable")
    new = np.ones(flat_mask.size, dtype=bool)
    new[order[:already + n_prune]] = False
    out, start = [], 0
    for m in masks:
        size = np.size(m)
        out.append(new[start:start + size].reshape(np.shape(m)))
        start += size
    return out


def dense_mask(arch: spec.ArchSpec) -> dict[str, np.ndarray]:
    """All prunable weights kept."""
    return {name: np.ones(tuple(arch.tensors[name].shape), dtype=bool) for name in arch.prunable}


# --- IMP --------------------------------------------------------------------------------------------------


def find_ticket(
    task: str,
    architecture: Mapping[str, Any] | spec.ArchSpec,
    recipe: Recipe | None,
    *,
    rounds: int,
    strategy: Strategy | None = None,
    rewind_iteration: int = 0,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    data: data_module.TaskData | None = None,
    device: str | torch.device | None = None,
    claim_runs: int = 3,
) -> list[TicketBundle]:
    """Run IMP for ``rounds`` rounds; returns one TicketBundle per round (round ``k`` at index ``k - 1``).

    ``architecture`` is a config architecture dict (``{"family": "lenet-300-100", "args": {}}`` or
    ``{"layers": [...]}``) or a resolved ``spec.ArchSpec``. Each round is trained with ``recipe`` (None: the
    task's default, :func:`ticketclient.default_recipe`; a layer list has none) and data seed ``seed``;
    ``strategy`` None prunes with the family's registered default (:func:`default_strategy`); ``rewind_iteration`` overrides the recipe's (the init of every round is the dense
    run's weights after that many steps). With ``out_dir``, round ``k`` is saved to ``out_dir/round-k/``.
    ``data`` defaults to ``data.load(task)``. Each bundle claims the median final test accuracy of
    ``claim_runs`` trainings of its init and mask (the round's own, data-order seed ``seed``, and
    ``claim_runs - 1`` more with seeds ``seed + j * CLAIM_SEED_STRIDE``; ``claims.runs`` says how many, and the
    verifier's tolerance accounts for it) and the round's early-stop iteration; its provenance records the method, strategy, rates, rewind point, seed and
    the dense network's test accuracy.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if not 1 <= int(claim_runs) <= 99:
        raise ValueError(f"claim_runs must be in 1..99, got {claim_runs}")
    arch, arch_dict = _resolve(task, architecture)
    strategy = strategy or default_strategy(arch_dict)
    if recipe is None:
        recipe = ticketclient.default_recipe(task, arch_dict)
    recipe = dataclasses.replace(recipe, rewind_iteration=int(rewind_iteration))
    rewind = int(rewind_iteration)
    if rewind < 0 or rewind >= int(recipe.iterations):
        raise ValueError(f"rewind_iteration {rewind} must be in 0..{int(recipe.iterations) - 1} "
                         f"(the recipe trains {recipe.iterations} iterations)")
    task_data = data if data is not None else data_module.load(task)

    model = models.init_weights(models.build_model(arch), seed)
    theta_0 = models.to_numpy(model)
    mask = dense_mask(arch)
    bar = tqdm(total=rounds + 1, disable=not progress, desc="IMP", unit="round", dynamic_ncols=True)
    dense = training.train(model, mask, task_data, recipe, seed=seed, device=device, progress=progress,
                           snapshot_iteration=rewind if rewind > 0 else None, progress_desc="dense",
                           progress_leave=False)
    init = dense.snapshot if rewind > 0 and dense.snapshot is not None else theta_0
    trained = models.to_numpy(model)
    bar.update(1)
    bar.set_postfix(density="100%", test_acc=f"{dense.final_test_accuracy:.4f}")

    bundles = []
    for k in range(1, rounds + 1):
        mask = prune(trained, mask, strategy, output_layer=arch.output_layer)
        model = models.build_model(arch)
        models.load_tensors(model, init)
        models.apply_mask(model, mask)
        result = training.train(model, mask, task_data, recipe, seed=seed, device=device, progress=progress,
                                progress_desc=f"round {k}/{rounds}", progress_leave=False)
        trained = models.to_numpy(model)
        extra = [seed + j * CLAIM_SEED_STRIDE for j in range(1, int(claim_runs))]
        accuracies = [result.final_test_accuracy, *_claim_accuracies(arch, init, mask, task_data, recipe, extra,
                                                                     device=device)]
        bundle = _bundle(task, arch_dict, recipe, init, mask, result, strategy=strategy, round_=k, seed=seed,
                         rewind=rewind, dense_accuracy=dense.final_test_accuracy, data=_data_provenance(task_data),
                         claim_accuracies=accuracies)
        if out_dir is not None:
            bundle.save(Path(out_dir) / f"round-{k}")
        bundles.append(bundle)
        bar.update(1)
        bar.set_postfix(density=f"{_density(mask):.2%}", test_acc=f"{result.final_test_accuracy:.4f}")
    bar.close()
    return bundles


def _bundle(task: str, arch_dict: dict[str, Any], recipe: Recipe, init: dict[str, np.ndarray],
            mask: dict[str, np.ndarray], result: training.TrainResult, *, strategy: Strategy, round_: int,
            seed: int, rewind: int, dense_accuracy: float, data: dict[str, str] | None = None,
            claim_accuracies: Sequence[float] | None = None) -> TicketBundle:
    accuracies = list(claim_accuracies or [result.final_test_accuracy])
    claim = float(statistics.median(accuracies))

    config = TicketConfig.from_json({
        "format": "lottery-ticket/v1",
        "task": task,
        "architecture": arch_dict,
        "recipe": recipe.to_dict(),
        "claims": {"test_accuracy": claim, **({"runs": len(accuracies)} if len(accuracies) > 1 else {}),
                   "early_stop_iteration": result.early_stop_iteration,
                   "early_stop_test_accuracy": result.early_stop_test_accuracy,
                   "val_accuracy": result.final_val_accuracy},
        "provenance": {
            "method": "imp", "rounds": round_, "strategy": strategy.name, "rates": strategy.rates(),
            "rewind_iteration": rewind, "seed": seed, "dense_test_accuracy": dense_accuracy, "parent": None,
            "library": f"ticketclient {ticketclient.__version__}", "data": data,
        },
    })
    return TicketBundle(config=config, init={k: v.copy() for k, v in init.items()},
                        mask={k: v.copy() for k, v in mask.items()})


#: Data-order seeds of a round's extra claim runs: ``seed + j * CLAIM_SEED_STRIDE`` (j = 1, 2, ...).
CLAIM_SEED_STRIDE = 1_000_003


def _claim_accuracies(arch: spec.ArchSpec, init: Mapping[str, np.ndarray], mask: Mapping[str, np.ndarray],
                      task_data: data_module.TaskData, recipe: Recipe, seeds: Sequence[int], *,
                      device: str | torch.device | None) -> list[float]:
    """Final test accuracies of more trainings of (init, mask) with ``seeds`` (stacked when it reproduces)."""
    if not seeds:
        return []
    if stacked.supports(arch, recipe):
        runs = [stacked.StackedRun(init=dict(init), mask=dict(mask), seed=int(s)) for s in seeds]
        return [float(r.final_test_accuracy) for r in stacked.train_stacked(arch, runs, task_data, recipe,
                                                                            device=device)]
    out = []
    for s in seeds:
        model = models.build_model(arch)
        models.load_tensors(model, init)
        out.append(float(training.train(model, mask, task_data, recipe, seed=int(s), device=device,
                                        progress=False).final_test_accuracy))
    return out


def _data_provenance(task_data: data_module.TaskData) -> dict[str, str] | None:
    """``{"name", "sha256"}`` of the data trained on (a :class:`ticketclient.data.TaskData` of a named task),
    else None (data given as another object)."""
    if isinstance(task_data, data_module.TaskData) and task_data.task:
        return task_data.provenance()
    return None


def _density(mask: Mapping[str, np.ndarray]) -> float:
    total = sum(np.size(m) for m in mask.values())
    return float(sum(int(np.count_nonzero(m)) for m in mask.values()) / max(1, total))


# --- controls ---------------------------------------------------------------------------------------------


#: How :func:`reinit_control` draws its run (quoted by the verification policy).
REINIT_DESCRIPTION = (
    "the ticket's mask on a fresh init of the same architecture, drawn exactly as a new network's init "
    "(IMP's theta_0) is drawn: ticketclient.models.init_weights with the control seed, every weight and bias "
    "(" + models.INIT_DESCRIPTION + ")"
)
#: How :func:`random_mask_control` draws its run (quoted by the verification policy).
RANDOM_MASK_DESCRIPTION = (
    "the ticket's own init with a random mask that keeps, in every prunable layer, exactly as many weights "
    "as the ticket's mask keeps in that layer, at positions drawn uniformly: numpy.random.default_rng(control "
    "seed) permutes each layer's flattened mask, layers in sorted name order"
)


def reinit_control(bundle: TicketBundle, seed: int) -> TicketBundle:
    """The paper's random-reinitialisation control: :data:`REINIT_DESCRIPTION`.

    The init is :func:`ticketclient.models.fresh_init` (``init_weights`` of a freshly built model): the same
    function, with a different seed, that drew the dense network IMP started from, so the control differs
    from the ticket by the init draw only; biases are drawn too, never zeroed or copied from the ticket.
    The mask is the ticket's, unchanged.
    """
    fresh = models.fresh_init(bundle.config.resolve(), seed)
    return TicketBundle(config=bundle.config, init=fresh, mask={k: np.array(v) for k, v in bundle.mask.items()})


def random_mask_control(bundle: TicketBundle, seed: int) -> TicketBundle:
    """The random-mask (random pruning) control: :data:`RANDOM_MASK_DESCRIPTION`.

    Per-layer counts are exact (a permutation moves the kept positions, never their number), so every layer
    has the ticket's layer density; the init tensors are the ticket's own (copies), biases included.
    """
    rng = np.random.default_rng(seed)
    shuffled = {}
    for name in sorted(bundle.mask):
        m = np.asarray(bundle.mask[name], dtype=bool)
        shuffled[name] = rng.permutation(m.ravel()).reshape(m.shape)
    return TicketBundle(config=bundle.config, init={k: np.array(v) for k, v in bundle.init.items()},
                        mask={name: shuffled[name] for name in bundle.mask})


def role_state(bundle: TicketBundle, role: str, control_seed: int | None = None,
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(init, mask) that a verification trains for ``role`` (``ticketclient.policy.ROLE_DESCRIPTIONS``).

    The one place that turns a role into tensors: the verifier and ``ticketclient.reproduce`` call it.
    """
    if role == policy.TICKET:
        return dict(bundle.init), dict(bundle.mask)
    if role == policy.DENSE:
        return dict(bundle.init), {name: np.ones_like(m, dtype=bool) for name, m in bundle.mask.items()}
    if role not in policy.TRAINED_CONTROLS:
        raise ValueError(f"no trained initial state for role {role!r} (roles: {', '.join(policy.TRAINED_ROLES)})")
    if control_seed is None:
        raise ValueError(f"the {role} control needs its control seed")
    control = reinit_control(bundle, control_seed) if role == policy.REINIT else random_mask_control(bundle, control_seed)
    return control.init, control.mask


def supermask_accuracy(bundle: TicketBundle, data: data_module.TaskData, *,
                       device: str | torch.device | None = None) -> float:
    """The supermask control: test accuracy of the ticket's mask on its own init, untrained (eval mode)."""
    model = models.build_model(bundle.config.resolve())
    models.load_tensors(model, bundle.init)
    models.apply_mask(model, bundle.mask)
    dev = torch.device(device) if device is not None else training.default_device()
    model.to(dev)
    x = torch.as_tensor(np.asarray(data.x_test), dtype=torch.float32).to(dev)
    y = torch.as_tensor(np.asarray(data.y_test), dtype=torch.long).to(dev)
    return training.evaluate(model, x, y)[1]


# --- helpers ----------------------------------------------------------------------------------------------


def _resolve(task: str, architecture: Mapping[str, Any] | spec.ArchSpec) -> tuple[spec.ArchSpec, dict[str, Any]]:
    """(ArchSpec, the architecture as a config dict) from a config dict or an already resolved spec."""
    if isinstance(architecture, spec.ArchSpec):
        return architecture, architecture.to_dict()
    info = tasks.get(task)
    arch = spec.resolve(dict(architecture), input_shape=tuple(info.input_shape), num_classes=int(info.num_classes))
    return arch, dict(architecture)


def _architecture_dict(config: TicketConfig) -> dict[str, Any]:
    """The config's architecture as a dict (kept for verifier/calibration.py; ``config.resolve()`` gives the
    resolved ArchSpec)."""
    return dict(config.architecture)
