"""Interoperability with ``torch.nn.utils.prune``: masks as ``weight_orig`` / ``weight_mask``.

PyTorch's pruning utilities reparametrise a pruned ``module.weight`` as a parameter ``weight_orig`` and a
buffer ``weight_mask`` (same dtype as the weight, 1.0 = kept), recomputing ``weight = weight_orig *
weight_mask`` before every forward. A ticket's mask maps onto that one to one:

* :func:`apply_prune_masks` puts a ticket's mask on a module (``prune.custom_from_mask``), so code written
  for ``torch.nn.utils.prune`` (``prune.remove``, ``prune.is_pruned``, further pruning) works on it;
* :func:`masks_from_pruned_model` reads the masks back from a module pruned that way (by anyone);
* :func:`to_prune_state_dict` / :func:`from_prune_state_dict` convert between a ticket's arrays and a
  state dict in the pruned layout (``layers.0.weight_orig`` + ``layers.0.weight_mask``), for loading into a
  pruned module or for importing a checkpoint saved from one.

What ``Ticket.model()`` returns by default is neither: :func:`keep_mask` leaves the parameter names and the
state dict exactly as a dense module's (``layers.0.weight``) and keeps the pruned entries at exactly zero
under any optimizer: a gradient hook zeroes their gradients (so SGD with momentum, Adam, AdamW's decoupled
weight decay, RMSprop... never move them off zero) and a forward pre-hook re-applies the mask if anything
else wrote to them. :func:`unmask` removes the hooks (a plain dense-storage module); :func:`is_masked` tells.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from ticketclient.errors import BundleError

ORIG_SUFFIX = "_orig"
MASK_SUFFIX = "_mask"
#: Suffix of the (non-persistent) buffer :func:`keep_mask` stores a weight's mask in: ``weight_ticket_mask``.
KEEP_SUFFIX = "_ticket_mask"


def _split(name: str) -> tuple[str, str]:
    """``layers.0.weight`` -> (``layers.0``, ``weight``)."""
    module_name, _, param = name.rpartition(".")
    return module_name, param


def apply_prune_masks(model: nn.Module, mask: Mapping[str, np.ndarray | torch.Tensor]) -> nn.Module:
    """Reparametrise every masked weight of ``model`` with ``torch.nn.utils.prune.custom_from_mask``.

    ``mask`` maps parameter names (``layers.0.weight``) to boolean arrays of the weight's shape. The model
    is changed in place and returned; afterwards ``model.state_dict()`` holds ``*.weight_orig`` and
    ``*.weight_mask``, and ``prune.is_pruned(model)`` is true.
    """
    for name, m in mask.items():
        module_name, param = _split(name)
        try:
            module = model.get_submodule(module_name)
        except AttributeError as e:
            raise BundleError("unknown_tensor", name, f"the model has no module {module_name!r} for this mask") from e
        weight = getattr(module, param, None)
        if not isinstance(weight, torch.Tensor):
            raise BundleError("unknown_tensor", name, f"module {module_name!r} has no tensor {param!r}")
        tensor = torch.as_tensor(np.asarray(m)) if not isinstance(m, torch.Tensor) else m
        if tuple(tensor.shape) != tuple(weight.shape):
            raise BundleError("shape_mismatch", name,
                              f"mask shape {tuple(tensor.shape)} differs from weight shape {tuple(weight.shape)}")
        prune.custom_from_mask(module, param, tensor.to(device=weight.device, dtype=torch.bool))  # type: ignore[no-untyped-call]
    return model


def masks_from_pruned_model(model: nn.Module) -> dict[str, np.ndarray]:
    """The boolean masks of a module pruned with ``torch.nn.utils.prune`` (``layers.0.weight`` -> array)."""
    masks: dict[str, np.ndarray] = {}
    for module_name, module in model.named_modules():
        for buffer_name, buffer in module.named_buffers(recurse=False):
            if not buffer_name.endswith(MASK_SUFFIX):
                continue
            param = buffer_name[: -len(MASK_SUFFIX)]
            if not hasattr(module, param + ORIG_SUFFIX):
                continue
            full = f"{module_name}.{param}" if module_name else param
            masks[full] = buffer.detach().cpu().numpy() != 0
    return masks


def to_prune_state_dict(tensors: Mapping[str, np.ndarray], mask: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """A state dict in ``torch.nn.utils.prune``'s layout: masked weights become ``*_orig`` + ``*_mask``.

    The ``*_mask`` tensors have the weight's dtype (1.0 kept, 0.0 pruned), exactly as ``prune`` stores
    them, so ``pruned_module.load_state_dict(...)`` accepts the result.
    """
    state: dict[str, torch.Tensor] = {}
    for name, value in tensors.items():
        array = torch.from_numpy(np.ascontiguousarray(value))
        if name in mask:
            state[name + ORIG_SUFFIX] = array
            state[name + MASK_SUFFIX] = torch.from_numpy(np.asarray(mask[name], dtype=bool)).to(array.dtype)
        else:
            state[name] = array
    missing = set(mask) - set(tensors)
    if missing:
        raise BundleError("unknown_tensor", sorted(missing)[0], "mask names a tensor that is not in the tensors")
    return state


def from_prune_state_dict(state: Mapping[str, torch.Tensor | np.ndarray]) -> tuple[dict[str, np.ndarray],
                                                                                 dict[str, np.ndarray]]:
    """Split a pruned-layout state dict into (tensors, mask), the arrays of a ticket bundle.

    ``layers.0.weight_orig`` and ``layers.0.weight_mask`` become ``tensors["layers.0.weight"]`` (the original
    values, pruned entries included: a ticket stores its init unmasked) and ``mask["layers.0.weight"]``.
    A ``*_orig`` without its ``*_mask`` (or the reverse) is an error.
    """
    def numpy(v: torch.Tensor | np.ndarray) -> np.ndarray:
        return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)

    tensors: dict[str, np.ndarray] = {}
    mask: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.endswith(ORIG_SUFFIX):
            base = key[: -len(ORIG_SUFFIX)]
            if base + MASK_SUFFIX not in state:
                raise BundleError("missing_mask", key, f"{key} has no matching {base + MASK_SUFFIX}")
            tensors[base] = numpy(value)
            m = numpy(state[base + MASK_SUFFIX])
            if not np.all((m == 0) | (m == 1)):
                raise BundleError("mask_not_boolean", base + MASK_SUFFIX, "a prune mask must hold only 0 and 1")
            mask[base] = m != 0
        elif key.endswith(MASK_SUFFIX):
            if key[: -len(MASK_SUFFIX)] + ORIG_SUFFIX not in state:
                raise BundleError("missing_weight", key, f"{key} has no matching *{ORIG_SUFFIX} tensor")
        else:
            tensors[key] = numpy(value)
    return tensors, mask


# --- a module that keeps its mask, with dense parameter names -------------------------------------------


def _module_and_weight(model: nn.Module, name: str) -> tuple[nn.Module, str, torch.Tensor]:
    module_name, param = _split(name)
    try:
        module = model.get_submodule(module_name)
    except AttributeError as e:
        raise BundleError("unknown_tensor", name, f"the model has no module {module_name!r} for this mask") from e
    weight = module._parameters.get(param)
    if not isinstance(weight, torch.Tensor):
        raise BundleError("unknown_tensor", name, f"module {module_name!r} has no parameter {param!r}")
    return module, param, weight


def keep_mask(model: nn.Module, mask: Mapping[str, np.ndarray | torch.Tensor]) -> nn.Module:
    """Keep the pruned weights of ``model`` at exactly zero from now on, whatever trains it (in place).

    ``mask`` maps parameter names (``layers.0.weight``) to boolean arrays (True = kept). The weights are
    zeroed where pruned; each mask is stored as a non-persistent buffer (it follows ``model.to(device)``
    and ``copy.deepcopy``, and stays out of ``state_dict()``, whose names and shapes are unchanged); a
    gradient hook zeroes the pruned gradients and a forward pre-hook re-zeroes pruned weights that
    something else wrote to. Returns ``model``. Undo with :func:`unmask`.
    """
    unmask(model)
    for name, m in mask.items():
        module, param, weight = _module_and_weight(model, name)
        keep = m if isinstance(m, torch.Tensor) else torch.from_numpy(np.asarray(m, dtype=bool))
        if tuple(keep.shape) != tuple(weight.shape):
            raise BundleError("shape_mismatch", name,
                              f"mask shape {tuple(keep.shape)} differs from weight shape {tuple(weight.shape)}")
        buffer = param + KEEP_SUFFIX
        module.register_buffer(buffer, keep.to(device=weight.device, dtype=torch.bool).clone(), persistent=False)
        with torch.no_grad():
            weight.mul_(getattr(module, buffer))
        _hook_gradient(module, param, buffer)
        hook = _forward_hook(param, buffer)
        module.register_forward_pre_hook(hook)
    return model


def _parameter(module: nn.Module, name: str) -> nn.Parameter:
    """The module's own parameter ``name`` (a masked weight is never None)."""
    weight = module._parameters[name]
    if weight is None:
        raise BundleError("unknown_tensor", name, f"the module has no parameter {name!r}")
    return weight


