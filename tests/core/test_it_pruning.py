"""Iterative magnitude pruning and the controls: densities follow the pruning formula, the smallest surviving
weights go, rewinding stores the right init, saved tickets rebuild the same masked model, and the controls
keep what they must keep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ticketclient import data, format, models, pruning, spec, training

LENET = {"family": "lenet-300-100"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mnist1d(tmp_path_factory) -> data.TaskData:
    return data.load("mnist1d", root=tmp_path_factory.mktemp("mnist1d")).subset(train=600, val=200, test=300)


def quick_recipe(**changes) -> format.Recipe:
    return format.Recipe.from_dict({"optimizer": "adam", "lr": 2e-3, "batch_size": 60, "iterations": 60,
                                    "eval_every": 20, **changes})


SMALL_MLP = {"family": "mlp", "args": {"hidden": [48, 24]}}


@pytest.fixture(scope="module")
def imp_run(mnist1d, tmp_path_factory):
    """One small IMP run (3 rounds, rewinding to iteration 5), saved to disk."""
    out = tmp_path_factory.mktemp("imp")
    torch.set_num_threads(1)
    bundles = pruning.find_ticket("mnist1d", SMALL_MLP, quick_recipe(), rounds=3, rewind_iteration=5, seed=4,
                                  out_dir=out, progress=False, data=mnist1d, device="cpu")
    return bundles, out


def _random_weights(arch, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(arch.tensors[n].shape).astype(np.float32) for n in arch.prunable}


def test_layerwise_density_follows_the_paper_formula_on_lenet():
    arch = spec.resolve(LENET, input_shape=(1, 28, 28), num_classes=10)
    assert arch.num_prunable == 266_200
    mask = pruning.dense_mask(arch)
    for k in range(1, 16):
        mask = pruning.prune(_random_weights(arch, k), mask, pruning.Layerwise(0.2, 0.1),
                             output_layer=arch.output_layer)
        expected = (265_200 * 0.8**k + 1_000 * 0.9**k) / 266_200
        density, per_layer = format.measure_density(mask)
        assert density == pytest.approx(expected, abs=3 / 266_200), k  # integer rounding, one weight per layer
        assert per_layer[arch.output_layer] == pytest.approx(0.9**k, abs=1e-3)
        if k in (3, 7, 9, 12, 15):
            print(f"k={k}: {density:.2%}")
    assert round(density * 100, 1) == 3.6  # the paper's 3.6% after 15 rounds


def test_prune_removes_the_smallest_surviving_weights_and_keeps_pruned_ones_pruned():
    w = np.array([[0.5, -0.1, 3.0, 0.05, -2.0], [1.0, 0.2, -0.3, 4.0, 0.0]], dtype=np.float32)
    mask = {"a": np.ones_like(w, dtype=bool)}
    mask["a"][1, 4] = False  # already pruned
    new = pruning.prune({"a": w}, mask, pruning.Layerwise(rate=0.34, output_rate=0.0))["a"]
    # 9 survivors, round(0.34 * 9) = 3 go: 0.05, -0.1, 0.2
    assert (~new).sum() == 4
    assert not new[0, 3] and not new[0, 1] and not new[1, 1] and not new[1, 4]
    assert new[1, 2]  # -0.3 survives
    output = pruning.prune({"a": w}, mask, pruning.Layerwise(rate=0.34, output_rate=0.0), output_layer="a")["a"]
    np.testing.assert_array_equal(output, mask["a"])  # the output layer at its own rate (0 here)


def test_global_pruning_uses_one_threshold_across_layers():
    arch = spec.resolve({"family": "mlp", "args": {"hidden": [30, 20]}}, input_shape=(40,), num_classes=10)
    weights = _random_weights(arch)
    weights["layers.3.weight"] *= 0.01  # a layer of small weights loses far more than 20%
    mask = pruning.prune(weights, pruning.dense_mask(arch), pruning.Global(0.2))
    kept = np.concatenate([np.abs(weights[n][mask[n]]) for n in arch.prunable])
    gone = np.concatenate([np.abs(weights[n][~mask[n]]) for n in arch.prunable])
    assert gone.max() <= kept.min()
    assert gone.size == round(0.2 * arch.num_prunable)
    densities = format.measure_density(mask)[1]
    assert densities["layers.3.weight"] < 0.5 < densities["layers.1.weight"]
    again = pruning.prune(weights, mask, pruning.Global(0.2))
    assert format.measure_density(again)[0] == pytest.approx(0.64, abs=2 / arch.num_prunable)


def test_global_pruning_can_leave_linear_layers_dense():
    arch = spec.resolve({"family": "conv-2"}, input_shape=(3, 32, 32), num_classes=10)
    mask = pruning.prune(_random_weights(arch), pruning.dense_mask(arch), pruning.Global(0.2, prune_linear=False))
    per_layer = format.measure_density(mask)[1]
    convs = [n for n in arch.prunable if len(arch.tensors[n].shape) == 4]
    assert all(per_layer[n] == 1.0 for n in arch.prunable if n not in convs)
    total = sum(arch.tensors[n].size for n in convs)
    assert sum(int(mask[n].sum()) for n in convs) == total - round(0.2 * total)


def test_strategies_from_family_defaults():
    assert pruning.strategy_from_dict(spec.FAMILIES["lenet-300-100"].default_pruning) == pruning.Layerwise(0.2, 0.1)
    conv6 = pruning.strategy_from_dict(spec.FAMILIES["conv-6"].default_pruning)
    assert conv6 == pruning.Layerwise(rate=0.2, output_rate=0.1, conv_rate=0.15)
    assert pruning.strategy_from_dict(spec.FAMILIES["resnet-20"].default_pruning) == pruning.Global(0.2, False)
    arch = spec.resolve({"family": "conv-6"}, input_shape=(3, 32, 32), num_classes=10)
    per_layer = format.measure_density(pruning.prune(_random_weights(arch), pruning.dense_mask(arch), conv6,
                                                     output_layer=arch.output_layer))[1]
    assert per_layer["layers.0.weight"] == pytest.approx(0.85, abs=1e-3)
    assert per_layer[arch.output_layer] == pytest.approx(0.9, abs=1e-2)
    assert per_layer[[n for n in arch.prunable if n != arch.output_layer][-1]] == pytest.approx(0.8, abs=1e-3)


def test_find_ticket_rounds_claims_and_provenance(imp_run):
    bundles, out = imp_run
    assert len(bundles) == 3
    arch = spec.resolve(SMALL_MLP, input_shape=(40,), num_classes=10)
    for k, bundle in enumerate(bundles, start=1):
        assert sorted(p.name for p in (out / f"round-{k}").iterdir()) == sorted(format.BUNDLE_FILES)
        per_layer = bundle.layer_densities
        for name in arch.prunable:
            expected = 0.9**k if name == arch.output_layer else 0.8**k
            assert per_layer[name] == pytest.approx(expected, abs=2 / arch.tensors[name].size + 1e-3), (k, name)
        p = bundle.config.provenance
        assert (p.method, p.rounds, p.strategy, p.rewind_iteration, p.seed) == ("imp", k, "layerwise", 5, 4)
        assert p.rates == {"default": 0.2, "output": 0.1}
        assert p.dense_test_accuracy == bundles[0].config.provenance.dense_test_accuracy
        assert bundle.config.recipe.rewind_iteration == 5
        assert set(bundle.init) == set(arch.tensors) and set(bundle.mask) == set(arch.prunable)
        assert all(m.dtype == np.bool_ for m in bundle.mask.values())
    masks = [b.mask for b in bundles]
    for earlier, later in zip(masks, masks[1:], strict=False):  # pruned weights never come back
        assert all(not np.any(later[n] & ~earlier[n]) for n in earlier)


def test_a_saved_ticket_rebuilds_the_same_masked_model_and_reproduces_its_claim(imp_run, mnist1d):
    bundles, out = imp_run
    loaded = format.TicketBundle.load(out / "round-3")
    original = bundles[-1]
    arch = loaded.config.resolve()

    def masked_model(bundle):
        model = models.load_tensors(models.build_model(arch), bundle.init)
        return models.apply_mask(model, bundle.mask).eval()

    x = torch.from_numpy(mnist1d.x_test[:64])
    with torch.no_grad():
        assert torch.equal(masked_model(original)(x), masked_model(loaded)(x))
    model = models.load_tensors(models.build_model(arch), loaded.init)
    result = training.train(model, loaded.mask, mnist1d, loaded.config.recipe, seed=4, progress=False, device="cpu")
    assert result.early_stop_iteration == loaded.config.claims.early_stop_iteration
    # the claim is the median of 3 trainings: the round's own (seed 4) and two more with their own seeds
    claims = loaded.config.claims
    assert claims.runs == 3
    others = []
    for j in (1, 2):
        m = models.load_tensors(models.build_model(arch), loaded.init)
        others.append(training.train(m, loaded.mask, mnist1d, loaded.config.recipe, seed=4 + j * pruning.CLAIM_SEED_STRIDE,
                                     progress=False, device="cpu").final_test_accuracy)
    assert claims.test_accuracy == pytest.approx(sorted([result.final_test_accuracy, *others])[1], abs=1e-9)


def test_a_one_run_claim_is_that_run(mnist1d):
    bundles = pruning.find_ticket("mnist1d", SMALL_MLP, quick_recipe(), rounds=1, seed=4, progress=False,
                                  data=mnist1d, device="cpu", claim_runs=1)
    claims = bundles[0].config.claims
    assert claims.runs is None
    arch = bundles[0].config.resolve()
    model = models.load_tensors(models.build_model(arch), bundles[0].init)
    result = training.train(model, bundles[0].mask, mnist1d, bundles[0].config.recipe, seed=4, progress=False,
                            device="cpu")
    assert result.final_test_accuracy == claims.test_accuracy


def test_rewinding_stores_the_dense_weights_after_k_steps(imp_run, mnist1d):
    bundles, _ = imp_run
    arch = spec.resolve(SMALL_MLP, input_shape=(40,), num_classes=10)
    model = models.init_weights(models.build_model(arch), 4)
    theta_0 = models.to_numpy(model)
    training.train(model, None, mnist1d, quick_recipe(), seed=4, progress=False, device="cpu", max_iterations=5)
    theta_5 = models.to_numpy(model)
    for name in arch.tensors:
        np.testing.assert_array_equal(bundles[0].init[name], theta_5[name])
    assert not np.array_equal(theta_5["layers.1.weight"], theta_0["layers.1.weight"])


def test_iteration_zero_rewind_is_the_documented_init(mnist1d):
    bundles = pruning.find_ticket("mnist1d", SMALL_MLP, quick_recipe(iterations=20, eval_every=10), rounds=1,
                                  strategy=pruning.Global(0.5), seed=2, progress=False, data=mnist1d, device="cpu")
    arch = spec.resolve(SMALL_MLP, input_shape=(40,), num_classes=10)
    theta_0 = models.to_numpy(models.init_weights(models.build_model(arch), 2))
    for name, value in theta_0.items():
        np.testing.assert_array_equal(bundles[0].init[name], value)
    assert bundles[0].density == pytest.approx(0.5, abs=1e-4)
    assert bundles[0].config.provenance.strategy == "global"


def test_reinit_control_same_mask_fresh_init(imp_run):
    ticket = imp_run[0][-1]
    control = pruning.reinit_control(ticket, seed=11)
    assert control.layer_densities == ticket.layer_densities
    for name in ticket.mask:
        np.testing.assert_array_equal(control.mask[name], ticket.mask[name])
    assert set(control.init) == set(ticket.init)
    assert not np.array_equal(control.init["layers.1.weight"], ticket.init["layers.1.weight"])
    again = pruning.reinit_control(ticket, seed=11)
    for name in control.init:
        np.testing.assert_array_equal(control.init[name], again.init[name])


def test_reinit_control_is_a_fresh_network_drawn_like_imps_init_biases_included(imp_run, mnist1d):
    """Issue 11: the reinit control zeroed every bias; it is now exactly a new network's init (theta_0 of IMP)."""
    ticket = imp_run[0][-1]
    arch = ticket.config.resolve()
    control = pruning.reinit_control(ticket, seed=11)
    fresh = models.to_numpy(models.init_weights(models.build_model(arch), 11))
    assert set(control.init) == set(fresh)
    for name, value in fresh.items():
        np.testing.assert_array_equal(control.init[name], value)
    for name in arch.tensors:
        if name.endswith(".bias"):
            assert np.count_nonzero(control.init[name]) == control.init[name].size, name
            assert not np.array_equal(control.init[name], ticket.init[name]), name
    # the same function drew IMP's dense network: find_ticket's theta_0 with seed s == reinit with seed s
    theta_0 = pruning.find_ticket("mnist1d", SMALL_MLP, quick_recipe(iterations=2, eval_every=2), rounds=1, seed=11,
                                  progress=False, data=mnist1d, device="cpu")[0].init
    for name, value in theta_0.items():
        np.testing.assert_array_equal(control.init[name], value)


