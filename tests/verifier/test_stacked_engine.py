"""The stacked engine trains K runs together with the semantics of ``training.train``, run by run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ticketclient import models, stacked, training  # noqa: E402
from ticketclient.data import TaskData  # noqa: E402


@dataclass(frozen=True)
class _Tensor:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class _Arch:
    """The parts of spec.ArchSpec that models.build_model and the engines read."""

    layers: list[dict]
    tensors: dict[str, _Tensor]
    prunable: list[str]


@dataclass(frozen=True)
class _Recipe:
    optimizer: str = "adam"
    lr: float = 0.003
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int = 32
    iterations: int = 60
    warmup_iterations: int = 5
    lr_schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    eval_every: int = 20
    augment: str = "none"


def mlp_arch(inputs: int = 12, hidden: int = 16, classes: int = 3) -> _Arch:
    layers = [{"type": "flatten"}, {"type": "linear", "out_features": hidden}, {"type": "relu"},
              {"type": "linear", "out_features": classes}]
    tensors = {"layers.1.weight": _Tensor((hidden, inputs)), "layers.1.bias": _Tensor((hidden,)),
               "layers.3.weight": _Tensor((classes, hidden)), "layers.3.bias": _Tensor((classes,))}
    return _Arch(layers, tensors, ["layers.1.weight", "layers.3.weight"])


def toy_data(seed: int = 0, n: int = 300) -> TaskData:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 12)) * 2

    def split(m):
        y = rng.integers(0, 3, m)
        return (centers[y] + rng.normal(size=(m, 12))).astype(np.float32), y.astype(np.int64)

    (xt, yt), (xv, yv), (xs, ys) = split(n), split(100), split(100)
    return TaskData(xt, yt, xv, yv, xs, ys, task="toy")


def run_state(arch, init_seed: int, mask_seed: int, density: float = 0.4):
    model = models.init_weights(models.build_model(arch), init_seed)
    init = models.to_numpy(model)
    rng = np.random.default_rng(mask_seed)
    mask = {n: rng.random(arch.tensors[n].shape) < density for n in arch.prunable}
    return init, mask


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_stacked_runs_match_sequential_training(optimizer):
    torch.set_num_threads(1)
    arch, data = mlp_arch(), toy_data()
    recipe = _Recipe(optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0,
                     lr=0.05 if optimizer == "sgd" else 0.003)
    states = [(*run_state(arch, 1, 2), 0), (*run_state(arch, 1, 2), 1), (*run_state(arch, 7, 3), 2)]
    runs = [stacked.StackedRun(init=i, mask=m, seed=s) for i, m, s in states]
    together = stacked.train_stacked(arch, runs, data, recipe, device="cpu", return_state=True)

    for (init, mask, seed), got in zip(states, together, strict=True):
        model = models.load_tensors(models.build_model(arch), init)
        want = training.train(model, mask, data, recipe, seed=seed, device="cpu", progress=False)
        # the same weights, up to floating-point summation order; pruned weights exactly zero in both
        trained = models.to_numpy(model)
        assert set(got.snapshot) == set(trained)
        for name, weights in trained.items():
            np.testing.assert_allclose(got.snapshot[name], weights, rtol=1e-4, atol=1e-5)
            if name in mask:
                assert not got.snapshot[name][~mask[name]].any()
        assert [p["iteration"] for p in got.curve] == [p["iteration"] for p in want.curve] == [0, 20, 40, 60]
        for a, b in zip(got.curve, want.curve, strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4, abs=1e-5)
            assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=0.011)  # one example of 100
        assert got.early_stop_iteration == want.early_stop_iteration
        assert got.iterations == want.iterations and got.seed == seed


def test_stacked_keeps_pruned_weights_zero_and_seeds_distinct():
    arch, data = mlp_arch(), toy_data(1)
    init, mask = run_state(arch, 3, 4, density=0.2)
    results = stacked.train_stacked(arch, [stacked.StackedRun(init, mask, s) for s in (0, 1)], data, _Recipe(),
                                    device="cpu")
    # different data orders give different curves from the same init and mask
    assert results[0].curve[-1]["val_loss"] != results[1].curve[-1]["val_loss"]


def test_unsupported_layers_are_refused_by_name():
    arch = _Arch([{"type": "flatten"}, {"type": "linear", "out_features": 3}, {"type": "dropout"}],
                 {"layers.1.weight": _Tensor((3, 12)), "layers.1.bias": _Tensor((3,))}, ["layers.1.weight"])
    assert not stacked.supports(arch)
    with pytest.raises(ValueError, match="dropout"):
        stacked.train_stacked(arch, [stacked.StackedRun({}, {}, 0)], toy_data(), _Recipe())


def test_stacked_conv_net_matches_sequential_training():
    """Convolutions are stacked too (vmap turns them into grouped convolutions)."""
    from ticketclient import spec

    torch.set_num_threads(1)
    arch = spec.resolve({"layers": [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
                                    {"type": "relu"}, {"type": "maxpool2d", "kernel_size": 2}, {"type": "flatten"},
                                    {"type": "linear", "out_features": 3}]},
                        input_shape=(1, 6, 6), num_classes=3)
    assert stacked.supports(arch)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 1, 6, 6))

    def split(m):
        y = rng.integers(0, 3, m)
        return (centers[y] + rng.normal(size=(m, 1, 6, 6))).astype(np.float32), y.astype(np.int64)

    data = TaskData(*split(200), *split(100), *split(100), task="toy-images")
    init = models.to_numpy(models.init_weights(models.build_model(arch), 5))
    mask = {n: rng.random(arch.tensors[n].shape) < 0.5 for n in arch.prunable}
    recipe = _Recipe(iterations=40)
    got = stacked.train_stacked(arch, [stacked.StackedRun(init, mask, 0), stacked.StackedRun(init, mask, 1)], data,
                                recipe, device="cpu")
    for seed, result in enumerate(got):
        want = training.train(models.load_tensors(models.build_model(arch), init), mask, data, recipe, seed=seed,
                              device="cpu", progress=False)
        for a, b in zip(result.curve, want.curve, strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4, abs=1e-5)