def _ours(hook: Any) -> bool:
    return bool(getattr(hook, "_ticket_mask", False))


def _hook_gradient(module: nn.Module, param: str, buffer: str) -> None:
    """A gradient hook on the weight zeroing pruned entries (once; again after ``copy.deepcopy``, which
    copies module hooks but not tensor hooks)."""
    weight = _parameter(module, param)
    if any(_ours(h) for h in (weight._backward_hooks or {}).values()):
        return

    def hook(grad: torch.Tensor) -> torch.Tensor:
        keep: torch.Tensor = getattr(module, buffer)
        return grad * (keep if keep.device == grad.device else keep.to(grad.device))

    hook._ticket_mask = True  # type: ignore[attr-defined]
    weight.register_hook(hook)  # type: ignore[no-untyped-call]


def _forward_hook(param: str, buffer: str) -> Any:
    def hook(module: nn.Module, args: Any) -> None:
        keep = getattr(module, buffer)
        weight = _parameter(module, param)
        if weight.requires_grad:
            _hook_gradient(module, param, buffer)
        # Only when something moved a pruned weight (an optimizer without gradients, a manual write): an
        # in-place write would otherwise bump the version of a tensor an earlier forward saved for backward.
        with torch.no_grad():
            if bool(weight.masked_select(~keep).any()):
                weight.mul_(keep)

    hook._ticket_mask = True  # type: ignore[attr-defined]
    return hook


