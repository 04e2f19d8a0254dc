"""Architecture specs: the families' sizes match the papers, names match torch, untrusted specs are refused."""

from __future__ import annotations

import math

import pytest
from ticketclient import spec
from ticketclient.errors import BundleError, SpecError

MNIST = ((1, 28, 28), 10)
CIFAR = ((3, 32, 32), 10)


@pytest.mark.parametrize(("family", "task", "params", "prunable", "n_prunable"), [
    ("lenet-300-100", MNIST, 266_610, 266_200, 3),   # the paper's 266K weights (784-300-100-10)
    ("mlp", MNIST, 266_610, 266_200, 3),
    ("lenet-5", MNIST, 61_706, 61_470, 5),
    ("conv-2", CIFAR, 4_301_642, 4_300_992, 5),      # the paper's 4.3M
    ("conv-4", CIFAR, 2_425_930, 2_425_024, 7),      # 2.4M
    ("conv-6", CIFAR, 2_262_602, 2_261_184, 9),
    ("vgg-11", CIFAR, 9_231_114, 9_222_848, 9),
    ("vgg-16", CIFAR, 14_728_266, 14_715_584, 14),
    ("vgg-19", CIFAR, 20_040_522, 20_024_000, 17),   # the paper's 20M
    ("resnet-20", CIFAR, 272_474, 270_896, 22),      # 0.27M: 19 convs, 2 shortcut convs, the output layer
])
def test_family_sizes(family, task, params, prunable, n_prunable):
    arch = spec.resolve({"family": family}, *task)
    assert arch.num_parameters == params
    assert arch.num_prunable == prunable
    assert len(arch.prunable) == n_prunable
    assert arch.output_layer == arch.prunable[-1]
    assert arch.tensors[arch.output_layer].shape[0] == 10
    assert arch.shapes[-1] == (10,)
    assert arch.num_parameters == sum(t.size for t in arch.tensors.values() if not t.buffer)


def test_lenet_tensor_names_shapes_and_macs():
    arch = spec.resolve({"family": "lenet-300-100"}, *MNIST)
    assert {n: t.shape for n, t in arch.tensors.items()} == {
        "layers.1.weight": (300, 784), "layers.1.bias": (300,),
        "layers.3.weight": (100, 300), "layers.3.bias": (100,),
        "layers.5.weight": (10, 100), "layers.5.bias": (10,),
    }
    assert arch.prunable == ["layers.1.weight", "layers.3.weight", "layers.5.weight"]
    assert arch.forward_macs == 266_200
    half = {n: 0.5 for n in arch.prunable}
    assert arch.sparse_macs(half) == 133_100
    table = arch.layer_table(half)
    assert [r["type"] for r in table] == ["flatten", "linear", "relu", "linear", "relu", "linear"]
    assert table[1] | {} == {**table[1], "params": 235_500, "macs": 235_200, "sparse_macs": 117_600,
                             "density": 0.5, "units": 300, "shape": [300]}


def test_layer_table_counts_surviving_units_from_masks():
    import numpy as np

    arch = spec.resolve({"family": "mlp", "args": {"hidden": [4]}}, (3,), 2)
    masks = {"layers.1.weight": np.array([[1, 0, 0], [0, 0, 0], [0, 1, 1], [0, 0, 0]], bool),
             "layers.3.weight": np.ones((2, 4), bool)}
    rows = arch.layer_table(masks=masks)
    assert rows[1]["surviving_units"] == 2 and rows[1]["units"] == 4
    assert rows[1]["density"] == pytest.approx(3 / 12)
    assert rows[3]["surviving_units"] == 2


def test_residual_block_names_follow_the_torch_module_layout():
    arch = spec.resolve({"family": "resnet-20", "args": {"width": 8}}, *CIFAR)
    assert arch.layers[6] == {"type": "residual", "out_channels": 16, "stride": 2, "in_channels": 8}
    names = [n for n in arch.tensors if n.startswith("layers.6.")]
    assert names == [
        "layers.6.conv1.weight", "layers.6.bn1.weight", "layers.6.bn1.bias", "layers.6.bn1.running_mean",
        "layers.6.bn1.running_var", "layers.6.bn1.num_batches_tracked",
        "layers.6.conv2.weight", "layers.6.bn2.weight", "layers.6.bn2.bias", "layers.6.bn2.running_mean",
        "layers.6.bn2.running_var", "layers.6.bn2.num_batches_tracked",
        "layers.6.shortcut.0.weight", "layers.6.shortcut.1.weight", "layers.6.shortcut.1.bias",
        "layers.6.shortcut.1.running_mean", "layers.6.shortcut.1.running_var",
        "layers.6.shortcut.1.num_batches_tracked",
    ]
    assert arch.tensors["layers.6.shortcut.0.weight"] == spec.TensorSpec((16, 8, 1, 1), "F32", True, False)
    assert arch.tensors["layers.6.bn1.num_batches_tracked"] == spec.TensorSpec((), "I64", False, True)
    assert not any(n.startswith("layers.5.shortcut") for n in arch.tensors)  # same shape: identity shortcut
    assert arch.shapes[6] == (16, 16, 16) and arch.shapes[9] == (32, 8, 8)


