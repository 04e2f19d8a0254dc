"""The stacked engine trains K runs together with the semantics of ``training.train``, run by run, for every
field of the real ``format.Recipe``; whatever it cannot reproduce it declines, and the verifier's Engine then
trains sequentially."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ticketclient import format, models, spec, stacked, training, validation  # noqa: E402
from ticketclient.data import TaskData  # noqa: E402

IMAGE = (1, 8, 8)
MLP = {"family": "mlp", "args": {"hidden": [16]}}
CONV = {"layers": [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}, {"type": "relu"},
                   {"type": "maxpool2d", "kernel_size": 2}, {"type": "flatten"},
                   {"type": "linear", "out_features": 3}]}
BASE = {"optimizer": "adam", "lr": 3e-3, "batch_size": 24, "iterations": 40, "eval_every": 20}



@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """The test machine is shared: one torch thread (training.cpu_threads reads the variable)."""
    before = torch.get_num_threads()
    monkeypatch.setenv(training.TORCH_THREADS_ENV, "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: One case per field of format.Recipe: the base recipe with that field changed (and what it needs).
FIELD_CASES: dict[str, dict] = {
    "optimizer": {"optimizer": "sgd", "lr": 0.05},
    "lr": {"lr": 1e-2},
    "momentum": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    "betas": {"betas": [0.8, 0.95]},
    "weight_decay": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-3},
    "batch_size": {"batch_size": 17},
    "iterations": {"iterations": 33},
    "warmup_iterations": {"warmup_iterations": 10, "lr_schedule": "cosine"},
    "lr_schedule": {"lr_schedule": "cosine"},
    "milestones": {"lr_schedule": "step", "milestones": [10, 25]},
    "gamma": {"lr_schedule": "step", "milestones": [15], "gamma": 0.3},
    "rewind_iteration": {"rewind_iteration": 5},
    "eval_every": {"eval_every": 7},
    "augment": {"augment": "flip-crop"},
}


def test_every_recipe_field_has_a_case_and_is_known_to_the_stacked_engine():
    fields = {f.name for f in dataclasses.fields(format.Recipe)}
    assert set(FIELD_CASES) == fields
    assert set(stacked.RECIPE_FIELDS) == fields


def image_data(seed: int = 0) -> TaskData:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, *IMAGE))

    def split(m):
        y = rng.integers(0, 3, m)
        return (centers[y] + rng.normal(size=(m, *IMAGE))).astype(np.float32), y.astype(np.int64)

    return TaskData(*split(150), *split(60), *split(60), task="toy-images")


def arch_of(architecture: dict) -> spec.ArchSpec:
    return spec.resolve(architecture, input_shape=IMAGE, num_classes=3)


def run_state(arch, init_seed: int, mask_seed: int, density: float = 0.4):
    init = models.to_numpy(models.init_weights(models.build_model(arch), init_seed))
    rng = np.random.default_rng(mask_seed)
    mask = {n: rng.random(arch.tensors[n].shape) < density for n in arch.prunable}
    return init, mask


def assert_stacked_matches_sequential(arch, recipe, data, states) -> None:
    runs = [stacked.StackedRun(init=i, mask=m, seed=s) for i, m, s in states]
    together = stacked.train_stacked(arch, runs, data, recipe, device="cpu", return_state=True)
    for (init, mask, seed), got in zip(states, together, strict=True):
        model = models.load_tensors(models.build_model(arch), init)
        want = training.train(model, mask, data, recipe, seed=seed, device="cpu", progress=False)
        # the same weights, up to floating-point summation order; pruned weights exactly zero in both
        trained = models.to_numpy(model)
        assert set(got.snapshot) == set(trained)
        for name, weights in trained.items():
            np.testing.assert_allclose(got.snapshot[name], weights, rtol=1e-4, atol=1e-5, err_msg=name)
            if name in mask:
                assert not got.snapshot[name][~mask[name]].any()
                assert not weights[~mask[name]].any()
        assert [p["iteration"] for p in got.curve] == [p["iteration"] for p in want.curve]
        for a, b in zip(got.curve, want.curve, strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4, abs=1e-5)
            assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=1 / 60 + 1e-9)  # one example
        assert got.early_stop_iteration == want.early_stop_iteration
        assert got.iterations == want.iterations and got.seed == seed


@pytest.mark.parametrize("architecture", [MLP, CONV], ids=["mlp", "conv"])
@pytest.mark.parametrize("field", list(FIELD_CASES))
def test_stacked_runs_match_sequential_training_for_every_recipe_field(field, architecture):
    arch, data = arch_of(architecture), image_data()
    recipe = format.Recipe.from_dict({**BASE, **FIELD_CASES[field]})
    assert stacked.supports(arch, recipe)
    states = [(*run_state(arch, 1, 2), 0), (*run_state(arch, 1, 2), 1), (*run_state(arch, 7, 3), 2)]
    assert_stacked_matches_sequential(arch, recipe, data, states)


def test_flip_crop_changes_stacked_training():
    """The finding of issue 11: flip-crop used to be ignored by the stacked engine."""
    arch, data = arch_of(CONV), image_data()
    init, mask = run_state(arch, 1, 2)
    plain, augmented = (stacked.train_stacked(arch, [stacked.StackedRun(init, mask, 0)], data,
                                              format.Recipe.from_dict({**BASE, "augment": a}), device="cpu")[0]
                        for a in ("none", "flip-crop"))
    assert plain.curve[-1]["val_loss"] != augmented.curve[-1]["val_loss"]


def test_a_dense_run_next_to_masked_runs_matches_sequential_training():
    arch, data = arch_of(MLP), image_data(1)
    init, mask = run_state(arch, 3, 4, density=0.2)
    dense = {n: np.ones_like(m) for n, m in mask.items()}
    assert_stacked_matches_sequential(arch, format.Recipe.from_dict(BASE), data, [(init, mask, 0), (init, dense, 0)])


def test_stacked_keeps_pruned_weights_zero_and_seeds_distinct():
    arch, data = arch_of(MLP), image_data(1)
    init, mask = run_state(arch, 3, 4, density=0.2)
    results = stacked.train_stacked(arch, [stacked.StackedRun(init, mask, s) for s in (0, 1)], data,
                                    format.Recipe.from_dict(BASE), device="cpu", return_state=True)
    # different data orders give different curves from the same init and mask
    assert results[0].curve[-1]["val_loss"] != results[1].curve[-1]["val_loss"]
    for r in results:
        for name, m in mask.items():
            assert not r.snapshot[name][~m].any()


def test_dropout_and_unknown_recipe_values_are_declined_by_name():
    dropout = arch_of({"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 8},
                                  {"type": "dropout", "p": 0.5}, {"type": "linear", "out_features": 3}]})
    recipe = format.Recipe.from_dict(BASE)
    assert not stacked.supports(dropout) and not stacked.supports(dropout, recipe)
    with pytest.raises(ValueError, match="dropout"):
        stacked.train_stacked(dropout, [stacked.StackedRun({}, {}, 0)], image_data(), recipe)
    mlp = arch_of(MLP)
    assert stacked.supports(mlp, recipe)
    for change in ({"augment": "mixup"}, {"optimizer": "lamb"}, {"lr_schedule": "one-cycle"}):
        odd = dataclasses.replace(recipe, **change)
        assert not stacked.supports(mlp, odd)
        assert list(change.values())[0] in stacked.unsupported_reason(mlp, odd)


def _validated(architecture: dict, recipe: dict):
    from ticketclient import tasks

    info = tasks.get("mnist1d")
    arch = spec.resolve(architecture, input_shape=info.input_shape, num_classes=info.num_classes)
    init, mask = run_state(arch, 0, 0, density=0.5)
    config = format.TicketConfig.from_json({"format": "lottery-ticket/v1", "task": "mnist1d",
                                            "architecture": architecture, "recipe": recipe,
                                            "claims": {"test_accuracy": 0.5}})
    with tempfile.TemporaryDirectory() as tmp:
        format.TicketBundle(config=config, init=init, mask=mask).save(Path(tmp))
        return validation.validate_folder(Path(tmp))


def test_the_engine_falls_back_to_sequential_when_stacking_is_declined():
    from verifier.config import VerifierSettings
    from verifier.engine import Engine

    settings = VerifierSettings(stacked=True)
    recipe = {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "iterations": 10, "eval_every": 5}
    small = _validated({"family": "mlp", "args": {"hidden": [16]}}, recipe)
    assert Engine(small, task="mnist1d", device="cpu", settings=settings).name == "stacked"
    with_dropout = _validated({"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 16},
                                          {"type": "relu"}, {"type": "dropout", "p": 0.2},
                                          {"type": "linear", "out_features": 10}]}, recipe)
    assert Engine(with_dropout, task="mnist1d", device="cpu", settings=settings).name == "sequential"
    # a recipe value the stacked engine does not implement: the Engine must pass the recipe to supports()
    small.config = dataclasses.replace(small.config, recipe=dataclasses.replace(small.config.recipe,
                                                                                augment="mixup"))
    assert Engine(small, task="mnist1d", device="cpu", settings=settings).name == "sequential"


def test_lanes_follow_torch_threads_not_the_core_count(monkeypatch):
    """Issue 15: the lane count followed os.cpu_count() whatever the torch thread setting."""
    import os

    from verifier.config import VerifierSettings
    from verifier.engine import lane_count

    lenet = spec.resolve({"family": "mlp", "args": {"hidden": [300, 100]}}, input_shape=(40,), num_classes=10)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    torch.set_num_threads(1)
    assert lane_count("cpu", lenet, VerifierSettings(), 12) == 1
    torch.set_num_threads(2)
    assert lane_count("cpu", lenet, VerifierSettings(), 12) == 2
    assert lane_count("cpu", lenet, VerifierSettings(cpu_parallel_runs=3), 12) == 3
    assert lane_count("cuda", lenet, VerifierSettings(), 12) == 1
    tiny = spec.resolve({"family": "mlp", "args": {"hidden": [16]}}, input_shape=(40,), num_classes=10)
    assert lane_count("cpu", tiny, VerifierSettings(), 12) == 1


def test_stacking_is_chosen_from_the_network_size_on_a_cpu():
    from verifier.engine import STACK_MAX_FORWARD_MACS, use_stacking

    recipe = format.Recipe.from_dict(BASE)
    lenet = spec.resolve({"family": "mlp", "args": {"hidden": [300, 100]}}, input_shape=(40,), num_classes=10)
    wide = spec.resolve({"family": "mlp", "args": {"hidden": [1000, 1000]}}, input_shape=(40,), num_classes=10)
    assert lenet.forward_macs <= STACK_MAX_FORWARD_MACS < wide.forward_macs
    assert use_stacking("cpu", lenet, recipe, None)
    assert not use_stacking("cpu", wide, recipe, None)
    assert use_stacking("cuda", wide, recipe, None)
    assert use_stacking("cpu", wide, recipe, True) and not use_stacking("cpu", lenet, recipe, False)
    odd = dataclasses.replace(recipe, augment="mixup")
    assert not use_stacking("cpu", lenet, odd, True) and not use_stacking("cuda", lenet, odd, None)
