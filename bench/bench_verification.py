"""One verification job (ticket + controls x seeds) by the verifier's engine vs the same runs in a plain
sequential DataLoader loop, side by side.

    .venv/bin/python bench/bench_verification.py                     # mnist1d, MLP (300, 100), 1000 iterations
    .venv/bin/python bench/bench_verification.py --hidden 64,32 --iterations 500 --repeats 3 --threads 1

The job is what ``verifier.job`` trains for one revision: the ticket with seeds 0..N-1, the same mask from a
fresh init (reinit) and a random mask of the same per-layer density (random_mask) with the same seeds, and
the supermask evaluation; 3N + 1 runs (N = 3 by default). Three schedules of those runs:

* **baseline**: each run in turn through the usual ``TensorDataset`` + ``DataLoader(shuffle=True)`` loop
  (``bench_training.baseline_train``: per-step host copy, mask re-applied parameter by parameter);
* **stacked**: the verifier's engine as deployed: the runs split into lanes (threads; one per CPU core for
  networks of at least ``engine.LANE_MIN_FORWARD_MACS`` multiply-adds per example, else one; one on a
  GPU), each lane training its runs as one batched model (``ticketclient.stacked``);
* **stacked-Nlane**: the same with the other lane count (1 or one per core), to check the rule;
* **sequential**: the engine with stacking off (``ticketclient.training.train``, one run at a time per lane).

Schedules alternate within each repeat and the median of ``--repeats`` is reported, with the ratios
baseline / engine (above 1: the engine is faster). Medians of the ticket's final test accuracy are printed
as a check that all three train the same thing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "client" / "src"), str(ROOT / "bench")]

from bench_training import baseline_train  # noqa: E402
from ticketclient import data, format, models, pruning, spec, tasks, validation  # noqa: E402

from verifier import engine as engine_mod  # noqa: E402
from verifier.config import VerifierSettings  # noqa: E402
from verifier.job import plan_runs  # noqa: E402
from verifier.policy import TICKET  # noqa: E402


def make_validated(task: str, hidden: list[int], iterations: int, eval_every: int, density: float):
    info = tasks.get(task)
    architecture = {"family": "mlp", "args": {"hidden": hidden}}
    arch = spec.resolve(architecture, input_shape=info.input_shape, num_classes=info.num_classes)
    rng = np.random.default_rng(0)
    mask = {n: rng.random(arch.tensors[n].shape) < density for n in arch.prunable}
    init = models.to_numpy(models.init_weights(models.build_model(arch), 0))
    config = format.TicketConfig.from_json({
        "format": "lottery-ticket/v1", "task": task, "architecture": architecture,
        "recipe": {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "iterations": iterations,
                   "eval_every": eval_every},
        "claims": {"test_accuracy": 0.5},
    })
    with tempfile.TemporaryDirectory() as tmp:
        format.TicketBundle(config=config, init=init, mask=mask).save(Path(tmp))
        return validation.validate_folder(Path(tmp))


def run_engine(validated, task: str, device: str, *, stacked: bool, seeds: int, lanes: int) -> tuple[float, float]:
    """Wall time of the verifier's engine for one job, and the ticket runs' median accuracy."""
    started = time.perf_counter()
    eng = engine_mod.Engine(validated, task=task, device=device,
                            settings=VerifierSettings(seeds=seeds, cpu_parallel_runs=lanes), stacked=stacked)
    results = list(eng.train(plan_runs(seeds), on_progress=lambda *a: None))
    wall = time.perf_counter() - started
    return wall, statistics.median(r.final_test_accuracy for run, r, _ in results if run.role == TICKET)


def run_baseline(validated, task_data, device: str, *, seeds: int) -> tuple[float, float]:
    """The same 3N runs and the supermask evaluation, one after another, in a plain DataLoader loop."""
    started = time.perf_counter()
    bundle = validated.bundle
    ticket_acc = []
    for run in plan_runs(seeds):
        if run.role == "supermask":
            pruning.supermask_accuracy(bundle, task_data, device=device)
            continue
        init, mask = engine_mod.Engine.initial_state_of(bundle, run.role, run.seed)
        model = models.load_tensors(models.build_model(validated.arch), init)
        acc = baseline_train(model, mask, task_data, validated.config.recipe, seed=run.seed,
                             device=torch.device(device))
        if run.role == TICKET:
            ticket_acc.append(acc)
    return time.perf_counter() - started, statistics.median(ticket_acc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--hidden", default="300,100")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: one per core)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--lanes", type=int, default=None,
                        help="groups of runs trained in parallel threads by the engine (default: one per CPU core)")
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args(argv)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        import os

        torch.set_num_threads(args.threads or os.cpu_count() or 1)
    hidden = [int(h) for h in args.hidden.split(",")]
    validated = make_validated(args.task, hidden, args.iterations, args.eval_every, args.density)
    task_data = data.load(args.task)

    import os

    cores = os.cpu_count() or 1 if device == "cpu" else 1
    lanes = engine_mod.lane_count(device, validated.arch, VerifierSettings(cpu_parallel_runs=args.lanes or 0),
                                  3 * args.seeds)
    schedules = {
        "baseline": lambda: run_baseline(validated, task_data, device, seeds=args.seeds),
        "stacked": lambda: run_engine(validated, args.task, device, stacked=True, seeds=args.seeds, lanes=lanes),
    }
    other = 1 if lanes > 1 else cores
    if other != lanes:
        schedules[f"stacked-{other}lane"] = lambda: run_engine(validated, args.task, device, stacked=True,
                                                               seeds=args.seeds, lanes=other)
    if not args.skip_sequential:
        schedules["sequential"] = lambda: run_engine(validated, args.task, device, stacked=False, seeds=args.seeds,
                                                     lanes=lanes)
    times: dict[str, list[float]] = {name: [] for name in schedules}
    accuracy: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, fn in schedules.items():
            wall, acc = fn()
            times[name].append(wall)
            accuracy[name] = acc

    runs = 3 * args.seeds
    print(f"verification job: task {args.task}, mlp {args.hidden}, density {args.density:.0%}, {runs} trained runs "
          f"+ supermask, {args.iterations} iterations each (batch 60, eval every {args.eval_every}), device {device}, "
          f"torch threads {torch.get_num_threads()} (split between {lanes} lanes), median of {args.repeats}")
    print(f"{'schedule':<14} {'wall s':>8} {'run-it/s':>9} {'ticket acc':>10}   repeats")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        reps = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"{name:<14} {median:>8.2f} {runs * args.iterations / median:>9.0f} {accuracy[name]:>10.4f}   {reps}")
    for name in medians:
        if name != "baseline":
            print(f"ratio baseline / {name}: {medians['baseline'] / medians[name]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
