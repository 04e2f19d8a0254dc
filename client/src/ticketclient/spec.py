"""Architecture specs: a whitelist of layers, the registered families, and ``resolve()`` (no torch).

An architecture is data, never code: ``{"family": NAME, "args": {...}}`` or ``{"layers": [...]}``.
:func:`resolve` checks it strictly (it may come from an untrusted upload), fills in defaults, infers
``in_features``/``in_channels``/``num_features``, propagates the input shape and returns an
:class:`ArchSpec` with every tensor the model has (names, shapes, dtypes), the prunable weights in order,
parameter counts and multiply-adds. ``ticketclient.models.build_model`` builds exactly these tensors.

Tensor names are those of a torch ``nn.Sequential`` called ``layers``: ``layers.{i}.weight``,
``layers.{i}.bias``, batch norm buffers ``layers.{i}.running_mean`` ..., and inside a ``residual`` block
``layers.{i}.conv1.weight``, ``layers.{i}.bn1.*``, ``layers.{i}.conv2.weight``, ``layers.{i}.bn2.*`` and,
when the block changes the shape, ``layers.{i}.shortcut.0.weight`` and ``layers.{i}.shortcut.1.*``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast

import numpy as np

from ticketclient.checks import check_float, check_int, type_name
from ticketclient.errors import SpecError
from ticketclient.recipe import Recipe

#: Hard caps of a spec (a deployment can lower them with ``validation.Limits``).
MAX_LAYERS = 256
MAX_WIDTH = 16_384          # out_features / out_channels
MAX_KERNEL = 11
MAX_STRIDE = 8
MAX_PADDING = 8
MAX_INPUT_FEATURES = 4_000_000
DEFAULT_MAX_PARAMETERS = 50_000_000

BN_EPS = 1e-5

#: Every layer type and its fields: name -> (allowed python type, default or REQUIRED).
REQUIRED = object()
LAYER_FIELDS: dict[str, dict[str, tuple[type, Any]]] = {
    "flatten": {},
    "linear": {"out_features": (int, REQUIRED), "bias": (bool, True), "in_features": (int, None)},
    "conv2d": {"out_channels": (int, REQUIRED), "kernel_size": (int, REQUIRED), "stride": (int, 1),
               "padding": (int, 0), "bias": (bool, True), "in_channels": (int, None)},
    "batchnorm1d": {"num_features": (int, None)},
    "batchnorm2d": {"num_features": (int, None)},
    "relu": {},
    "dropout": {"p": (float, 0.5)},
    "maxpool2d": {"kernel_size": (int, REQUIRED), "stride": (int, None)},
    "avgpool2d": {"kernel_size": (int, REQUIRED), "stride": (int, None)},
    "global_avgpool2d": {},
    "residual": {"out_channels": (int, REQUIRED), "stride": (int, 1), "in_channels": (int, None)},
}
LAYER_TYPES = tuple(LAYER_FIELDS)
#: Layers whose ``weight`` is prunable (every Linear and Conv2d weight, inside residual blocks too).
PRUNABLE_TYPES = ("linear", "conv2d", "residual")


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the model: shape, safetensors dtype (``F32`` or ``I64``), prunable, buffer."""

    shape: tuple[int, ...]
    dtype: str = "F32"
    prunable: bool = False
    buffer: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class ArchSpec:
    """A resolved architecture; see the module docstring."""

    layers: list[dict[str, Any]]
    input_shape: tuple[int, ...]
    num_classes: int
    tensors: dict[str, TensorSpec]
    prunable: list[str]
    output_layer: str
    num_parameters: int
    #: output shape of each layer (index-aligned with ``layers``)
    shapes: list[tuple[int, ...]]
    #: multiply-adds per example of each prunable weight, dense: name -> macs
    weight_macs: dict[str, int] = field(default_factory=dict)

    @property
    def num_prunable(self) -> int:
        """Number of prunable weights (the denominator of a ticket's density)."""
        return sum(self.tensors[n].size for n in self.prunable)

    @property
    def forward_macs(self) -> int:
        """Dense multiply-adds of one forward pass of one example."""
        return sum(self.weight_macs.values())

    def sparse_macs(self, mask_densities: Mapping[str, float]) -> int:
        """Multiply-adds of one example when each prunable weight keeps ``mask_densities[name]`` of its entries."""
        return int(round(sum(m * float(mask_densities.get(n, 1.0)) for n, m in self.weight_macs.items())))

    def layer_macs(self, index: int, mask_densities: Mapping[str, float] | None = None) -> int:
        """Multiply-adds of layer ``index`` (dense, or with the given per-weight densities)."""
        prefix = f"layers.{index}."
        dens = mask_densities or {}
        return int(round(sum(m * float(dens.get(n, 1.0)) for n, m in self.weight_macs.items()
                             if n.startswith(prefix))))

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-serialisable form: ``{"layers": [...]}`` (resolves to the same spec)."""
        return {"layers": [dict(layer) for layer in self.layers]}

    def to_json(self) -> str:
        """Compact canonical JSON (used in safetensors metadata)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def layer_table(self, mask_densities: Mapping[str, float] | None = None,
                    masks: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """One row per layer: name, type, shape (output), weight_shape, params, density, units,
        surviving_units, macs (dense), sparse_macs.

        ``mask_densities`` maps prunable weight names to their kept fraction (``measure_density``'s
        per-layer dict); ``masks`` (name -> boolean array) also gives surviving units: output units
        (neurons, channels) with at least one kept incoming weight.
        """
        rows = []
        dens = dict(mask_densities or {})
        for i, layer in enumerate(self.layers):
            prefix = f"layers.{i}."
            weights = [n for n in self.prunable if n.startswith(prefix)]
            params = sum(t.size for n, t in self.tensors.items() if n.startswith(prefix) and not t.buffer)
            weight_shape = self.tensors[prefix + "weight"].shape if prefix + "weight" in self.tensors else None
            density = None
            if weights and (mask_densities is not None or masks is not None):
                total = sum(self.tensors[n].size for n in weights)
                if masks is not None and all(n in masks for n in weights):
                    kept: float = sum(int(_count_true(masks[n])) for n in weights)
                else:
                    kept = sum(self.tensors[n].size * float(dens.get(n, 1.0)) for n in weights)
                density = kept / total if total else None
            units = None
            surviving = None
            if layer["type"] in ("linear", "conv2d", "residual"):
                units = int(cast(int, layer.get("out_features") or layer.get("out_channels")))
                main = prefix + ("conv2.weight" if layer["type"] == "residual" else "weight")
                if masks is not None and main in masks:
                    surviving = _surviving_units(masks[main])
            macs = self.layer_macs(i) if weights else 0
            sparse = None
            if weights and (mask_densities is not None or masks is not None):
                per = dens if masks is None else {n: _count_true(masks[n]) / self.tensors[n].size
                                                  for n in weights if n in masks}
                sparse = self.layer_macs(i, per)
            rows.append({
                "index": i, "name": f"layers.{i}", "type": layer["type"], "shape": list(self.shapes[i]),
                "weight_shape": list(weight_shape) if weight_shape else None, "params": params,
                "density": density, "units": units, "surviving_units": surviving, "macs": macs,
                "sparse_macs": sparse,
            })
        return rows


def _count_true(array: Any) -> int:
    return int(np.count_nonzero(np.asarray(array)))


def _surviving_units(mask: Any) -> int:
    m = np.asarray(mask).reshape(np.asarray(mask).shape[0], -1)
    return int(np.count_nonzero(m.any(axis=1)))


# --- families ---------------------------------------------------------------------------------------------


class PruningDefaults(TypedDict):
    """A family's registered pruning: ``pruning.strategy_from_dict`` makes the strategy ``find`` uses."""

    strategy: Literal["layerwise", "global"]
    #: fraction pruned per round, by weight kind: "default", "conv", "linear", "output"
    rates: dict[str, float]


@dataclass(frozen=True)
class FamilyInfo:
    """A registered architecture family: its layers from args, default args, recipe and pruning."""

    name: str
    title: str
    build: Callable[[dict[str, Any]], list[dict[str, Any]]]
    default_args: dict[str, Any]
    recipe: Recipe
    default_pruning: PruningDefaults
    description: str = ""

    @property
    def default_recipe(self) -> Recipe:
        """The family's recipe (``recipe``; the name ``find`` and the docs use)."""
        return self.recipe

    def layers(self, args: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.build({**self.default_args, **dict(args or {})})


def _mlp(hidden: list[int]) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = [{"type": "flatten"}]
    for h in hidden:
        layers += [{"type": "linear", "out_features": h}, {"type": "relu"}]
    layers.append({"type": "linear", "out_features": OUTPUT})
    return layers


class _NumClasses:
    """Placeholder for the task's number of classes in family layer lists (not expressible in JSON)."""

    def __repr__(self) -> str:
        return "num_classes"


OUTPUT: Any = _NumClasses()


def _conv_stack(plan: list[Any], *, batchnorm: bool) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = []
    for item in plan:
        if item == "M":
            layers.append({"type": "maxpool2d", "kernel_size": 2})
            continue
        layers.append({"type": "conv2d", "out_channels": item, "kernel_size": 3, "padding": 1})
        if batchnorm:
            layers.append({"type": "batchnorm2d"})
        layers.append({"type": "relu"})
    return layers


def _conv_n(plan: list[Any]) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    def build(args: dict[str, Any]) -> list[dict[str, Any]]:
        return _conv_stack(plan, batchnorm=False) + [{"type": "flatten"}] + _mlp([256, 256])[1:]

    return build


def _vgg(plan: list[Any]) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    def build(args: dict[str, Any]) -> list[dict[str, Any]]:
        return _conv_stack(plan, batchnorm=True) + [
            {"type": "global_avgpool2d"}, {"type": "linear", "out_features": OUTPUT}]

    return build


def _resnet(depth: int) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    blocks = (depth - 2) // 6

    def build(args: dict[str, Any]) -> list[dict[str, Any]]:
        width = args["width"]
        layers: list[dict[str, Any]] = [
            {"type": "conv2d", "out_channels": width, "kernel_size": 3, "padding": 1, "bias": False},
            {"type": "batchnorm2d"}, {"type": "relu"}]
        for segment, channels in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks):
                stride = 2 if segment > 0 and b == 0 else 1
                layers.append({"type": "residual", "out_channels": channels, "stride": stride})
        layers += [{"type": "global_avgpool2d"}, {"type": "linear", "out_features": OUTPUT}]
        return layers

    return build


def _lenet5(args: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "conv2d", "out_channels": 6, "kernel_size": 5, "padding": 2}, {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "conv2d", "out_channels": 16, "kernel_size": 5}, {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "out_features": 120}, {"type": "relu"},
        {"type": "linear", "out_features": 84}, {"type": "relu"},
        {"type": "linear", "out_features": OUTPUT},
    ]


