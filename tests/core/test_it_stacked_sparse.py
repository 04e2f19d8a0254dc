"""The stacked engine's written-out MLP path (forward and backward by hand, sparse block-diagonal weights on the
CPU at low density) trains each run as training.train does, up to floating-point summation order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ticketclient import data, models, spec, stacked, training
from ticketclient.format import Recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPES = {
    "adam": dict(optimizer="adam", lr=3e-3),
    "adam-wd": dict(optimizer="adam", lr=3e-3, weight_decay=1e-3),
    "sgd-momentum-wd": dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4),
}


@pytest.fixture(scope="module")
def mnist1d(tmp_path_factory) -> data.TaskData:
    return data.load("mnist1d", root=tmp_path_factory.mktemp("mnist1d"))


def _arch(hidden: list[int]) -> spec.ArchSpec:
    return spec.resolve({"family": "mlp", "args": {"hidden": hidden}}, input_shape=(40,), num_classes=10)


def _runs(arch: spec.ArchSpec, densities: list[float]) -> list[stacked.StackedRun]:
    runs = []
    for i, density in enumerate(densities):
        rng = np.random.default_rng(10 + i)
        mask = {n: rng.random(arch.tensors[n].shape) < density for n in arch.prunable}
        init = models.to_numpy(models.init_weights(models.build_model(arch), i))
        runs.append(stacked.StackedRun(init=init, mask=mask, seed=i % 2))
    return runs


def _assert_matches_training(arch: spec.ArchSpec, runs: list[stacked.StackedRun], task: data.TaskData,
                             recipe: Recipe) -> None:
    together = stacked.train_stacked(arch, runs, task, recipe, device="cpu", return_state=True)
    for run, got in zip(runs, together, strict=True):
        model = models.load_tensors(models.build_model(arch), run.init)
        want = training.train(model, run.mask, task, recipe, seed=run.seed, device="cpu", progress=False)
        for name, weights in models.to_numpy(model).items():
            np.testing.assert_allclose(got.snapshot[name], weights, rtol=1e-4, atol=1e-5, err_msg=name)
            if name in run.mask:
                assert not got.snapshot[name][~run.mask[name]].any(), name
        assert [p["iteration"] for p in got.curve] == [p["iteration"] for p in want.curve]
        for a, b in zip(got.curve, want.curve, strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4, abs=1e-5)
            assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=2e-3)
        assert got.early_stop_iteration == want.early_stop_iteration


def test_low_density_weights_are_block_sparse_on_the_cpu_and_dense_ones_are_not():
    arch = _arch([64, 32])
    runs = _runs(arch, [0.05, 0.05, 0.5])
    params = {n: torch.stack([torch.as_tensor(r.init[n]) for r in runs]) for n in arch.tensors}
    masks = {n: torch.stack([torch.as_tensor(r.mask[n]) for r in runs]).float() for n in arch.prunable}
    recipe = Recipe(optimizer="adam")
    optimizer = training.MaskedOptimizer(list(params.values()), [params[n] for n in masks], list(masks.values()),
                                         recipe)
    mlp = stacked._StackedMLP(arch.layers, params, optimizer, len(runs), sparse=True)
    # (0.05 + 0.05 + 0.5) / 3 = 20% kept over the stack: above SPARSE_MAX_DENSITY, dense
    assert [layer.sparse is not None for layer in mlp.linears] == [False, False, False]
    runs = _runs(arch, [0.05, 0.05, 0.05])
    masks = {n: torch.stack([torch.as_tensor(r.mask[n]) for r in runs]).float() for n in arch.prunable}
    optimizer = training.MaskedOptimizer(list(params.values()), [params[n] for n in masks], list(masks.values()),
                                         recipe)
    mlp = stacked._StackedMLP(arch.layers, params, optimizer, len(runs), sparse=True)
    assert [layer.sparse is not None for layer in mlp.linears] == [True, True, True]
    assert not any(layer.sparse for layer in stacked._StackedMLP(arch.layers, params, optimizer, 3, sparse=False).linears)


@pytest.mark.parametrize("opt", list(RECIPES.values()), ids=list(RECIPES))
def test_sparse_stacked_runs_match_training_train(mnist1d, opt):
    arch = _arch([64, 32])
    recipe = Recipe.from_dict({**opt, "batch_size": 32, "iterations": 80, "eval_every": 20,
                               "lr_schedule": "cosine", "warmup_iterations": 10})
    _assert_matches_training(arch, _runs(arch, [0.05, 0.04, 0.06]), mnist1d, recipe)


def test_runs_of_different_densities_in_one_block_sparse_stack_match_training_train(mnist1d, monkeypatch):
    monkeypatch.setattr(stacked, "SPARSE_MAX_DENSITY", 0.5)  # a 30% run among 5% ones: one stack, block-sparse
    arch = _arch([48, 24])
    recipe = Recipe.from_dict({"optimizer": "adam", "lr": 3e-3, "batch_size": 32, "iterations": 60,
                               "eval_every": 30})
    runs = _runs(arch, [0.3, 0.05, 0.05, 0.05])
    assert stacked._density_groups(arch, runs, mnist1d, torch.device("cpu")) == [[0, 1, 2, 3]]
    _assert_matches_training(arch, runs, mnist1d, recipe)


def test_dense_runs_are_stacked_apart_from_sparse_ones_results_and_progress_in_order(mnist1d):
    arch = _arch([48, 24])
    recipe = Recipe.from_dict({"optimizer": "adam", "lr": 3e-3, "batch_size": 32, "iterations": 40,
                               "eval_every": 20})
    sparse = _runs(arch, [0.05, 0.05])
    dense = stacked.StackedRun(init=sparse[0].init, mask={n: np.ones(arch.tensors[n].shape, bool)
                                                          for n in arch.prunable}, seed=1)
    runs = [sparse[0], dense, sparse[1]]
    assert stacked._density_groups(arch, runs, mnist1d, torch.device("cpu")) == [[0, 2], [1]]
    assert stacked._density_groups(arch, runs, mnist1d, torch.device("meta")) == [[0, 1, 2]]
    seen: dict[int, list[int]] = {}
    results = stacked.train_stacked(arch, runs, mnist1d, recipe, device="cpu",
                                    on_eval=lambda i, point: seen.setdefault(i, []).append(point["iteration"]))
    assert seen == {0: [0, 20, 40], 1: [0, 20, 40], 2: [0, 20, 40]}
    assert [r.seed for r in results] == [0, 1, 1]
    _assert_matches_training(arch, runs, mnist1d, recipe)