def test_random_mask_control_keeps_exact_per_layer_counts():
    """Every layer keeps exactly the ticket's number of weights, also for odd counts, empty and full layers."""
    from ticketclient import format as fmt

    arch = spec.resolve(SMALL_MLP, input_shape=(40,), num_classes=10)
    rng = np.random.default_rng(0)
    names = arch.prunable
    mask = {names[0]: rng.random(arch.tensors[names[0]].shape) < 0.013,
            names[1]: np.zeros(arch.tensors[names[1]].shape, dtype=bool),
            names[2]: np.ones(arch.tensors[names[2]].shape, dtype=bool)}
    mask[names[1]][3, 5] = True
    config = fmt.TicketConfig.from_json({"format": "lottery-ticket/v1", "task": "mnist1d", "architecture": SMALL_MLP,
                                         "recipe": quick_recipe().to_dict(), "claims": {"test_accuracy": 0.5}})
    ticket = fmt.TicketBundle(config=config, init=models.fresh_init(arch, 0), mask=mask)
    counts = set()
    for seed in range(20):
        control = pruning.random_mask_control(ticket, seed)
        for name, m in mask.items():
            assert int(np.count_nonzero(control.mask[name])) == int(np.count_nonzero(m)), (seed, name)
        counts.add(tuple(np.flatnonzero(control.mask[names[1]])))
        np.testing.assert_array_equal(control.mask[names[2]], mask[names[2]])
    assert len(counts) > 10  # the one kept weight of layer 2 moves with the seed


