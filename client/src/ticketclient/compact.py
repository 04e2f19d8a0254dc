"""Compaction: turn a sparse ticket into a smaller dense model that computes the same function.

A hidden unit (a neuron of a ``linear`` layer, a channel of a ``conv2d`` layer) can be removed when

* **dead-out**: every weight that reads it in the next layer is pruned, so its value never matters; or
* **dead-in**: every weight that feeds it is pruned, so it outputs a constant (its bias, passed through the
  per-unit layers in between: ReLU, batch norm in eval mode, pooling, flatten). That constant's
  contribution is folded into the next layer's bias. The fold is exact for a ``linear`` consumer and for a
  ``conv2d`` consumer without padding; with zero padding the border pixels would differ, so a dead-in
  channel whose constant is not zero is kept there.

Both rules are applied to a fixed point (dead-in forward, folding as it goes, then dead-out backward),
so a unit fed only by removed units, or read only by removed units, goes too. Inputs and the logits are
never removed, and residual blocks are kept whole (their channels are tied to the skip connection).

"Same function" means the model in eval mode (dropout off, batch norm on its running statistics), which
is how a trained ticket is evaluated. The compact tensors keep a mask (pruned weights stay zero), so the
smaller model can also be trained further with the same masked loop.

The arithmetic here is numpy only; :func:`compact` builds the torch module and counts parameters and
multiply-adds through :mod:`ticketclient.spec`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ticketclient import spec

if TYPE_CHECKING:  # pragma: no cover
    import torch

PRODUCERS = ("linear", "conv2d")
#: Layers that act on each unit (channel) separately, so a unit can be followed through them.
PER_UNIT = ("relu", "dropout", "batchnorm1d", "batchnorm2d", "maxpool2d", "avgpool2d", "global_avgpool2d", "flatten")
BN_EPS = 1e-5


@dataclass
class _Link:
    """A producer layer, the per-unit layers after it, and the producer that reads its units."""

    producer: int
    between: list[int]
    consumer: int


@dataclass(frozen=True)
class Compacted:
    """The arrays of a compacted model (numpy, no torch)."""

    layers: list[dict[str, Any]]
    tensors: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    #: producer weight name -> indices of the units (neurons/channels) removed from it
    removed: dict[str, list[int]] = field(default_factory=dict)

    @property
    def units_removed(self) -> int:
        return sum(len(v) for v in self.removed.values())


def _key(index: int, name: str) -> str:
    return f"layers.{index}.{name}"


def _links(layers: list[dict[str, Any]]) -> list[_Link]:
    """Producer -> consumer pairs joined only by per-unit layers (a residual block breaks the chain)."""
    links: list[_Link] = []
    producer: int | None = None
    between: list[int] = []
    for i, layer in enumerate(layers):
        kind = layer["type"]
        if kind in PRODUCERS:
            if producer is not None:
                links.append(_Link(producer, between, i))
            producer, between = i, []
        elif kind in PER_UNIT and producer is not None:
            between.append(i)
        else:  # residual block or anything unknown: units before it are tied, start over after it
            producer, between = None, []
    return links


def _constant_through(value: float, unit: int, between: list[int], layers: list[dict[str, Any]],
                      tensors: Mapping[str, np.ndarray]) -> float:
    """The value a unit that outputs ``value`` everywhere has after the per-unit layers (eval mode)."""
    for i in between:
        kind = layers[i]["type"]
        if kind == "relu":
            value = max(value, 0.0)
        elif kind in ("batchnorm1d", "batchnorm2d"):
            eps = float(layers[i].get("eps", BN_EPS))
            mean = float(tensors[_key(i, "running_mean")][unit])
            var = float(tensors[_key(i, "running_var")][unit])
            weight = float(tensors[_key(i, "weight")][unit])
            bias = float(tensors[_key(i, "bias")][unit])
            value = (value - mean) / float(np.sqrt(var + eps)) * weight + bias
        # dropout (eval), pooling of a constant map, and flatten leave the value unchanged
    return value


def _columns(unit: int, per_unit: int) -> slice:
    """The consumer's input columns that carry ``unit`` (a channel spans H*W columns after flatten)."""
    return slice(unit * per_unit, (unit + 1) * per_unit)


