"""compact(): a smaller dense model that computes the same function as the masked one (eval mode)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from ticketclient import models, spec
from ticketclient.compact import compact, compact_arrays


def random_ticket(architecture: dict[str, Any], input_shape: tuple[int, ...], num_classes: int, *, density: float,
                  seed: int) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Random weights, non-zero biases and BN statistics, and a random mask of ``density``."""
    arch = spec.resolve(architecture, input_shape=input_shape, num_classes=num_classes)
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, t in arch.tensors.items():
        if name.endswith("num_batches_tracked"):
            tensors[name] = np.zeros(t.shape, dtype=np.int64)
        elif name.endswith("running_var"):
            tensors[name] = rng.uniform(0.5, 2.0, t.shape).astype(np.float32)
        else:
            tensors[name] = rng.normal(0, 0.5, t.shape).astype(np.float32)
    mask = {name: rng.random(arch.tensors[name].shape) < density for name in arch.prunable}
    return arch, tensors, mask


def masked_model(arch: Any, tensors: dict[str, np.ndarray], mask: dict[str, np.ndarray]) -> torch.nn.Module:
    model = models.build_model(arch)
    models.load_tensors(model, {k: np.where(mask[k], v, 0).astype(v.dtype) if k in mask else v
                                for k, v in tensors.items()})
    return model.eval()


def assert_same_function(arch, tensors, mask, input_shape, num_classes, architecture) -> Any:
    result = compact(architecture, tensors, mask, input_shape=input_shape, num_classes=num_classes)
    x = torch.randn(64, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = masked_model(arch, tensors, mask)(x)
        actual = result.model(x)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
    return result


def test_mlp_with_dead_units_compacts_to_fewer_parameters_and_same_outputs() -> None:
    architecture = {"family": "mlp", "args": {"hidden": [64, 32]}}
    arch, tensors, mask = random_ticket(architecture, (40,), 10, density=0.15, seed=0)
    first, second, out = arch.prunable
    mask[first][:20] = False          # 20 hidden units fed by nothing: constant relu(bias), folded forward
    mask[second][:, 20:30] = False    # 10 more read by nothing
    mask[out][:, :8] = False          # 8 units of the second hidden layer read by nothing
    result = assert_same_function(arch, tensors, mask, (40,), 10, architecture)

    assert len(result.removed[first]) >= 30
    assert len(result.removed[second]) >= 8
    assert result.params_after < result.params_before
    assert result.macs_after < result.macs_before
    assert result.nonzero_after <= result.nonzero_before
    assert "parameters" in result.summary()
    # the compact model's mask keeps exactly the surviving weights (it can be trained further, masked)
    small_weights = {k: v for k, v in result.tensors.items() if k in result.mask}
    for name, weights in small_weights.items():
        assert np.all(weights[~result.mask[name]] == 0)


def test_a_layer_with_every_unit_dead_still_computes_the_same_function() -> None:
    architecture = {"family": "mlp", "args": {"hidden": [16, 16]}}
    arch, tensors, mask = random_ticket(architecture, (40,), 10, density=0.5, seed=1)
    mask[arch.prunable[1]][:] = False  # the second hidden layer is fed by nothing: the output is constant
    result = assert_same_function(arch, tensors, mask, (40,), 10, architecture)
    assert result.params_after < result.params_before


def image_task() -> tuple[tuple[int, ...], int]:
    """An image-shaped input (small, so the test is fast)."""
    return (1, 12, 12), 10


@pytest.mark.parametrize("padding", [0, 1])
def test_conv_bn_pool_flatten_chain(padding: int) -> None:
    input_shape, num_classes = image_task()
    architecture = {"layers": [
        {"type": "conv2d", "out_channels": 12, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm2d"},
        {"type": "relu"},
        {"type": "conv2d", "out_channels": 10, "kernel_size": 3, "padding": padding},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "out_features": 24},
        {"type": "relu"},
        {"type": "linear", "out_features": num_classes},
    ]}
    arch, tensors, mask = random_ticket(architecture, input_shape, num_classes, density=0.3, seed=2)
    conv1, conv2, fc1, _ = arch.prunable
    mask[conv1][:4] = False            # 4 channels fed by nothing: a constant map after BN and ReLU
    mask[conv2][:, 4:6] = False        # 2 more channels of conv1 read by nothing
    mask[conv2][:3] = False            # 3 channels of conv2 fed by nothing (folded into the linear bias)
    tensors["layers.1.bias"][:4] = 3.0  # their constant is positive after BN and ReLU: it matters
    result = assert_same_function(arch, tensors, mask, input_shape, num_classes, architecture)
    removed_conv1 = set(result.removed.get(conv1, []))
    # with padding 0 the constant channels fold into conv2's bias; with zero padding the borders would
    # differ, so they must stay
    if padding == 0:
        assert set(range(6)) <= removed_conv1
    else:
        assert {4, 5} <= removed_conv1 and not removed_conv1 & {0, 1, 2, 3}
    assert {0, 1, 2} <= set(result.removed[conv2])
    assert result.params_after < result.params_before


def test_compact_arrays_leaves_its_inputs_alone() -> None:
    architecture = {"family": "mlp", "args": {"hidden": [8]}}
    arch, tensors, mask = random_ticket(architecture, (40,), 10, density=0.3, seed=3)
    mask[arch.prunable[0]][:3] = False
    before = {k: v.copy() for k, v in tensors.items()}
    compact_arrays(arch.layers, tensors, mask)
    for name in tensors:
        np.testing.assert_array_equal(tensors[name], before[name])