def _adam(lr: float, iterations: int, *, batch_size: int = 60, eval_every: int = 1000) -> Recipe:
    return Recipe(optimizer="adam", lr=lr, momentum=0.0, betas=(0.9, 0.999), weight_decay=0.0,
                  batch_size=batch_size, iterations=iterations, warmup_iterations=0, lr_schedule="constant",
                  milestones=(), gamma=0.1, rewind_iteration=0, eval_every=eval_every, augment="none")


def _sgd(iterations: int, milestones: tuple[int, ...], warmup: int) -> Recipe:
    return Recipe(optimizer="sgd", lr=0.1, momentum=0.9, betas=(0.9, 0.999), weight_decay=1e-4, batch_size=128,
                  iterations=iterations, warmup_iterations=warmup, lr_schedule="step", milestones=milestones,
                  gamma=0.1, rewind_iteration=0, eval_every=2000, augment="flip-crop")


_LENET_PRUNING: PruningDefaults = {"strategy": "layerwise", "rates": {"default": 0.2, "output": 0.1}}
_GLOBAL_PRUNING: PruningDefaults = {"strategy": "global", "rates": {"default": 0.2, "linear": 0.0}}


def _conv_pruning(conv: float) -> PruningDefaults:
    return {"strategy": "layerwise", "rates": {"conv": conv, "linear": 0.2, "output": 0.1}}