def compact_arrays(layers: list[dict[str, Any]], tensors: Mapping[str, np.ndarray],
                   mask: Mapping[str, np.ndarray]) -> Compacted:
    """Remove the units of a masked model that cannot change its output; see the module docstring.

    ``layers`` is the canonical layer list (``spec.resolve(...).layers``), ``tensors`` every parameter and
    buffer by name, ``mask`` one boolean array per prunable weight. Returns new layers (smaller
    ``out_features``/``out_channels``), tensors and mask. The input tensors are not modified.
    """
    layers = copy.deepcopy(list(layers))
    arrays: dict[str, np.ndarray] = {k: np.array(v, copy=True) for k, v in tensors.items()}
    masks: dict[str, np.ndarray] = {k: np.asarray(v, dtype=bool).copy() for k, v in mask.items()}
    for name, m in masks.items():  # pruned weights are exactly zero in a masked model
        arrays[name] = np.where(m, arrays[name], 0).astype(arrays[name].dtype)

    links = _links(layers)
    removed: dict[int, set[int]] = {link.producer: set() for link in links}

    def in_columns_per_unit(link: _Link) -> int:
        producer_units = arrays[_key(link.producer, "weight")].shape[0]
        consumer_inputs = arrays[_key(link.consumer, "weight")].shape[1]
        if consumer_inputs % producer_units:
            raise ValueError(f"layer {link.consumer} reads {consumer_inputs} inputs, not a multiple of the "
                             f"{producer_units} units of layer {link.producer}")
        return int(consumer_inputs // producer_units)

    def removed_inputs(index: int) -> set[int]:
        """Input units of producer ``index`` already removed (its incoming link's producer units)."""
        for link in links:
            if link.consumer == index:
                return removed[link.producer]
        return set()

    # Forward: dead-in units, folding their constant output into the consumer's bias.
    for link in links:
        p, c = link.producer, link.consumer
        w_mask = masks[_key(p, "weight")]
        gone_in = removed_inputs(p)
        cols_per_in = 1
        for prev in links:
            if prev.consumer == p:
                cols_per_in = in_columns_per_unit(prev)
        keep_cols = np.ones(w_mask.shape[1], dtype=bool)
        for u in gone_in:
            keep_cols[_columns(u, cols_per_in)] = False
        per_unit = in_columns_per_unit(link)
        c_layer, c_weight = layers[c], arrays[_key(c, "weight")]
        c_bias_key = _key(c, "bias")
        fold_ok_nonzero = c_layer["type"] == "linear" or int(c_layer.get("padding", 0)) == 0
        p_bias = arrays.get(_key(p, "bias"))
        for unit in range(w_mask.shape[0]):
            if w_mask[unit][keep_cols].any():
                continue
            value = float(p_bias[unit]) if p_bias is not None else 0.0
            value = _constant_through(value, unit, link.between, layers, arrays)
            reads = c_weight[:, _columns(unit, per_unit)]
            contribution = reads.reshape(reads.shape[0], -1).sum(axis=1) * value
            if not np.any(contribution):
                removed[p].add(unit)
            elif fold_ok_nonzero and c_bias_key in arrays:
                arrays[c_bias_key] = (arrays[c_bias_key] + contribution).astype(arrays[c_bias_key].dtype)
                removed[p].add(unit)

    # Backward: dead-out units (no surviving weight of a kept consumer unit reads them).
    for link in reversed(links):
        p, c = link.producer, link.consumer
        c_mask = masks[_key(c, "weight")]
        keep_rows = np.ones(c_mask.shape[0], dtype=bool)
        for u in removed.get(c, set()):
            keep_rows[u] = False
        per_unit = in_columns_per_unit(link)
        for unit in range(arrays[_key(p, "weight")].shape[0]):
            if not c_mask[keep_rows][:, _columns(unit, per_unit)].any():
                removed[p].add(unit)

    # Slice every tensor that carries a removed unit.
    removed_names: dict[str, list[int]] = {}
    for link in links:
        p, c = link.producer, link.consumer
        gone = sorted(removed[p])
        if not gone:
            continue
        units = arrays[_key(p, "weight")].shape[0]
        per_unit = in_columns_per_unit(link)
        ck = _key(c, "weight")
        if len(gone) == units:
            # Every unit goes: keep one so shapes stay valid, and cut what reads it (its contribution,
            # if any, was folded into the consumer's bias already).
            placeholder, gone = gone[0], gone[1:]
            arrays[ck][:, _columns(placeholder, per_unit)] = 0
            masks[ck][:, _columns(placeholder, per_unit)] = False
        keep = np.setdiff1d(np.arange(units), gone)
        removed_names[_key(p, "weight")] = gone
        for name in ("weight", "bias"):
            key = _key(p, name)
            if key in arrays:
                arrays[key] = arrays[key][keep]
                if key in masks:
                    masks[key] = masks[key][keep]
        for i in link.between:
            if layers[i]["type"] in ("batchnorm1d", "batchnorm2d"):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    arrays[_key(i, name)] = arrays[_key(i, name)][keep]
        cols = np.concatenate([np.arange(u * per_unit, (u + 1) * per_unit) for u in keep])
        arrays[ck] = arrays[ck][:, cols]
        masks[ck] = masks[ck][:, cols]
        size_key = "out_features" if layers[p]["type"] == "linear" else "out_channels"
        layers[p][size_key] = int(len(keep))
        in_key = "in_features" if layers[c]["type"] == "linear" else "in_channels"
        if in_key in layers[c]:
            layers[c][in_key] = int(len(cols))
    for i in (link.between[j] for link in links for j in range(len(link.between))):
        if layers[i]["type"] in ("batchnorm1d", "batchnorm2d") and "num_features" in layers[i]:
            layers[i]["num_features"] = int(arrays[_key(i, "weight")].shape[0])
    return Compacted(layers=layers, tensors=arrays, mask=masks, removed=removed_names)


@dataclass
class CompactResult:
    """A smaller dense model computing the same function, with the counts before and after."""

    model: torch.nn.Module
    architecture: dict[str, Any]
    tensors: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    removed: dict[str, list[int]]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    nonzero_before: int
    nonzero_after: int

    def __repr__(self) -> str:
        return (f"CompactResult(params {self.params_before:,} -> {self.params_after:,}, "
                f"macs {self.macs_before:,} -> {self.macs_after:,}, "
                f"units removed {sum(len(v) for v in self.removed.values())}, model={type(self.model).__name__})")

    def summary(self) -> str:
        def ratio(a: int, b: int) -> str:
            return f"{a / b:.3f}x" if b else "n/a"

        return (f"parameters {self.params_before:,} -> {self.params_after:,} "
                f"({ratio(self.params_after, self.params_before)}), "
                f"multiply-adds {self.macs_before:,} -> {self.macs_after:,} "
                f"({ratio(self.macs_after, self.macs_before)}), "
                f"nonzero weights {self.nonzero_before:,} -> {self.nonzero_after:,}, "
                f"units removed {sum(len(v) for v in self.removed.values())}")


def _nonzero(tensors: Mapping[str, np.ndarray], arch: spec.ArchSpec) -> int:
    total = 0
    for name, ts in arch.tensors.items():
        if ts.buffer:
            continue
        total += int(np.count_nonzero(tensors[name]))
    return total


def _macs(arch: spec.ArchSpec) -> int:
    """Dense multiply-adds of one forward pass of one example (every Linear and Conv2d weight)."""
    return int(arch.forward_macs)


def compact(architecture: Mapping[str, Any], tensors: Mapping[str, np.ndarray],
            mask: Mapping[str, np.ndarray], *, input_shape: tuple[int, ...], num_classes: int) -> CompactResult:
    """Compact a masked model given as arrays; returns the torch module and the counts before and after.

    ``architecture`` is a config's architecture (family or layers), ``tensors`` the current parameters and
    buffers (init or trained), ``mask`` the ticket's mask. The returned module is in eval mode.
    """
    from ticketclient import models  # torch stays out of this module until a model is built

    arch = spec.resolve(dict(architecture), input_shape=input_shape, num_classes=num_classes)
    masked = {k: (np.where(mask[k], v, 0).astype(v.dtype) if k in mask else v) for k, v in tensors.items()}
    small = compact_arrays(arch.layers, masked, mask)
    small_arch_dict = {"layers": small.layers}
    small_arch = spec.resolve(small_arch_dict, input_shape=input_shape, num_classes=num_classes)
    model = models.build_model(small_arch)
    models.load_tensors(model, small.tensors)
    model.eval()
    return CompactResult(
        model=model, architecture=small_arch_dict, tensors=small.tensors, mask=small.mask,
        removed=small.removed,
        params_before=int(arch.num_parameters), params_after=int(small_arch.num_parameters),
        macs_before=_macs(arch), macs_after=_macs(small_arch),
        nonzero_before=_nonzero(masked, arch), nonzero_after=_nonzero(small.tensors, small_arch),
    )