def is_masked(model: nn.Module) -> bool:
    """Whether :func:`keep_mask` is in force on ``model``."""
    return any(_ours(h) for m in model.modules() for h in m._forward_pre_hooks.values())


def kept_masks(model: nn.Module) -> dict[str, np.ndarray]:
    """The masks :func:`keep_mask` holds on ``model`` (``layers.0.weight`` -> boolean array)."""
    masks: dict[str, np.ndarray] = {}
    for module_name, module in model.named_modules():
        for buffer_name, buffer in module.named_buffers(recurse=False):
            if buffer_name.endswith(KEEP_SUFFIX):
                param = buffer_name[: -len(KEEP_SUFFIX)]
                masks[f"{module_name}.{param}" if module_name else param] = buffer.detach().cpu().numpy().copy()
    return masks


def unmask(model: nn.Module) -> nn.Module:
    """A plain dense-storage module: remove :func:`keep_mask`'s hooks and buffers (and make a
    ``torch.nn.utils.prune`` reparametrisation permanent), in place; returns ``model``. The weights keep
    their current values (pruned ones zero, until something trains them)."""
    for module in model.modules():
        for key in [k for k, h in module._forward_pre_hooks.items() if _ours(h)]:
            del module._forward_pre_hooks[key]
        for weight in module._parameters.values():
            hooks = weight._backward_hooks if weight is not None else None
            if hooks is None:
                continue
            for key in [k for k, h in hooks.items() if _ours(h)]:
                del hooks[key]
        for buffer_name in [b for b in module._buffers if b.endswith(KEEP_SUFFIX)]:
            del module._buffers[buffer_name]
            module._non_persistent_buffers_set.discard(buffer_name)
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)  # type: ignore[no-untyped-call]
    return model
