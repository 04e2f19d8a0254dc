"""Models built from specs (every family) and their exact numpy round trip; init is seeded and documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ticketclient import models, pruning, spec
from ticketclient.errors import BundleError

FAMILY_INPUTS = {
    "mlp": (40,), "lenet-300-100": (1, 28, 28), "lenet-5": (1, 28, 28),
    "conv-2": (3, 32, 32), "conv-4": (3, 32, 32), "conv-6": (3, 32, 32),
    "vgg-11": (3, 32, 32), "vgg-16": (3, 32, 32), "vgg-19": (3, 32, 32), "resnet-20": (3, 32, 32),
}


def test_every_family_is_covered():
    assert set(FAMILY_INPUTS) == set(spec.FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILY_INPUTS))
def test_module_tensors_equal_the_spec(family):
    arch = spec.resolve({"family": family}, input_shape=FAMILY_INPUTS[family], num_classes=10)
    model = models.build_model(arch)
    state = model.state_dict()
    assert list(state) == list(arch.tensors) or set(state) == set(arch.tensors)
    for name, t in state.items():
        assert tuple(t.shape) == tuple(arch.tensors[name].shape), name
        assert (t.dtype == torch.int64) == (arch.tensors[name].dtype == "I64"), name
        assert (name in dict(model.named_buffers())) == arch.tensors[name].buffer, name
    assert sum(p.numel() for p in model.parameters()) == arch.num_parameters
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, *FAMILY_INPUTS[family]))
    assert tuple(out.shape) == (2, 10)


def test_custom_layer_list_with_every_layer_type():
    layers = [
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm2d"}, {"type": "relu"},
        {"type": "residual", "out_channels": 8, "stride": 2},
        {"type": "residual", "out_channels": 8},
        {"type": "avgpool2d", "kernel_size": 2}, {"type": "maxpool2d", "kernel_size": 2, "stride": 1},
        {"type": "global_avgpool2d"},
        {"type": "linear", "out_features": 6, "bias": False}, {"type": "batchnorm1d"}, {"type": "dropout", "p": 0.1},
        {"type": "linear", "out_features": 3},
    ]
    arch = spec.resolve({"layers": layers}, input_shape=(2, 12, 12), num_classes=3)
    model = models.build_model(arch)
    assert {n: tuple(t.shape) for n, t in model.state_dict().items()} == \
        {n: tuple(t.shape) for n, t in arch.tensors.items()}
    assert model(torch.randn(4, 2, 12, 12)).shape == (4, 3)


def _lenet(input_shape=(40,)):
    return spec.resolve({"family": "mlp", "args": {"hidden": [300, 100]}}, input_shape=input_shape, num_classes=10)


def test_init_is_seeded_documented_and_device_independent():
    arch = _lenet()
    a = models.to_numpy(models.init_weights(models.build_model(arch), 7))
    b = models.to_numpy(models.init_weights(models.build_model(arch), 7))
    c = models.to_numpy(models.init_weights(models.build_model(arch), 8))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["layers.1.weight"], c["layers.1.weight"])
    # biases are drawn too (PyTorch's default rule, from the seed), never left at zero or at torch's own draw
    for name, fan_in in (("layers.1.bias", 40), ("layers.3.bias", 300), ("layers.5.bias", 100)):
        bound = 1 / np.sqrt(fan_in)
        assert np.all(np.abs(a[name]) <= bound) and np.count_nonzero(a[name]) == a[name].size, name
        assert float(np.abs(a[name]).max()) > 0.5 * bound
    assert not np.array_equal(a["layers.1.bias"], c["layers.1.bias"])
    assert models.INIT_DESCRIPTION in pruning.REINIT_DESCRIPTION
    w = a["layers.3.weight"]  # 100 x 300: N(0, 2/300)
    assert abs(float(w.std()) - np.sqrt(2 / 300)) < 0.01 * np.sqrt(2 / 300) * 10
    assert abs(float(w.mean())) < 0.005


def test_init_resets_batchnorm():
    arch = spec.resolve({"family": "resnet-20", "args": {"width": 4}}, input_shape=(3, 8, 8), num_classes=10)
    model = models.build_model(arch)
    model(torch.randn(8, 3, 8, 8))  # training mode: running stats move
    models.init_weights(model, 0)
    state = models.to_numpy(model)
    assert np.all(state["layers.1.running_mean"] == 0) and np.all(state["layers.1.running_var"] == 1)
    assert int(state["layers.1.num_batches_tracked"]) == 0


def test_numpy_round_trip_is_exact_including_buffers():
    arch = spec.resolve({"family": "resnet-20", "args": {"width": 4}}, input_shape=(3, 8, 8), num_classes=10)
    source = models.init_weights(models.build_model(arch), 3)
    source(torch.randn(8, 3, 8, 8))
    tensors = models.to_numpy(source)
    assert tensors["layers.1.num_batches_tracked"].dtype == np.int64
    target = models.load_tensors(models.build_model(arch), tensors)
    for name, value in models.to_numpy(target).items():
        assert value.dtype == tensors[name].dtype
        np.testing.assert_array_equal(value, tensors[name])
    source.eval()
    target.eval()
    x = torch.randn(5, 3, 8, 8)
    assert torch.equal(source(x), target(x))


def test_load_tensors_names_what_is_wrong():
    arch = _lenet()
    tensors = models.to_numpy(models.build_model(arch))
    with pytest.raises(BundleError) as e:
        models.load_tensors(models.build_model(arch), {**tensors, "layers.1.weight": np.zeros((3, 3), np.float32)})
    assert e.value.code == "shape_mismatch" and e.value.field == "layers.1.weight"
    missing = dict(tensors)
    del missing["layers.3.bias"]
    with pytest.raises(BundleError) as e:
        models.load_tensors(models.build_model(arch), missing)
    assert e.value.code == "missing_tensor" and e.value.field == "layers.3.bias"
    with pytest.raises(BundleError) as e:
        models.load_tensors(models.build_model(arch), {**tensors, "layers.9.weight": np.zeros(1, np.float32)})
    assert e.value.code == "unknown_tensor"


def test_apply_mask_zeroes_exactly_the_pruned_weights():
    arch = _lenet()
    model = models.init_weights(models.build_model(arch), 0)
    before = models.to_numpy(model)
    rng = np.random.default_rng(0)
    mask = {n: rng.random(arch.tensors[n].shape) < 0.3 for n in arch.prunable}
    models.apply_mask(model, mask)
    after = models.to_numpy(model)
    for name in arch.tensors:
        if name in mask:
            assert not np.any(after[name][~mask[name]])
            np.testing.assert_array_equal(after[name][mask[name]], before[name][mask[name]])
        else:
            np.testing.assert_array_equal(after[name], before[name])