_VGG_PLANS = {
    "vgg-11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    "vgg-16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    "vgg-19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}

FAMILIES: dict[str, FamilyInfo] = {
    "mlp": FamilyInfo(
        "mlp", "Fully connected network", lambda a: _mlp(a["hidden"]), {"hidden": [300, 100]},
        _adam(1.2e-3, 50_000), _LENET_PRUNING,
        "flatten, then linear+relu per entry of `hidden`, then the output linear layer"),
    "lenet-300-100": FamilyInfo(
        "lenet-300-100", "LeNet-300-100", lambda a: _mlp([300, 100]), {},
        _adam(1.2e-3, 50_000), _LENET_PRUNING, "the lottery ticket paper's MLP (784-300-100-10 on MNIST)"),
    "lenet-5": FamilyInfo(
        "lenet-5", "LeNet-5", _lenet5, {}, _adam(1.2e-3, 50_000), _conv_pruning(0.1),
        "conv 6@5x5 (pad 2), pool, conv 16@5x5, pool, fc 120, 84, output"),
    "conv-2": FamilyInfo(
        "conv-2", "Conv-2", _conv_n([64, 64, "M"]), {}, _adam(2e-4, 20_000), _conv_pruning(0.1),
        "conv 64, 64, pool; fc 256, 256, output (3x3 convs, padding 1)"),
    "conv-4": FamilyInfo(
        "conv-4", "Conv-4", _conv_n([64, 64, "M", 128, 128, "M"]), {}, _adam(3e-4, 25_000), _conv_pruning(0.1),
        "conv 64, 64, pool, 128, 128, pool; fc 256, 256, output"),
    "conv-6": FamilyInfo(
        "conv-6", "Conv-6", _conv_n([64, 64, "M", 128, 128, "M", 256, 256, "M"]), {},
        _adam(3e-4, 30_000), _conv_pruning(0.15),
        "conv 64, 64, pool, 128, 128, pool, 256, 256, pool; fc 256, 256, output"),
    **{name: FamilyInfo(
        name, name.upper(), _vgg(plan), {}, _sgd(56_000, (28_000, 42_000), 10_000), _GLOBAL_PRUNING,
        "CIFAR VGG (open_lth): 3x3 conv+batchnorm+relu stacks, max pools, global average pool, output")
       for name, plan in _VGG_PLANS.items()},
    "resnet-20": FamilyInfo(
        "resnet-20", "ResNet-20", _resnet(20), {"width": 16}, _sgd(30_000, (20_000, 25_000), 20_000),
        _GLOBAL_PRUNING, "CIFAR ResNet-20 (open_lth): conv, 3 segments of 3 basic blocks, global pool, output"),
}


def family_args_schema(name: str) -> dict[str, type]:
    """The args a family accepts and their types."""
    schemas: dict[str, dict[str, type]] = {"mlp": {"hidden": list}, "resnet-20": {"width": int}}
    return schemas.get(name, {})


# --- strict checking helpers -----------------------------------------------------------------------------


def _check_keys(obj: Mapping[str, Any], allowed: set[str] | Mapping[str, Any], where: str) -> None:
    for key in obj:
        if not isinstance(key, str) or key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise SpecError("unknown_field", f"{where}.{key}" if where else str(key),
                            f"unknown field {key!r} (allowed: {known})")


# --- resolve ----------------------------------------------------------------------------------------------


def architecture_layers(architecture: Any, where: str = "architecture") -> list[dict[str, Any]]:
    """The raw layer list of an architecture dict (a family expanded), checked for structure only.

    Family layer lists contain the placeholder :data:`OUTPUT` for the output width.
    """
    if not isinstance(architecture, Mapping):
        raise SpecError("wrong_type", where, f"expected an object with 'family' or 'layers', got "
                                             f"{type_name(architecture)}")
    if "layers" in architecture:
        _check_keys(architecture, {"layers"}, where)
        layers = architecture["layers"]
        if not isinstance(layers, list):
            raise SpecError("wrong_type", f"{where}.layers", f"expected a list of layers, got {type_name(layers)}")
        if not layers:
            raise SpecError("empty_architecture", f"{where}.layers", "the layer list is empty")
        if len(layers) > MAX_LAYERS:
            raise SpecError("too_many_layers", f"{where}.layers",
                            f"{len(layers)} layers is over the limit of {MAX_LAYERS}")
        return [dict(layer) if isinstance(layer, Mapping) else layer for layer in layers]
    if "family" not in architecture:
        raise SpecError("missing_field", f"{where}.family",
                        "an architecture needs 'family' (a registered family) or 'layers' (a list of layers)")
    _check_keys(architecture, {"family", "args"}, where)
    name = architecture["family"]
    if not isinstance(name, str) or name not in FAMILIES:
        raise SpecError("unknown_family", f"{where}.family",
                        f"unknown family {name!r:.60} (known: {', '.join(FAMILIES)})")
    args = architecture.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise SpecError("wrong_type", f"{where}.args", f"expected an object, got {type_name(args)}")
    schema = family_args_schema(name)
    _check_keys(args, schema, f"{where}.args")
    if "hidden" in args:
        hidden = args["hidden"]
        if not isinstance(hidden, list):
            raise SpecError("wrong_type", f"{where}.args.hidden", f"expected a list of integers, got "
                                                                 f"{type_name(hidden)}")
        if len(hidden) > MAX_LAYERS // 2 - 2:
            raise SpecError("too_many_layers", f"{where}.args.hidden", f"{len(hidden)} hidden layers is too many")
        for j, h in enumerate(hidden):
            check_int(h, f"{where}.args.hidden[{j}]", low=1, high=MAX_WIDTH)
    if "width" in args:
        check_int(args["width"], f"{where}.args.width", low=1, high=MAX_WIDTH // 4)
    return FAMILIES[name].layers(args)


def check_architecture(architecture: Any) -> None:
    """Every check that needs no task: structure, family and args, layer types, fields and their ranges.

    :func:`resolve` does these and the shape checks; ``format.TicketConfig`` runs this at parse time.
    """
    raw = architecture_layers(architecture)
    where = "architecture.layers" if isinstance(architecture, Mapping) and "layers" in architecture else \
        "architecture.family.layers"
    for i, layer in enumerate(raw):
        _canonical_layer(layer, f"{where}[{i}]", 1)


def resolve(architecture: Mapping[str, Any], input_shape: tuple[int, ...] | list[int], num_classes: int, *,
            max_parameters: int = DEFAULT_MAX_PARAMETERS, max_layers: int = MAX_LAYERS) -> ArchSpec:
    """Check and resolve an architecture for a task's input shape and number of classes.

    Raises :class:`~ticketclient.errors.SpecError` (a ``BundleError``) whose field names the culprit,
    e.g. ``architecture.layers[3].out_features``.
    """
    input_shape = tuple(int(d) for d in input_shape)
    num_classes = int(num_classes)
    raw = architecture_layers(architecture)
    where = "architecture.layers" if isinstance(architecture, Mapping) and "layers" in architecture else \
        "architecture.family.layers"
    if len(raw) > max_layers:
        raise SpecError("too_many_layers", "architecture",
                        f"{len(raw)} layers is over the limit of {max_layers}")
    layers: list[dict[str, Any]] = []
    tensors: dict[str, TensorSpec] = {}
    prunable: list[str] = []
    shapes: list[tuple[int, ...]] = []
    weight_macs: dict[str, int] = {}
    shape = input_shape
    output_layer = None
    params = 0
    for i, layer in enumerate(raw):
        at = f"{where}[{i}]"
        canonical = _canonical_layer(layer, at, num_classes)
        shape = _apply(canonical, i, shape, at, tensors, prunable, weight_macs)
        if canonical["type"] == "linear":
            output_layer = f"layers.{i}.weight"
        layers.append(canonical)
        shapes.append(shape)
        params = sum(t.size for t in tensors.values() if not t.buffer)
        if params > max_parameters:
            raise SpecError("too_many_parameters", at,
                            f"the architecture has over {max_parameters:,} parameters by this layer "
                            f"({params:,}); the limit is {max_parameters:,}")
    if shape != (num_classes,):
        raise SpecError("output_mismatch", f"{where}[{len(raw) - 1}]",
                        f"the last layer outputs shape {list(shape)}, but the task has {num_classes} classes "
                        f"(expected [{num_classes}])")
    if output_layer is None:
        raise SpecError("no_output_layer", where, "the architecture has no linear layer (the output layer)")
    return ArchSpec(layers=layers, input_shape=input_shape, num_classes=num_classes, tensors=tensors,
                    prunable=prunable, output_layer=output_layer, num_parameters=params, shapes=shapes,
                    weight_macs=weight_macs)


def _canonical_layer(layer: Any, at: str, num_classes: int) -> dict[str, Any]:
    if not isinstance(layer, Mapping):
        raise SpecError("wrong_type", at, f"expected a layer object, got {type_name(layer)}")
    kind = layer.get("type")
    if kind is None:
        raise SpecError("missing_field", f"{at}.type", "every layer needs a 'type'")
    if not isinstance(kind, str) or kind not in LAYER_FIELDS:
        raise SpecError("unknown_layer", f"{at}.type",
                        f"layer type {kind!r:.40} is not whitelisted (allowed: {', '.join(LAYER_TYPES)})")
    fields = LAYER_FIELDS[kind]
    _check_keys(layer, {"type", *fields}, at)
    out: dict[str, Any] = {"type": kind}
    for name, (typ, default) in fields.items():
        value = layer.get(name, default)
        if value is REQUIRED:
            raise SpecError("missing_field", f"{at}.{name}", f"a {kind} layer needs '{name}'")
        if value is None:
            continue  # inferred later (in_features, in_channels, num_features, pool stride)
        if value is OUTPUT:
            value = num_classes
        f = f"{at}.{name}"
        if typ is bool:
            if not isinstance(value, bool):
                raise SpecError("wrong_type", f, f"expected true or false, got {type_name(value)}")
        elif typ is float:
            value = check_float(value, f, low=0.0, high=1.0)
            if value >= 1.0:
                raise SpecError("out_of_range", f, f"dropout probability must be below 1, got {value}")
        elif name in ("out_features", "out_channels", "in_features", "in_channels", "num_features"):
            value = check_int(value, f, low=1, high=MAX_INPUT_FEATURES if name == "in_features" else MAX_WIDTH)
        elif name == "kernel_size":
            value = check_int(value, f, low=1, high=MAX_KERNEL)
        elif name == "stride":
            value = check_int(value, f, low=1, high=MAX_STRIDE)
        elif name == "padding":
            value = check_int(value, f, low=0, high=MAX_PADDING)
        out[name] = value
    if kind in ("maxpool2d", "avgpool2d") and "stride" not in out:
        out["stride"] = out["kernel_size"]
    return out


def _need(shape: tuple[int, ...], ndim: int, kind: str, at: str) -> None:
    if len(shape) != ndim:
        hint = " (add a flatten layer before it)" if ndim == 1 else " (it needs an image-shaped input [C, H, W])"
        raise SpecError("shape_error", f"{at}.type",
                        f"a {kind} layer needs a {ndim}-D input, but it receives shape {list(shape)}{hint}")


def _infer(out: dict[str, Any], key: str, value: int, at: str) -> None:
    given = out.get(key)
    if given is not None and given != value:
        raise SpecError("shape_error", f"{at}.{key}", f"{key} is {given} but the previous layer gives {value}")
    out[key] = value


def _conv_out(size: int, kernel: int, stride: int, padding: int, at: str, what: str) -> int:
    n = (size + 2 * padding - kernel) // stride + 1
    if n < 1:
        raise SpecError("shape_error", at, f"the {what} (kernel {kernel}, stride {stride}, padding {padding}) "
                                           f"does not fit an input of size {size}")
    return n


def _apply(layer: dict[str, Any], i: int, shape: tuple[int, ...], at: str, tensors: dict[str, TensorSpec],
           prunable: list[str], weight_macs: dict[str, int]) -> tuple[int, ...]:
    kind = layer["type"]
    p = f"layers.{i}."
    if kind == "flatten":
        return (math.prod(shape),)
    if kind in ("relu", "dropout"):
        return shape
    if kind == "linear":
        _need(shape, 1, kind, at)
        _infer(layer, "in_features", shape[0], at)
        out = layer["out_features"]
        tensors[p + "weight"] = TensorSpec((out, shape[0]), prunable=True)
        prunable.append(p + "weight")
        weight_macs[p + "weight"] = out * shape[0]
        if layer["bias"]:
            tensors[p + "bias"] = TensorSpec((out,))
        return (out,)
    if kind == "conv2d":
        _need(shape, 3, kind, at)
        c, h, w = shape
        _infer(layer, "in_channels", c, at)
        k, s, pad, out = layer["kernel_size"], layer["stride"], layer["padding"], layer["out_channels"]
        oh = _conv_out(h, k, s, pad, at, "convolution")
        ow = _conv_out(w, k, s, pad, at, "convolution")
        tensors[p + "weight"] = TensorSpec((out, c, k, k), prunable=True)
        prunable.append(p + "weight")
        weight_macs[p + "weight"] = out * c * k * k * oh * ow
        if layer["bias"]:
            tensors[p + "bias"] = TensorSpec((out,))
        return (out, oh, ow)
    if kind in ("batchnorm1d", "batchnorm2d"):
        _need(shape, 1 if kind == "batchnorm1d" else 3, kind, at)
        _infer(layer, "num_features", shape[0], at)
        _batchnorm(tensors, p, shape[0])
        return shape
    if kind in ("maxpool2d", "avgpool2d"):
        _need(shape, 3, kind, at)
        c, h, w = shape
        k, s = layer["kernel_size"], layer["stride"]
        return (c, _conv_out(h, k, s, 0, at, "pooling window"), _conv_out(w, k, s, 0, at, "pooling window"))
    if kind == "global_avgpool2d":
        _need(shape, 3, kind, at)
        return (shape[0],)
    if kind == "residual":
        _need(shape, 3, kind, at)
        c, h, w = shape
        _infer(layer, "in_channels", c, at)
        out, s = layer["out_channels"], layer["stride"]
        oh = _conv_out(h, 3, s, 1, at, "block's first convolution")
        ow = _conv_out(w, 3, s, 1, at, "block's first convolution")
        for name, shp in (("conv1.weight", (out, c, 3, 3)), ("conv2.weight", (out, out, 3, 3))):
            tensors[p + name] = TensorSpec(shp, prunable=True)
            prunable.append(p + name)
            weight_macs[p + name] = math.prod(shp) * oh * ow
            bn = "bn1." if name.startswith("conv1") else "bn2."
            _batchnorm(tensors, p + bn, out)
        if s != 1 or c != out:
            tensors[p + "shortcut.0.weight"] = TensorSpec((out, c, 1, 1), prunable=True)
            prunable.append(p + "shortcut.0.weight")
            weight_macs[p + "shortcut.0.weight"] = out * c * oh * ow
            _batchnorm(tensors, p + "shortcut.1.", out)
        return (out, oh, ow)
    raise SpecError("unknown_layer", f"{at}.type", f"layer type {kind!r} is not whitelisted")  # pragma: no cover


def _batchnorm(tensors: dict[str, TensorSpec], p: str, n: int) -> None:
    tensors[p + "weight"] = TensorSpec((n,))
    tensors[p + "bias"] = TensorSpec((n,))
    tensors[p + "running_mean"] = TensorSpec((n,), buffer=True)
    tensors[p + "running_var"] = TensorSpec((n,), buffer=True)
    tensors[p + "num_batches_tracked"] = TensorSpec((), dtype="I64", buffer=True)


def default_architecture(family: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"family": family, "args": {...}}`` with the family's default args filled in."""
    if family not in FAMILIES:
        raise SpecError("unknown_family", "architecture.family",
                        f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    return {"family": family, "args": {**FAMILIES[family].default_args, **dict(args or {})}}


__all__ = [
    "ArchSpec", "TensorSpec", "FamilyInfo", "PruningDefaults", "FAMILIES", "LAYER_FIELDS", "LAYER_TYPES", "PRUNABLE_TYPES",
    "resolve", "check_architecture", "architecture_layers", "default_architecture", "check_int", "check_float",
]
