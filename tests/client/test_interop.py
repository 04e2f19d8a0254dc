"""Masks round-trip through torch.nn.utils.prune's weight_orig / weight_mask layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ticketclient import interop
from ticketclient.errors import BundleError
from torch import nn
from torch.nn.utils import prune


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def ticket_arrays(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    torch.manual_seed(seed)
    net = Net()
    tensors = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    rng = np.random.default_rng(seed)
    mask = {name: rng.random(tensors[name].shape) < 0.4 for name in ("layers.0.weight", "layers.2.weight")}
    return tensors, mask


def test_apply_prune_masks_reparametrises_like_prune() -> None:
    tensors, mask = ticket_arrays()
    net = Net()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    interop.apply_prune_masks(net, mask)

    assert prune.is_pruned(net)
    state = net.state_dict()
    assert {"layers.0.weight_orig", "layers.0.weight_mask", "layers.2.weight_orig", "layers.2.weight_mask"} <= set(state)
    assert state["layers.0.weight_mask"].dtype == torch.float32
    np.testing.assert_array_equal(state["layers.0.weight_mask"].numpy() != 0, mask["layers.0.weight"])
    # the effective weight is the masked one, and the forward pass uses it
    np.testing.assert_array_equal(net.layers[0].weight.detach().numpy(),
                                  np.where(mask["layers.0.weight"], tensors["layers.0.weight"], 0))
    x = torch.randn(4, 6)
    manual = torch.relu(x @ torch.from_numpy(np.where(mask["layers.0.weight"], tensors["layers.0.weight"], 0)).T
                        + torch.from_numpy(tensors["layers.0.bias"]))
    manual = manual @ torch.from_numpy(np.where(mask["layers.2.weight"], tensors["layers.2.weight"], 0)).T \
        + torch.from_numpy(tensors["layers.2.bias"])
    torch.testing.assert_close(net(x), manual)

    back = interop.masks_from_pruned_model(net)
    assert set(back) == set(mask)
    for name in mask:
        np.testing.assert_array_equal(back[name], mask[name])


def test_state_dict_round_trip_loads_into_a_pruned_module() -> None:
    tensors, mask = ticket_arrays(1)
    state = interop.to_prune_state_dict(tensors, mask)
    assert "layers.0.weight" not in state and "layers.0.bias" in state

    target = Net()
    prune.identity(target.layers[0], "weight")
    prune.identity(target.layers[2], "weight")
    target.load_state_dict(state)
    np.testing.assert_array_equal(interop.masks_from_pruned_model(target)["layers.2.weight"], mask["layers.2.weight"])
    prune.remove(target.layers[0], "weight")
    assert np.all(target.layers[0].weight.detach().numpy()[~mask["layers.0.weight"]] == 0)

    tensors_back, mask_back = interop.from_prune_state_dict(state)
    assert set(tensors_back) == set(tensors) and set(mask_back) == set(mask)
    for name in tensors:
        np.testing.assert_array_equal(tensors_back[name], tensors[name])  # init stays unmasked
    for name in mask:
        assert mask_back[name].dtype == bool
        np.testing.assert_array_equal(mask_back[name], mask[name])


def test_import_rejects_unpaired_or_non_binary_masks() -> None:
    tensors, mask = ticket_arrays(2)
    state = interop.to_prune_state_dict(tensors, mask)
    lonely = dict(state)
    del lonely["layers.0.weight_mask"]
    with pytest.raises(BundleError) as info:
        interop.from_prune_state_dict(lonely)
    assert info.value.code == "missing_mask"

    bad = dict(state)
    bad["layers.2.weight_mask"] = bad["layers.2.weight_mask"] * 0.5
    with pytest.raises(BundleError) as info:
        interop.from_prune_state_dict(bad)
    assert info.value.code == "mask_not_boolean"


def test_apply_rejects_a_mask_of_the_wrong_shape() -> None:
    with pytest.raises(BundleError) as info:
        interop.apply_prune_masks(Net(), {"layers.0.weight": np.ones((6, 5), dtype=bool)})
    assert info.value.code == "shape_mismatch" and info.value.field == "layers.0.weight"
