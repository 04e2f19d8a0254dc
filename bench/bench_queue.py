"""Throughput with a queue: tickets per worker-hour when several queued verifications share a shape.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_queue.py                 # depths 1, 4, 16 on CPU (minutes)
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_queue.py --depths 1,4 --iterations 100

A queue of ``depth`` verifications of distinct tickets (each its own random mask and init) with the same
architecture and recipe is worked off two ways, alternated within each repeat, median of ``--repeats``:

* **one job per ticket** (what the verifier does today): per ticket, ``verifier.engine.Engine`` as
  deployed trains the job ``verifier.job.plan_runs`` plans (the supermask evaluation, then the ticket, the
  dense parent, reinit and random-mask controls x N seeds; the engine stacks one ticket's runs);
* **stacked queue**: the trained runs of every queued ticket in ONE ``ticketclient.stacked.train_stacked``
  call (K = depth x 4N runs), each ticket's supermask evaluated on its own (:func:`train_queue_stacked`).
  Every run keeps its own init, mask and data-order seed, so each result is the run the one-job-per-ticket
  path computes (up to floating-point summation order; the ticket accuracies are printed side by side).

Printed: the wall time of the queue, tickets per worker-hour (3600 x depth / wall) and the ratio of the
stacked queue to one job per ticket at each depth. A worker is one process with one torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "client" / "src"), str(ROOT / "bench")]

from ticketclient import data, format, models, pruning, spec, stacked, tasks, training, validation  # noqa: E402

from verifier import engine as engine_mod  # noqa: E402
from verifier.config import VerifierSettings  # noqa: E402
from verifier.job import plan_runs  # noqa: E402
from verifier.policy import SUPERMASK, TICKET  # noqa: E402


def make_ticket(task: str, architecture: dict[str, Any], recipe: dict[str, Any], density: float, seed: int,
                *, input_shape: Sequence[int] | None = None, num_classes: int | None = None):
    """A validated ticket bundle: a random mask at ``density`` on a fresh init, both drawn from ``seed``
    (distinct seeds give distinct tickets of the same architecture and recipe)."""
    info = tasks.get(task)
    arch = spec.resolve(architecture, input_shape=tuple(input_shape or info.input_shape),
                        num_classes=num_classes or info.num_classes)
    rng = np.random.default_rng(seed)
    mask = {n: rng.random(arch.tensors[n].shape) < density for n in arch.prunable}
    config = format.TicketConfig.from_json({
        "format": "lottery-ticket/v1", "task": task, "architecture": architecture, "recipe": recipe,
        "claims": {"test_accuracy": 0.1},
    })
    with tempfile.TemporaryDirectory() as tmp:
        format.TicketBundle(config=config, init=models.fresh_init(arch, seed), mask=mask).save(Path(tmp))
        return validation.validate_folder(Path(tmp))


class InMemoryEngine(engine_mod.Engine):
    """``verifier.engine.Engine`` on data already in memory (``task_data``) instead of ``data.load(task)``:
    the same schedule choice and training; used where the task's files cannot be fetched (bench_gpu.py)."""

    def __init__(self, validated: Any, task_data: Any, *, device: str, settings: VerifierSettings,
                 stacked: bool | None = None) -> None:
        self.validated = validated
        self.arch = validated.arch
        self.recipe = validated.config.recipe
        self.task = task_data.task
        self.device = device
        self.bundle = validated.bundle
        self.data = task_data
        wanted = stacked if stacked is not None else (None if settings.stacked else False)
        self.stacked = engine_mod.use_stacking(device, self.arch, self.recipe, wanted)
        self.settings = settings
        self.name = "stacked" if self.stacked else "sequential"


def settings_for(seeds: int) -> VerifierSettings:
    return VerifierSettings(seeds=seeds, cpu_parallel_runs=0)


def job_per_ticket(tickets: Sequence[Any], task: str, device: str, seeds: int,
                   task_data: Any = None) -> tuple[float, float, list[float], str]:
    """Today's queue: one Engine job per ticket, one after another.

    Returns (wall s, this process's CPU s, ticket median accuracies, the engine's choice)."""
    started, cpu = time.perf_counter(), time.process_time()
    medians, how = [], ""
    for validated in tickets:
        runs = plan_runs(seeds)
        if task_data is None:
            eng = engine_mod.Engine(validated, task=task, device=device, settings=settings_for(seeds))
        else:
            eng = InMemoryEngine(validated, task_data, device=device, settings=settings_for(seeds))
        results = list(eng.train(runs, on_progress=lambda *a: None))
        medians.append(statistics.median(r.final_test_accuracy for run, r, _ in results if run.role == TICKET))
        how = f"{eng.name}, {eng.lanes(sum(r.role != SUPERMASK for r in runs))} lane(s) per job"
    return time.perf_counter() - started, time.process_time() - cpu, medians, how