def test_canonical_layers_resolve_to_the_same_spec_and_pool_strides_default_to_the_kernel():
    arch = spec.resolve({"family": "conv-4"}, *CIFAR)
    again = spec.resolve(arch.to_dict(), *CIFAR)
    assert again.layers == arch.layers and again.tensors == arch.tensors
    pool = next(layer for layer in arch.layers if layer["type"] == "maxpool2d")
    assert pool == {"type": "maxpool2d", "kernel_size": 2, "stride": 2}
    assert arch.layers[0] == {"type": "conv2d", "out_channels": 64, "kernel_size": 3, "stride": 1, "padding": 1,
                              "bias": True, "in_channels": 3}


def test_family_args_change_the_layers():
    arch = spec.resolve({"family": "mlp", "args": {"hidden": [7, 5]}}, (40,), 10)
    assert [t.shape for n, t in arch.tensors.items() if n.endswith("weight")] == [(7, 40), (5, 7), (10, 5)]
    assert spec.resolve({"family": "resnet-20", "args": {"width": 4}}, *CIFAR).tensors["layers.0.weight"].shape \
        == (4, 3, 3, 3)
    assert spec.FAMILIES["vgg-16"].default_pruning == {"strategy": "global", "rates": {"default": 0.2, "linear": 0.0}}
    assert spec.FAMILIES["conv-6"].default_pruning["rates"] == {"conv": 0.15, "linear": 0.2, "output": 0.1}
    assert spec.FAMILIES["lenet-300-100"].default_pruning["rates"] == {"default": 0.2, "output": 0.1}


def _layers(*layers):
    return {"layers": list(layers)}


LIN10 = {"type": "linear", "out_features": 10}
BAD_SPECS = [
    (_layers({"type": "lstm", "hidden_size": 8}), "unknown_layer", "architecture.layers[0].type"),
    (_layers({"out_features": 10}), "missing_field", "architecture.layers[0].type"),
    (_layers({"type": "linear"}), "missing_field", "architecture.layers[0].out_features"),
    (_layers({"type": "linear", "out_features": 10, "activation": "gelu"}), "unknown_field",
     "architecture.layers[0].activation"),
    (_layers({"type": "linear", "out_features": True}), "wrong_type", "architecture.layers[0].out_features"),
    (_layers({"type": "linear", "out_features": 10.0}), "wrong_type", "architecture.layers[0].out_features"),
    (_layers({"type": "linear", "out_features": "10"}), "wrong_type", "architecture.layers[0].out_features"),
    (_layers({"type": "linear", "out_features": 0}), "out_of_range", "architecture.layers[0].out_features"),
    (_layers({"type": "linear", "out_features": 10, "bias": 1}), "wrong_type", "architecture.layers[0].bias"),
    (_layers({"type": "dropout", "p": 1.0}, LIN10), "out_of_range", "architecture.layers[0].p"),
    (_layers({"type": "linear", "out_features": 10, "in_features": 41}), "shape_error",
     "architecture.layers[0].in_features"),
    (_layers({"type": "linear", "out_features": 12}), "output_mismatch", "architecture.layers[0]"),
    (_layers({"type": "conv2d", "out_channels": 4, "kernel_size": 3}, LIN10), "shape_error",
     "architecture.layers[0].type"),
    (_layers({"type": "relu"}), "output_mismatch", "architecture.layers[0]"),
    (_layers(LIN10, {"type": "relu"}, "linear"), "wrong_type", "architecture.layers[2]"),
    ({"layers": []}, "empty_architecture", "architecture.layers"),
    ({"layers": {"type": "linear"}}, "wrong_type", "architecture.layers"),
    ({"family": "mlp", "args": {"hidden": [32, True]}}, "wrong_type", "architecture.args.hidden[1]"),
    ({"family": "mlp", "args": {"hidden": 32}}, "wrong_type", "architecture.args.hidden"),
    ({"family": "lenet-300-100", "args": {"hidden": [3]}}, "unknown_field", "architecture.args.hidden"),
    ({"family": "resnet-20", "args": {"width": 2.5}}, "wrong_type", "architecture.args.width"),
    ({"family": "nope"}, "unknown_family", "architecture.family"),
    ({"family": 3}, "unknown_family", "architecture.family"),
    ({}, "missing_field", "architecture.family"),
    ([LIN10], "wrong_type", "architecture"),
]