def test_random_mask_control_keeps_per_layer_density_and_init(imp_run):
    ticket = imp_run[0][-1]
    control = pruning.random_mask_control(ticket, seed=3)
    for name, m in ticket.mask.items():
        assert int(control.mask[name].sum()) == int(m.sum())
        assert control.mask[name].shape == m.shape and control.mask[name].dtype == np.bool_
        assert not np.array_equal(control.mask[name], m)
    for name in ticket.init:
        np.testing.assert_array_equal(control.init[name], ticket.init[name])
    other = pruning.random_mask_control(ticket, seed=4)
    assert not np.array_equal(other.mask["layers.1.weight"], control.mask["layers.1.weight"])


def test_supermask_accuracy_is_the_untrained_masked_init_on_test(imp_run, mnist1d):
    ticket = imp_run[0][-1]
    arch = ticket.config.resolve()
    model = models.apply_mask(models.load_tensors(models.build_model(arch), ticket.init), ticket.mask).eval()
    with torch.no_grad():
        predictions = model(torch.from_numpy(mnist1d.x_test)).argmax(1).numpy()
    expected = float((predictions == mnist1d.y_test).mean())
    assert pruning.supermask_accuracy(ticket, mnist1d, device="cpu") == pytest.approx(expected)


def test_find_ticket_rejects_bad_arguments(mnist1d):
    with pytest.raises(ValueError, match="rounds"):
        pruning.find_ticket("mnist1d", SMALL_MLP, quick_recipe(), rounds=0, data=mnist1d)
    with pytest.raises(ValueError, match="rewind_iteration"):
        pruning.find_ticket("mnist1d", SMALL_MLP, quick_recipe(), rounds=1, rewind_iteration=60, data=mnist1d)
    with pytest.raises(ValueError, match="rate"):
        pruning.prune({"a": np.ones(3)}, {"a": np.ones(3, bool)}, pruning.Layerwise(rate=1.5))


def test_find_ticket_accepts_a_resolved_spec_and_shows_progress(mnist1d, capsys):
    arch = spec.resolve(SMALL_MLP, input_shape=(40,), num_classes=10)
    bundles = pruning.find_ticket("mnist1d", arch, quick_recipe(iterations=10, eval_every=10), rounds=1, seed=0,
                                  progress=True, data=mnist1d, device="cpu")
    assert bundles[0].config.resolve().tensors == arch.tensors
    assert "IMP" in capsys.readouterr().err
