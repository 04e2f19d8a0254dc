"""``find_ticket`` without a strategy prunes as the family registered (``spec.FAMILIES[...].default_pruning``):
layer-wise with per-type rates for LeNet and Conv nets, global over the convolutions for VGG and ResNet; an
architecture given as a layer list needs a recipe (a typed error before any training)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import ticketclient
from ticketclient import cli, data, pruning, spec
from ticketclient.errors import RecipeRequiredError

TINY = dataclasses.replace(spec.FAMILIES["conv-2"].recipe, iterations=2, eval_every=2, batch_size=16)


@pytest.fixture(scope="module")
def digits() -> data.TaskData:
    return data.load("digits")


def _one_round(architecture: dict[str, object], task_data: data.TaskData) -> ticketclient.format.TicketBundle:
    [bundle] = pruning.find_ticket("digits", architecture, TINY, rounds=1, seed=0, progress=False, data=task_data,
                                   device="cpu", claim_runs=1)
    return bundle


def test_the_registered_defaults_are_what_the_issue_says() -> None:
    assert pruning.default_strategy({"family": "lenet-300-100"}) == pruning.Layerwise(0.2, 0.1)
    assert pruning.default_strategy({"family": "conv-6"}) == pruning.Layerwise(0.2, 0.1, conv_rate=0.15)
    assert pruning.default_strategy({"family": "vgg-16"}) == pruning.Global(0.2, prune_linear=False)
    assert pruning.default_strategy({"family": "resnet-20"}) == pruning.Global(0.2, prune_linear=False)
    assert pruning.default_strategy({"layers": [{"type": "flatten"}]}) == pruning.Layerwise(0.2, 0.1)
    assert ticketclient.default_strategy({"family": "conv-2"}) == pruning.default_strategy({"family": "conv-2"})


def test_a_conv_net_is_pruned_layer_wise_with_its_per_type_rates(digits: data.TaskData) -> None:
    bundle = _one_round({"family": "conv-2", "args": {}}, digits)
    provenance = bundle.config.provenance
    assert provenance is not None and provenance.strategy == "layerwise"
    assert provenance.rates == {"default": 0.2, "output": 0.1, "conv": 0.1}
    density = bundle.layer_densities
    arch = bundle.config.resolve()
    convs = [n for n in arch.prunable if len(arch.tensors[n].shape) == 4]
    hidden = [n for n in arch.prunable if len(arch.tensors[n].shape) == 2 and n != arch.output_layer]
    assert convs and hidden
    assert all(density[n] == pytest.approx(0.9, abs=0.01) for n in convs)
    assert all(density[n] == pytest.approx(0.8, abs=0.01) for n in hidden)
    assert density[arch.output_layer] == pytest.approx(0.9, abs=0.01)


def test_a_resnet_is_pruned_globally_over_its_convolutions(digits: data.TaskData) -> None:
    bundle = _one_round({"family": "resnet-20", "args": {"width": 4}}, digits)
    provenance = bundle.config.provenance
    assert provenance is not None and provenance.strategy == "global"
    assert provenance.rates == {"default": 0.2, "linear": 0.0}
    arch = bundle.config.resolve()
    assert bundle.layer_densities[arch.output_layer] == 1.0  # fully connected weights stay dense
    convs = [n for n in arch.prunable if n != arch.output_layer]
    kept = sum(int(np.count_nonzero(bundle.mask[n])) for n in convs)
    total = sum(bundle.mask[n].size for n in convs)
    assert kept / total == pytest.approx(0.8, abs=0.001)  # one threshold over every convolution
    assert len({round(bundle.layer_densities[n], 3) for n in convs}) > 1  # ... not 20% of each


def test_a_layer_list_without_a_recipe_is_a_typed_error_before_any_training(monkeypatch) -> None:
    monkeypatch.setattr(pruning.training, "train", lambda *a, **k: pytest.fail("trained without a recipe"))
    layers = {"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]}
    with pytest.raises(RecipeRequiredError, match="layer list has no default recipe"):
        pruning.find_ticket("mnist1d", layers, None, rounds=1, progress=False)
    with pytest.raises(RecipeRequiredError, match="pass recipe="):
        ticketclient.find("mnist1d", layers, rounds=1, progress=False)
    assert issubclass(RecipeRequiredError, ticketclient.errors.TicketError)


def test_ticket_find_with_a_layer_list_and_no_recipe_exits_2(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(pruning, "find_ticket", lambda *a, **k: pytest.fail("trained without a recipe"))
    layers = '{"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]}'
    assert cli.main(["find", "--task", "mnist1d", "--arch", layers, "--out", str(tmp_path / "o")]) == cli.EXIT_ERROR == 2
    err = capsys.readouterr().err
    assert "layer list has no default recipe: pass --recipe" in err and "Traceback" not in err