@pytest.mark.parametrize(("architecture", "code", "field"), BAD_SPECS, ids=[f"{c}:{f}" for _, c, f in BAD_SPECS])
def test_invalid_specs_name_the_field(architecture, code, field):
    with pytest.raises(SpecError) as e:
        spec.resolve(architecture, (40,), 10)
    assert (e.value.code, e.value.field) == (code, field), e.value
    assert isinstance(e.value, BundleError)


def test_conv_geometry_errors():
    big_kernel = _layers({"type": "conv2d", "out_channels": 2, "kernel_size": 11}, {"type": "flatten"}, LIN10)
    with pytest.raises(SpecError, match="does not fit") as e:
        spec.resolve(big_kernel, (1, 8, 8), 10)
    assert e.value.field == "architecture.layers[0]"
    with pytest.raises(SpecError) as e:
        spec.resolve(_layers({"type": "conv2d", "out_channels": 2, "kernel_size": 12}), (1, 28, 28), 10)
    assert (e.value.code, e.value.field) == ("out_of_range", "architecture.layers[0].kernel_size")
    pools = [{"type": "maxpool2d", "kernel_size": 2}] * 6
    with pytest.raises(SpecError, match="pooling window"):
        spec.resolve(_layers(*pools, {"type": "flatten"}, LIN10), (1, 28, 28), 10)


def test_size_caps():
    with pytest.raises(SpecError) as e:
        spec.resolve({"family": "vgg-19"}, *CIFAR, max_parameters=10_000_000)
    assert e.value.code == "too_many_parameters" and "10,000,000" in e.value.message
    with pytest.raises(SpecError) as e:
        spec.resolve({"family": "vgg-19"}, *CIFAR, max_layers=20)
    assert e.value.code == "too_many_layers"
    with pytest.raises(SpecError) as e:
        spec.resolve({"layers": [{"type": "relu"}] * (spec.MAX_LAYERS + 1)}, (10,), 10)
    assert e.value.code == "too_many_layers"
    # parameters are counted as layers are added: a huge spec fails fast, before its later layers
    huge = _layers(*[{"type": "linear", "out_features": 16_384}] * 200, LIN10)
    with pytest.raises(SpecError) as e:
        spec.resolve(huge, (16_384,), 10)
    assert e.value.code == "too_many_parameters" and e.value.field == "architecture.layers[0]"


def test_every_layer_type_resolves_in_one_network():
    layers = [
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
        {"type": "batchnorm2d"}, {"type": "relu"},
        {"type": "avgpool2d", "kernel_size": 2},
        {"type": "residual", "out_channels": 8, "stride": 2},
        {"type": "maxpool2d", "kernel_size": 2, "stride": 1},
        {"type": "global_avgpool2d"},
        {"type": "dropout", "p": 0.25},
        {"type": "linear", "out_features": 6}, {"type": "batchnorm1d"}, {"type": "relu"},
        {"type": "flatten"}, {"type": "linear", "out_features": 3, "bias": False},
    ]
    arch = spec.resolve({"layers": layers}, (1, 16, 16), 3)
    assert {layer["type"] for layer in arch.layers} == set(spec.LAYER_TYPES)
    assert arch.shapes[3] == (4, 8, 8) and arch.shapes[4] == (8, 4, 4) and arch.shapes[5] == (8, 3, 3)
    assert arch.shapes[6] == (8,) and arch.shapes[-1] == (3,)
    assert "layers.0.bias" not in arch.tensors and "layers.12.bias" not in arch.tensors
    assert arch.layers[9]["num_features"] == 6
    assert arch.output_layer == "layers.12.weight"
    conv_macs = 4 * 1 * 9 * 16 * 16
    assert arch.weight_macs["layers.0.weight"] == conv_macs


def test_specs_build_in_torch_with_exactly_these_names():
    """The contract with ticketclient.models: a module built from the spec has exactly its tensors."""
    torch = pytest.importorskip("torch")
    models = pytest.importorskip("ticketclient.models")
    for family, task in [("lenet-5", MNIST), ("conv-2", CIFAR), ("vgg-11", CIFAR), ("mlp", ((40,), 10))]:
        arch = spec.resolve({"family": family}, *task)
        model = models.build_model(arch)
        state = model.state_dict()
        assert {n: tuple(t.shape) for n, t in state.items()} == {n: t.shape for n, t in arch.tensors.items()}
        out = model(torch.zeros(2, *task[0]))
        assert tuple(out.shape) == (2, 10)
    arch = spec.resolve({"family": "resnet-20", "args": {"width": 4}}, *CIFAR)
    model = models.build_model(arch)
    assert list(model.state_dict()) == list(arch.tensors)
    assert math.prod(model(torch.zeros(1, 3, 32, 32)).shape) == 10


def test_the_output_width_placeholder_is_not_expressible_in_json():
    with pytest.raises(SpecError) as e:
        spec.resolve(_layers({"type": "linear", "out_features": "num_classes"}), (40,), 10)
    assert e.value.code == "wrong_type"
