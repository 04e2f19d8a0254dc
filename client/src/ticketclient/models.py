"""PyTorch modules from architecture specs, their initialisation, and exact numpy round trips.

``build_model(arch)`` turns a resolved :class:`ticketclient.spec.ArchSpec` into an ``nn.Module`` whose
``state_dict()`` names and shapes are exactly ``arch.tensors`` (``layers.{i}.weight`` ...): layer ``i`` of
the spec is ``model.layers[i]``. Layer sizes are read from ``arch.tensors``, so the module cannot disagree
with the spec the registry validated.

``init_weights(model, seed)`` is the library's registered initialisation, the one way a fresh network is
drawn: IMP's theta_0 (``pruning.find_ticket``) and the reinit control (``pruning.reinit_control``) both call
it. See :data:`INIT_DESCRIPTION` for the exact rule. The draws happen on the CPU, so the same seed gives the
same tensors on every device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ticketclient.errors import BundleError
from ticketclient.spec import ArchSpec

#: How :func:`init_weights` draws a fresh network (quoted by the verification policy).
INIT_DESCRIPTION = (
    "a CPU torch.Generator seeded with the seed draws, module by module in model.modules() order, each "
    "Linear and Conv2d weight from N(0, 2 / fan_in) (Kaiming normal, fan-in mode, for ReLU) and then its bias "
    "from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default bias initialisation); batch-norm weights are "
    "one, biases zero, running statistics reset; fan_in = in_features, or in_channels x kernel height x "
    "kernel width"
)


class TicketNet(nn.Module):
    """A feed-forward stack of whitelisted layers; ``layers[i]`` is layer ``i`` of the spec."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


class ResidualBlock(nn.Module):
    """ResNet basic block: conv3x3-bn-relu-conv3x3-bn plus the shortcut (1x1 conv + bn when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def build_model(arch: ArchSpec) -> TicketNet:
    """The module of ``arch`` (a ``spec.ArchSpec``), with PyTorch's default init; see :func:`init_weights`."""
    shapes = {name: tuple(t.shape) for name, t in arch.tensors.items()}
    modules = [_build_layer(i, layer, shapes) for i, layer in enumerate(arch.layers)]
    model = TicketNet(modules)
    _check_against_spec(model, shapes)
    return model


def _build_layer(i: int, layer: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> nn.Module:
    kind = layer["type"]
    prefix = f"layers.{i}."
    if kind == "flatten":
        return nn.Flatten()
    if kind == "relu":
        return nn.ReLU()
    if kind == "dropout":
        return nn.Dropout(float(layer.get("p", 0.5)))
    if kind == "linear":
        out_features, in_features = shapes[prefix + "weight"]
        return nn.Linear(in_features, out_features, bias=bool(layer.get("bias", True)))
    if kind == "conv2d":
        out_channels, in_channels, kh, kw = shapes[prefix + "weight"]
        return nn.Conv2d(in_channels, out_channels, (kh, kw), stride=int(layer.get("stride", 1)),
                         padding=int(layer.get("padding", 0)), bias=bool(layer.get("bias", True)))
    if kind == "batchnorm1d":
        return nn.BatchNorm1d(shapes[prefix + "weight"][0])
    if kind == "batchnorm2d":
        return nn.BatchNorm2d(shapes[prefix + "weight"][0])
    if kind in ("maxpool2d", "avgpool2d"):
        k = int(layer["kernel_size"])
        stride = int(layer.get("stride") or k)
        return nn.MaxPool2d(k, stride) if kind == "maxpool2d" else nn.AvgPool2d(k, stride)
    if kind == "global_avgpool2d":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if kind == "residual":
        out_channels, in_channels = shapes[prefix + "conv1.weight"][:2]
        return ResidualBlock(in_channels, out_channels, int(layer.get("stride", 1)))
    raise BundleError("unknown_layer", f"architecture.layers[{i}].type", f"layer type {kind!r} is not whitelisted")


def _check_against_spec(model: nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> None:
    got = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if got != dict(shapes):
        missing = sorted(set(shapes) - set(got))
        extra = sorted(set(got) - set(shapes))
        wrong = sorted(n for n in set(got) & set(shapes) if got[n] != shapes[n])
        raise BundleError("spec_mismatch", None, f"the built module differs from the spec: missing {missing}, "
                                                 f"unexpected {extra}, shape differs {wrong}")


@torch.no_grad()
def init_weights(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise ``model`` in place, deterministically from ``seed``: :data:`INIT_DESCRIPTION`.

    Every parameter is drawn, biases included, so a network built with :func:`build_model` and passed here
    is "the same architecture, freshly initialised": nothing of PyTorch's own (unseeded) init remains.
    """
    generator = torch.Generator().manual_seed(int(seed))
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            fan_in = module.weight[0].numel()
            std = math.sqrt(2.0 / fan_in)
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
            if module.bias is not None:
                bound = 1.0 / math.sqrt(fan_in)
                module.bias.copy_((torch.rand(module.bias.shape, generator=generator) * 2.0 - 1.0) * bound)
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.weight.fill_(1.0)
            module.bias.zero_()
            module.reset_running_stats()
    return model


def fresh_init(arch: ArchSpec, seed: int) -> dict[str, np.ndarray]:
    """Every tensor of ``arch`` freshly drawn by :func:`init_weights` from ``seed`` (name -> numpy array)."""
    return to_numpy(init_weights(build_model(arch), seed))


def to_numpy(model: nn.Module) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``model`` as numpy arrays (copies, on the CPU), by state_dict name."""
    return {name: t.detach().cpu().numpy().copy() for name, t in model.state_dict().items()}


#: The name ``ticket.py`` uses.
state_to_numpy = to_numpy


@torch.no_grad()
def load_tensors(model: nn.Module, tensors: Mapping[str, Any]) -> nn.Module:
    """Copy ``tensors`` (name -> numpy array or tensor) into ``model`` exactly; every tensor must be given.

    Raises :class:`BundleError` naming the first tensor that is missing, unexpected or of the wrong shape.
    """
    state = model.state_dict()
    missing = sorted(set(state) - set(tensors))
    if missing:
        raise BundleError("missing_tensor", missing[0], f"no value given for {len(missing)} tensor(s): {missing[:5]}")
    unexpected = sorted(set(tensors) - set(state))
    if unexpected:
        raise BundleError("unknown_tensor", unexpected[0], "the model has no tensor of that name")
    for name, target in state.items():
        value = tensors[name]
        source = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.array(value, order="C"))
        if tuple(source.shape) != tuple(target.shape):
            raise BundleError("shape_mismatch", name,
                              f"shape {tuple(source.shape)} differs from the model's {tuple(target.shape)}")
        target.copy_(source.to(dtype=target.dtype))
    return model


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mapping[str, Any]) -> nn.Module:
    """Zero the pruned weights of ``model`` in place (``mask``: weight name -> boolean array, True = kept)."""
    params = dict(model.named_parameters())
    for name, m in mask.items():
        if name not in params:
            raise BundleError("unknown_tensor", name, "the mask names a weight the model does not have")
        p = params[name]
        keep = m if isinstance(m, torch.Tensor) else torch.from_numpy(np.asarray(m, dtype=bool))
        if tuple(keep.shape) != tuple(p.shape):
            raise BundleError("shape_mismatch", name, f"mask shape {tuple(keep.shape)} differs from {tuple(p.shape)}")
        p.mul_(keep.to(device=p.device, dtype=p.dtype))
    return model
