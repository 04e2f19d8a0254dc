"""The masked training loop: pruned weights stay exactly zero, data order and results are fixed by the seed,
the learning-rate schedule and evaluation follow docs/ticket-format.md ("Recipe semantics")."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from ticketclient import data, models, spec, training
from ticketclient.format import Recipe

BASE = dict(optimizer="adam", lr=1.2e-3, momentum=0.0, betas=[0.9, 0.999], weight_decay=0.0, batch_size=60,
            iterations=120, warmup_iterations=0, lr_schedule="constant", milestones=[], gamma=0.1,
            rewind_iteration=0, eval_every=50, augment="none")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def recipe(**changes) -> Recipe:
    return Recipe.from_dict({**BASE, **changes})


@pytest.fixture(scope="module")
def mnist1d(tmp_path_factory) -> data.TaskData:
    return data.load("mnist1d", root=tmp_path_factory.mktemp("mnist1d"))


@pytest.fixture(scope="module")
def arch():
    return spec.resolve({"family": "mlp", "args": {"hidden": [64, 32]}}, input_shape=(40,), num_classes=10)


def _random_mask(arch, density: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.random(arch.tensors[n].shape) < density for n in arch.prunable}


def _model(arch, seed: int = 0) -> torch.nn.Module:
    return models.init_weights(models.build_model(arch), seed)


@pytest.mark.parametrize("opt", [dict(optimizer="adam", weight_decay=1e-3),
                                 dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4)])
def test_pruned_weights_stay_exactly_zero_and_their_gradients_are_zero(mnist1d, arch, opt):
    mask = _random_mask(arch, 0.3)
    model = _model(arch)  # the init is NOT masked beforehand: train() applies the mask first
    seen = []

    def check(point):
        state = models.to_numpy(model)
        seen.append(all(not np.any(state[n][~m]) for n, m in mask.items()))

    result = training.train(model, mask, mnist1d, recipe(**opt), seed=0, progress=False, on_eval=check)
    assert seen and all(seen)
    params = dict(model.named_parameters())
    for name, m in mask.items():
        w = params[name].detach().numpy()
        assert not np.any(w[~m]), name
        assert np.count_nonzero(w[m]) == m.sum(), f"{name}: surviving weights should have trained"
        grad = params[name].grad.numpy()
        assert not np.any(grad[~m]), f"{name}: the last gradient of pruned weights should be zero"
        assert np.any(grad[m])
    assert result.final_test_accuracy > 0.2  # it learned something in 120 steps


def test_data_order_is_fixed_by_the_seed_and_crosses_epochs():
    order = training.batch_order(n=50, batch_size=12, iterations=10, seed=3)
    assert order.shape == (120,) and order.dtype == torch.int64
    assert torch.equal(order, training.batch_order(50, 12, 10, 3))
    assert not torch.equal(order, training.batch_order(50, 12, 10, 4))
    generator = torch.Generator().manual_seed(3)
    expected = torch.cat([torch.randperm(50, generator=generator) for _ in range(3)])[:120]
    assert torch.equal(order, expected)
    for epoch in range(2):  # each epoch is a permutation; batch 4 spans epochs 0 and 1
        assert sorted(order[epoch * 50:(epoch + 1) * 50].tolist()) == list(range(50))


def test_same_seed_same_run_different_seed_different_run(mnist1d, arch):
    mask = _random_mask(arch, 0.5)
    runs = []
    for seed in (5, 5, 6):
        model = _model(arch)
        result = training.train(model, mask, mnist1d, recipe(), seed=seed, progress=False)
        runs.append((result.curve, models.to_numpy(model)))
    assert runs[0][0] == runs[1][0]
    for name in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][name], runs[1][1][name])
    assert runs[0][0] != runs[2][0]


def test_curve_evaluations_early_stop_and_json_result(mnist1d, arch):
    points = []
    result = training.train(_model(arch), _random_mask(arch, 0.5), mnist1d, recipe(iterations=120, eval_every=50),
                            seed=0, progress=False, on_eval=points.append)
    assert [p["iteration"] for p in result.curve] == [0, 50, 100, 120]
    assert points == result.curve
    for p in result.curve:
        assert set(p) == {"iteration", "val_loss", "val_accuracy", "test_loss", "test_accuracy"}
        assert 0 <= p["test_accuracy"] <= 1
    best = min(result.curve, key=lambda p: p["val_loss"])
    assert result.early_stop_iteration == best["iteration"]
    assert result.early_stop_test_accuracy == best["test_accuracy"]
    assert result.final_test_accuracy == result.curve[-1]["test_accuracy"]
    assert result.iterations == 120 and result.seed == 0 and result.device == "cpu"
    d = json.loads(json.dumps(result.to_dict()))
    assert d["versions"]["torch"] == torch.__version__ and "ticketclient" in d["versions"]
    assert d["final_test_loss"] == result.final_test_loss and "snapshot" not in d


def test_final_evaluation_matches_an_independent_evaluation(mnist1d, arch):
    model = _model(arch)
    result = training.train(model, None, mnist1d, recipe(iterations=30, eval_every=10), seed=0, progress=False)
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(mnist1d.x_test))
    y = torch.from_numpy(mnist1d.y_test)
    assert result.final_test_accuracy == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert result.final_test_loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)


def test_overrides_snapshot_and_global_random_state(mnist1d, arch):
    model = _model(arch)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    result = training.train(model, None, mnist1d, recipe(iterations=100), seed=0, progress=False,
                            eval_every=20, max_iterations=40, snapshot_iteration=10)
    assert torch.equal(torch.rand(1), expected_next), "train() must not consume the caller's random state"
    assert [p["iteration"] for p in result.curve] == [0, 20, 40]
    assert result.iterations == 40
    assert set(result.snapshot) == set(arch.tensors)
    # the snapshot is the state after 10 steps: 10 steps from the same init and seed reproduce it
    again = _model(arch)
    training.train(again, None, mnist1d, recipe(iterations=100), seed=0, progress=False, max_iterations=10)
    for name, value in models.to_numpy(again).items():
        np.testing.assert_array_equal(result.snapshot[name], value)


def test_learning_rate_schedules():
    r = recipe(lr=1.0, iterations=100, warmup_iterations=10)
    assert [training.learning_rate(r, t) for t in (0, 4, 9, 50)] == pytest.approx([0.1, 0.5, 1.0, 1.0])
    step = recipe(lr=1.0, iterations=100, lr_schedule="step", milestones=[30, 60], gamma=0.1)
    assert [training.learning_rate(step, t) for t in (29, 30, 59, 60, 99)] == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    cos = recipe(lr=2.0, iterations=100, lr_schedule="cosine")
    assert training.learning_rate(cos, 0) == pytest.approx(2.0)
    assert training.learning_rate(cos, 50) == pytest.approx(1.0)
    assert training.learning_rate(cos, 100) == pytest.approx(0.0, abs=1e-12)
    warm_cos = recipe(lr=1.0, iterations=110, warmup_iterations=10, lr_schedule="cosine")
    assert training.learning_rate(warm_cos, 9) == pytest.approx(1.0)
    assert training.learning_rate(warm_cos, 60) == pytest.approx(0.5)


def test_the_schedule_reaches_the_optimizer(mnist1d, arch):
    model = _model(arch)
    lrs = []
    r = recipe(optimizer="sgd", lr=0.1, momentum=0.9, iterations=20, lr_schedule="step", milestones=[10], gamma=0.5)
    orig = training.FlatOptimizer.step

    def spy(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return orig(self, *a, **k)

    training.FlatOptimizer.step = spy
    try:
        training.train(model, None, mnist1d, r, seed=0, progress=False)
    finally:
        training.FlatOptimizer.step = orig
    assert lrs == [pytest.approx(0.1)] * 10 + [pytest.approx(0.05)] * 10


def test_flip_crop_is_seeded_and_keeps_shapes():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6) + 1
    a = training._augmenter("flip-crop", seed=0)
    b = training._augmenter("flip-crop", seed=0)
    c = training._augmenter("flip-crop", seed=1)
    xs = torch.cat([x] * 16)
    out_a, out_b, out_c = a(xs), b(xs), c(xs)
    assert out_a.shape == xs.shape and torch.equal(out_a, out_b) and not torch.equal(out_a, out_c)
    assert torch.any(out_a == 0), "the zero padding shows up at some crop offsets"
    # every output is a crop of the (possibly flipped) padded image: nonzero pixels are original values
    for i in range(len(xs)):
        values = set(out_a[i][out_a[i] != 0].tolist())
        assert values <= set(xs[i].flatten().tolist())
    assert training._augmenter("none", 0) is None
    with pytest.raises(ValueError, match="augment"):
        training._augmenter("mixup", 0)


def test_flip_crop_trains_an_image_model():
    digits = data.load("digits").subset(train=200, val=50, test=50)
    layers = [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}, {"type": "relu"},
              {"type": "flatten"}, {"type": "linear", "out_features": 10}]
    arch = spec.resolve({"layers": layers}, input_shape=(1, 8, 8), num_classes=10)
    mask = _random_mask(arch, 0.5)
    model = _model(arch)
    result = training.train(model, mask, digits, recipe(iterations=20, batch_size=16, augment="flip-crop"),
                            seed=0, progress=False)
    assert result.iterations == 20
    w = dict(model.named_parameters())["layers.0.weight"].detach().numpy()
    assert not np.any(w[~mask["layers.0.weight"]])


def test_mask_errors_name_the_weight(mnist1d, arch):
    with pytest.raises(KeyError, match="layers.7.weight"):
        training.train(_model(arch), {"layers.7.weight": np.ones((2, 2), bool)}, mnist1d, recipe(), seed=0,
                       progress=False)
    with pytest.raises(ValueError, match="layers.1.weight"):
        training.train(_model(arch), {"layers.1.weight": np.ones((2, 2), bool)}, mnist1d, recipe(), seed=0,
                       progress=False)


def test_recipe_is_a_dataclass_we_can_override():
    r = dataclasses.replace(recipe(), iterations=5)
    assert r.iterations == 5


def test_cpu_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv(training.TORCH_THREADS_ENV, "3")
    assert training.cpu_threads() == 3
    monkeypatch.delenv(training.TORCH_THREADS_ENV)
    assert training.cpu_threads() >= 1
    monkeypatch.setenv(training.TORCH_THREADS_ENV, "many")
    with pytest.raises(ValueError, match="TICKETHUB_TORCH_THREADS"):
        training.cpu_threads()


@pytest.mark.parametrize("opt", [dict(optimizer="adam", weight_decay=1e-3, betas=[0.8, 0.99]),
                                 dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4)])
def test_masked_optimizer_is_stock_torch_optim_value_for_value_with_state_only_for_kept_weights(arch, opt):
    """The optimizer keeps state for kept weights only, and gives exactly what stock torch.optim gives over the
    whole tensors with the pruned gradients zeroed and the mask re-applied (the pre-issue-15 step)."""
    r = recipe(**opt)
    mask = _random_mask(arch, 0.05, seed=3)
    ours, stock = _model(arch, 1), _model(arch, 1)
    models.apply_mask(ours, mask), models.apply_mask(stock, mask)
    params = [dict(m.named_parameters()) for m in (ours, stock)]
    masks = {n: torch.from_numpy(m).float() for n, m in mask.items()}
    optimizer = training.MaskedOptimizer(list(params[0].values()), [params[0][n] for n in masks], list(masks.values()), r)
    reference = training.make_optimizer(list(params[1].values()), r)
    kept = sum(int(m.sum()) for m in mask.values()) + sum(p.numel() for n, p in params[0].items() if n not in mask)
    assert sum(p.numel() for p in optimizer.optimizer.param_groups[0]["params"]) == kept
    rng = torch.Generator().manual_seed(0)
    for step in range(30):
        x, y = torch.randn(16, 40, generator=rng), torch.randint(0, 10, (16,), generator=rng)
        for model in (ours, stock):
            torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        with torch.no_grad():
            torch._foreach_mul_([params[1][n].grad for n in masks], list(masks.values()))
            reference.step()
            torch._foreach_mul_([params[1][n] for n in masks], list(masks.values()))
        optimizer.zero_grad()
        reference.zero_grad(set_to_none=True)
        lr = training.learning_rate(r, step) * 0.9  # the loop sets the lr of every group; both the same
        for group in optimizer.param_groups + reference.param_groups:
            group["lr"] = lr
    for name, p in params[0].items():
        assert torch.equal(p, params[1][name]), name
        if name in mask:
            assert not p.detach().numpy()[~mask[name]].any()
    state_sizes = [sum(t.numel() for t in s.values() if t.dim() > 0) for s in optimizer.optimizer.state.values()]
    per_kept = {"adam": 2, "sgd": 1}[opt["optimizer"]]
    assert sum(state_sizes) == per_kept * kept  # exp_avg + exp_avg_sq (Adam) or momentum (SGD): kept only