def train_queue_stacked(tickets: Sequence[Any], task_data: Any, device: str, seeds: int,
                        ) -> tuple[list[list[tuple[Any, Any]]], float, float]:
    """Every trained run of every ticket in one stacked job; each ticket's supermask on its own.

    Returns, per ticket, its (planned run, result) pairs, the wall time and this process's CPU time. All tickets must share one
    architecture and recipe (what a worker would batch)."""
    arch, recipe = tickets[0].arch, tickets[0].config.recipe
    for t in tickets[1:]:
        shape = (t.arch.layers, t.arch.input_shape, t.arch.num_classes)
        if shape != (arch.layers, arch.input_shape, arch.num_classes) or t.config.recipe != recipe:
            raise ValueError("stacked queue: every ticket must share the architecture and the recipe")
    started, cpu = time.perf_counter(), time.process_time()
    per_ticket: list[list[tuple[Any, Any]]] = []
    stacked_runs: list[stacked.StackedRun] = []
    owners: list[tuple[int, Any]] = []
    for index, validated in enumerate(tickets):
        pairs: list[tuple[Any, Any]] = []
        for run in plan_runs(seeds):
            if run.role == SUPERMASK:
                accuracy = pruning.supermask_accuracy(validated.bundle, task_data, device=device)
                pairs.append((run, float(getattr(accuracy, "test_accuracy", accuracy))))
                continue
            init, mask = engine_mod.Engine.initial_state_of(validated.bundle, run.role, run.control_seed)
            stacked_runs.append(stacked.StackedRun(init=init, mask=mask, seed=run.data_seed))
            owners.append((index, run))
        per_ticket.append(pairs)
    results = stacked.train_stacked(arch, stacked_runs, task_data, recipe, device=device)
    for (index, run), result in zip(owners, results, strict=True):
        per_ticket[index].append((run, result))
    return per_ticket, time.perf_counter() - started, time.process_time() - cpu


def ticket_medians(per_ticket: list[list[tuple[Any, Any]]]) -> list[float]:
    return [statistics.median(r.final_test_accuracy for run, r in pairs if run.role == TICKET) for pairs in per_ticket]


def per_hour(tickets: int, wall_s: float) -> float:
    return 3600.0 * tickets / wall_s if wall_s > 0 else float("inf")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:  # pragma: no cover - no uptime binary
        return "uptime unavailable"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--hidden", default="64,32")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=None, help="default: iterations / 3")
    parser.add_argument("--density", type=float, default=0.036)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--depths", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of the worker")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    training.warm_up()
    depths = [int(d) for d in args.depths.split(",")]
    eval_every = args.eval_every or max(1, args.iterations // 3)
    architecture = {"family": "mlp", "args": {"hidden": [int(h) for h in args.hidden.split(",")]}}
    recipe = {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "iterations": args.iterations,
              "eval_every": eval_every}
    queue = [make_ticket(args.task, architecture, recipe, args.density, seed) for seed in range(max(depths))]
    task_data = data.load(args.task)
    print(f"queue throughput: task {args.task}, mlp {args.hidden} ({queue[0].arch.forward_macs:,} MACs/example), "
          f"density {args.density:.1%}, {4 * args.seeds} trained runs + supermask per ticket, {args.iterations} "
          f"iterations (batch 60, eval every {eval_every}), device {args.device}, torch threads "
          f"{torch.get_num_threads()}, median of {args.repeats}; {uptime()}")
    print("wall: elapsed s; cpu: this process's CPU s (steadier on a shared machine); tickets/h = 3600 x depth / s")
    print(f"{'depth':>5} {'jobs wall':>9} {'cpu':>7} {'tickets/h':>9} {'(cpu)':>7} {'stack wall':>10} {'cpu':>7} "
          f"{'tickets/h':>9} {'(cpu)':>7} {'ratio':>6} {'(cpu)':>6} {'acc diff':>8}   one job per ticket chose")
    for depth in depths:
        tickets = queue[:depth]
        walls: dict[str, list[float]] = {"jobs": [], "stacked": []}
        cpus: dict[str, list[float]] = {"jobs": [], "stacked": []}
        diff, how = 0.0, ""
        for _ in range(args.repeats):
            wall, cpu, one_by_one, how = job_per_ticket(tickets, args.task, args.device, args.seeds)
            walls["jobs"].append(wall)
            cpus["jobs"].append(cpu)
            per_ticket, wall, cpu = train_queue_stacked(tickets, task_data, args.device, args.seeds)
            walls["stacked"].append(wall)
            cpus["stacked"].append(cpu)
            # each call draws its own seeds: the accuracies agree statistically, not run for run
            diff = max(abs(a - b) for a, b in zip(one_by_one, ticket_medians(per_ticket), strict=True))
        jw, jc = statistics.median(walls["jobs"]), statistics.median(cpus["jobs"])
        sw, sc = statistics.median(walls["stacked"]), statistics.median(cpus["stacked"])
        print(f"{depth:>5} {jw:>9.2f} {jc:>7.2f} {per_hour(depth, jw):>9.0f} {per_hour(depth, jc):>7.0f} {sw:>10.2f} "
              f"{sc:>7.2f} {per_hour(depth, sw):>9.0f} {per_hour(depth, sc):>7.0f} {jw / sw:>5.2f}x {jc / sc:>5.2f}x "
              f"{diff:>8.3f}   {how}")
    print(f"after: {uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
