"""Our masked training loop vs a plain PyTorch DataLoader loop, side by side, same model and recipe.

    .venv/bin/python bench/bench_training.py                    # mnist1d, LeNet-style MLP (300, 100), 2000 iterations
    .venv/bin/python bench/bench_training.py --iterations 4000 --repeats 3 --threads 1 --density 0.1

Both loops train the same masked model (same init, same mask) with the same recipe (Adam 1.2e-3, batch 60)
and evaluate on the validation and test splits at the same iterations:

* **ours**: ``ticketclient.training.train`` (the whole data set on the device once, batches are index
  slices of a precomputed order, masks re-applied with one ``torch._foreach_mul_``);
* **baseline**: what one usually writes: ``TensorDataset`` + ``DataLoader(shuffle=True)``, a per-step
  ``.to(device)`` copy, the mask re-applied parameter by parameter, evaluation through a DataLoader.

After a short untimed warm-up of each, runs alternate (ours, baseline, ours, ...); the best (minimum,
as ``timeit`` does: the least disturbed by other processes) and the median of ``--repeats`` are reported,
with the ratio baseline / ours of the best times (above 1: ours is faster). See bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client" / "src"))

from ticketclient import data, format, models, spec, training  # noqa: E402


def baseline_train(model: torch.nn.Module, mask: dict[str, np.ndarray], task: data.TaskData, recipe: format.Recipe,
                   *, seed: int, device: torch.device) -> float:
    """The usual DataLoader loop (masked); returns the final test accuracy."""
    torch.manual_seed(seed)
    model.to(device).train()
    params = dict(model.named_parameters())
    masks = {n: torch.from_numpy(m).to(device=device, dtype=torch.float32) for n, m in mask.items()}
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=tuple(recipe.betas))
    train_loader = DataLoader(TensorDataset(torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)),
                              batch_size=recipe.batch_size, shuffle=True, drop_last=True)
    eval_loaders = {split: DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=1000)
                    for split, x, y in (("val", task.x_val, task.y_val), ("test", task.x_test, task.y_test))}

    def evaluate(split: str) -> float:
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for xb, yb in eval_loaders[split]:
                xb, yb = xb.to(device), yb.to(device)
                logits = model(xb)
                F.cross_entropy(logits, yb).item()
                correct += int((logits.argmax(1) == yb).sum())
                total += len(yb)
        model.train()
        return correct / total

    it = 0
    accuracy = 0.0
    while it < recipe.iterations:
        for xb, yb in train_loader:
            if it % recipe.eval_every == 0:
                evaluate("val")
                accuracy = evaluate("test")
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for n, m in masks.items():
                    params[n].mul_(m)
            it += 1
            if it == recipe.iterations:
                break
    evaluate("val")
    accuracy = evaluate("test")
    return accuracy


def plain_train(model: torch.nn.Module, mask: dict[str, np.ndarray], task: data.TaskData, recipe: format.Recipe,
                *, seed: int, device: torch.device, fused: bool = False) -> float:
    """A competent plain PyTorch loop (the issue-15 reference): every split preloaded as tensors on the device,
    a batch is an index slice of a per-epoch ``randperm``, stock ``torch.optim.Adam`` (``fused=True`` when
    asked), the mask applied to the gradients before and the weights after each step, whole-split
    evaluations at the recipe's points. Returns the final test accuracy."""
    torch.manual_seed(seed)
    model.to(device).train()
    params = dict(model.named_parameters())
    masks = {n: torch.from_numpy(np.asarray(m, dtype=bool)).to(device=device, dtype=torch.float32)
             for n, m in mask.items()}
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=tuple(recipe.betas),
                                 weight_decay=recipe.weight_decay, fused=True if fused else None)
    x_train, y_train = torch.from_numpy(task.x_train).to(device), torch.from_numpy(task.y_train).to(device)
    splits = {"val": (torch.from_numpy(task.x_val).to(device), torch.from_numpy(task.y_val).to(device)),
              "test": (torch.from_numpy(task.x_test).to(device), torch.from_numpy(task.y_test).to(device))}

    def evaluate(split: str) -> float:
        x, y = splits[split]
        model.eval()
        with torch.no_grad():
            logits = model(x)
            F.cross_entropy(logits, y).item()
            accuracy = float((logits.argmax(1) == y).float().mean())
        model.train()
        return accuracy

    generator = torch.Generator().manual_seed(seed)
    n, b = len(y_train), recipe.batch_size
    perm, pos = torch.randperm(n, generator=generator).to(device), 0
    for it in range(recipe.iterations):
        if it % recipe.eval_every == 0:
            evaluate("val")
            evaluate("test")
        if pos + b > n:
            perm, pos = torch.randperm(n, generator=generator).to(device), 0
        idx = perm[pos:pos + b]
        pos += b
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for name, m in masks.items():
                params[name].grad.mul_(m)
        optimizer.step()
        with torch.no_grad():
            for name, m in masks.items():
                params[name].mul_(m)
    evaluate("val")
    return evaluate("test")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--hidden", default="300,100", help="hidden widths of the MLP")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--density", type=float, default=0.1, help="fraction of weights kept by the random mask")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: training.cpu_threads())")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    device = torch.device(args.device) if args.device else training.default_device()
    if device.type == "cpu":
        torch.set_num_threads(args.threads or training.cpu_threads())
    task = data.load(args.task)
    from ticketclient import tasks

    info = tasks.get(args.task)
    arch = spec.resolve({"family": "mlp", "args": {"hidden": [int(h) for h in args.hidden.split(",")]}},
                        input_shape=info.input_shape, num_classes=info.num_classes)
    recipe = format.Recipe.from_dict({"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60,
                                      "iterations": args.iterations, "eval_every": args.eval_every})
    rng = np.random.default_rng(0)
    mask = {n: rng.random(arch.tensors[n].shape) < args.density for n in arch.prunable}
    init = models.to_numpy(models.init_weights(models.build_model(arch), 0))

    def fresh() -> torch.nn.Module:
        return models.load_tensors(models.build_model(arch), init)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    warm = format.Recipe.from_dict({**recipe.to_dict(), "iterations": 20, "eval_every": 10})
    training.train(fresh(), mask, task, warm, seed=0, device=device, progress=False)
    baseline_train(fresh(), mask, task, warm, seed=0, device=device)

    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    accuracy: dict[str, float] = {}
    for _ in range(args.repeats):
        model = fresh()
        sync()
        started = time.perf_counter()
        accuracy["ours"] = training.train(model, mask, task, recipe, seed=0, device=device, progress=False).final_test_accuracy
        sync()
        times["ours"].append(time.perf_counter() - started)

        model = fresh()
        sync()
        started = time.perf_counter()
        accuracy["baseline"] = baseline_train(model, mask, task, recipe, seed=0, device=device)
        sync()
        times["baseline"].append(time.perf_counter() - started)

    ours, base = min(times["ours"]), min(times["baseline"])
    print(f"task {args.task}, mlp {args.hidden}, density {args.density:.0%}, {args.iterations} iterations "
          f"(batch 60, eval every {args.eval_every}), device {device}, torch threads {torch.get_num_threads()}, "
          f"{args.repeats} runs each")
    print(f"{'loop':<10} {'best s':>8} {'median s':>9} {'it/s':>7} {'test acc':>9}   runs (s)")
    for name in ("ours", "baseline"):
        best, median = min(times[name]), statistics.median(times[name])
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"{name:<10} {best:>8.2f} {median:>9.2f} {args.iterations / best:>7.0f} {accuracy[name]:>9.4f}   {runs}")
    print(f"ratio baseline / ours (best): {base / ours:.2f}x; "
          f"(median): {statistics.median(times['baseline']) / statistics.median(times['ours']):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
