"""One verification job by the verifier's engine, next to a competent plain PyTorch loop and a FLOP floor.

    .venv/bin/python bench/bench_verification.py                  # issue 15's setup: LeNet-300-100 (mlp 300,100)
                                                                  # on mnist1d, density 3.6%, 4,000 iterations
    .venv/bin/python bench/bench_verification.py --quick          # the same job at 500 iterations, one repeat
    .venv/bin/python bench/bench_verification.py --sweep          # stacked vs one run at a time by width
                                                                  # (the engine's thresholds)

The job is what ``verifier.job`` trains for one revision (``verifier.job.plan_runs``): the supermask
evaluation and, for each of N data-order seeds (N = 3), the ticket, the dense parent, the reinit and the
random-mask controls (``--issue-setup``: without the dense parent, the 9 runs + supermask issue 15 timed).
The ticket is a random mask at ``--density`` on a fresh init. Schedules, alternated within each repeat,
median of ``--repeats``:

* **engine**: ``verifier.engine.Engine`` as deployed: it chooses stacking and lanes itself
  (``engine.use_stacking`` and ``engine.lane_count``);
* **stacked** / **sequential**: the engine with stacking forced on / off (same lanes rule);
* **plain**: each run in turn through ``bench_training.plain_train``: tensors preloaded on the device,
  index-slice batches, stock ``torch.optim.Adam`` (PyTorch's CPU default, the per-tensor loop);
* **plain-fused**: the same with ``torch.optim.Adam(fused=True)``.

The **floor** is the job's dense multiply-adds (training: 3 x forward per example; evaluations: 1 x) at the
best matrix-multiply throughput this process measures (``torch.mm`` of 1024 x 1024 matrices, same threads).
It is a *dense* floor: on a CPU the stacked engine multiplies weights that keep at most
``ticketclient.stacked.SPARSE_MAX_DENSITY`` of their entries as sparse matrices (the 3.6% ticket and its
controls), so it does a fraction of those multiply-adds and can come in under it; ``plain`` does them all.
The line ``warm-up`` is the one-time ``ticketclient.training.warm_up()`` cost (the first Adam of a process),
paid before any job, as the verifier's worker does at start.
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

from bench_training import plain_train  # noqa: E402
from ticketclient import data, format, models, pruning, spec, tasks, training, validation  # noqa: E402

from verifier import engine as engine_mod  # noqa: E402
from verifier.config import VerifierSettings  # noqa: E402
from verifier.job import plan_runs  # noqa: E402
from verifier.policy import SUPERMASK, TICKET  # noqa: E402


def make_validated(task: str, hidden: list[int], iterations: int, eval_every: int, density: float):
    info = tasks.get(task)
    architecture = {"family": "mlp", "args": {"hidden": hidden}}
    arch = spec.resolve(architecture, input_shape=info.input_shape, num_classes=info.num_classes)
    rng = np.random.default_rng(0)
    mask = {n: rng.random(arch.tensors[n].shape) < density for n in arch.prunable}
    config = format.TicketConfig.from_json({
        "format": "lottery-ticket/v1", "task": task, "architecture": architecture,
        "recipe": {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "iterations": iterations,
                   "eval_every": eval_every},
        "claims": {"test_accuracy": 0.5},
    })
    with tempfile.TemporaryDirectory() as tmp:
        format.TicketBundle(config=config, init=models.fresh_init(arch, 0), mask=mask).save(Path(tmp))
        return validation.validate_folder(Path(tmp))


def job_runs(seeds: int, issue_setup: bool) -> list:
    runs = plan_runs(seeds)
    return [r for r in runs if r.role != "dense"] if issue_setup else runs


def run_engine(validated, task: str, device: str, runs: list, *, stacked: bool | None, lanes: int = 0,
               ) -> tuple[float, float, float, str]:
    """Wall and CPU time of the verifier's engine for one job, the ticket runs' median accuracy, its choice."""
    started, cpu = time.perf_counter(), time.process_time()
    eng = engine_mod.Engine(validated, task=task, device=device,
                            settings=VerifierSettings(seeds=3, cpu_parallel_runs=lanes), stacked=stacked)
    results = list(eng.train(runs, on_progress=lambda *a: None))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    chose = f"{eng.name}, {eng.lanes(sum(r.role != SUPERMASK for r in runs))} lane(s)"
    return wall, cpu, statistics.median(r.final_test_accuracy for run, r, _ in results if run.role == TICKET), chose


def run_plain(validated, task_data, device: str, runs: list, *, fused: bool) -> tuple[float, float, float, str]:
    """The same runs and the supermask evaluation, one after another, in the plain loop."""
    started, cpu = time.perf_counter(), time.process_time()
    bundle = validated.bundle
    ticket_acc = []
    for run in runs:
        if run.role == SUPERMASK:
            pruning.supermask_accuracy(bundle, task_data, device=device)
            continue
        init, mask = engine_mod.Engine.initial_state_of(bundle, run.role, run.control_seed)
        model = models.load_tensors(models.build_model(validated.arch), init)
        acc = plain_train(model, mask, task_data, validated.config.recipe, seed=int(run.data_seed) % 2**63,
                          device=torch.device(device), fused=fused)
        if run.role == TICKET:
            ticket_acc.append(acc)
    return (time.perf_counter() - started, time.process_time() - cpu, statistics.median(ticket_acc),
            "one run at a time")


def matmul_flops_per_s(device: str, n: int = 1024, repeats: int = 5) -> float:
    """Best dense float32 matrix-multiply throughput (FLOP/s) of this process on ``device``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t) / 4)
    return 2 * n**3 / best


def job_flops(arch, recipe, task_data, runs: list) -> float:
    """Dense FLOPs of the job: per trained run 3 x forward per training example plus the evaluations."""
    macs = int(arch.forward_macs)
    evals = recipe.eval_points
    eval_examples = len(task_data.y_val) + len(task_data.y_test)
    trained = sum(r.role != SUPERMASK for r in runs)
    per_run = 3 * recipe.iterations * recipe.batch_size * macs + evals * eval_examples * macs
    return 2.0 * (trained * per_run + len(task_data.y_test) * macs)


def sweep(task: str, device: str, iterations: int, density: float, repeats: int) -> None:
    """Stacked vs one run at a time (one lane) for MLPs of growing width: where stacking stops paying."""
    print(f"stacked vs sequential, one lane, {iterations} iterations, density {density:.1%}, 12 runs + supermask, "
          f"torch threads {torch.get_num_threads()}, median of {repeats}")
    print(f"{'hidden':<12} {'fwd MACs':>9} {'stacked':>10} {'seq':>8} {'seq/stacked':>12}   (CPU seconds)")
    for hidden in ([100, 100], [300, 100], [500, 200], [1000, 300]):
        validated = make_validated(task, hidden, iterations, max(1, iterations // 4), density)
        runs = job_runs(3, False)
        t: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeats):
            for stacked in (True, False):
                t[stacked].append(run_engine(validated, task, device, runs, stacked=stacked, lanes=1)[1])
        s, q = statistics.median(t[True]), statistics.median(t[False])
        print(f"{','.join(map(str, hidden)):<12} {validated.arch.forward_macs:>9,} {s:>10.2f} {q:>8.2f} {q / s:>11.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--hidden", default="300,100")
    parser.add_argument("--iterations", type=int, default=4000)
    parser.add_argument("--eval-every", type=int, default=None, help="default: iterations / 10")
    parser.add_argument("--density", type=float, default=0.036)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: training.cpu_threads())")
    parser.add_argument("--device", default=None)
    parser.add_argument("--lanes", type=int, default=0, help="force the engine's lane count (default: its rule)")
    parser.add_argument("--issue-setup", action="store_true", help="9 runs + supermask (no dense parent)")
    parser.add_argument("--quick", action="store_true", help="500 iterations, one repeat")
    parser.add_argument("--schedules", default="engine,stacked,sequential,plain,plain-fused")
    parser.add_argument("--sweep", action="store_true", help="stacked vs sequential by network width")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.repeats = 500, 1

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(args.threads or training.cpu_threads())
    started = time.perf_counter()
    training.warm_up()
    warm_up_s = time.perf_counter() - started
    if args.sweep:
        sweep(args.task, device, args.iterations, args.density, args.repeats)
        return 0

    hidden = [int(h) for h in args.hidden.split(",")]
    eval_every = args.eval_every or max(1, args.iterations // 10)
    validated = make_validated(args.task, hidden, args.iterations, eval_every, args.density)
    task_data = data.load(args.task)
    runs = job_runs(args.seeds, args.issue_setup)
    available = {
        "engine": lambda: run_engine(validated, args.task, device, runs, stacked=None, lanes=args.lanes),
        "stacked": lambda: run_engine(validated, args.task, device, runs, stacked=True, lanes=args.lanes),
        "sequential": lambda: run_engine(validated, args.task, device, runs, stacked=False, lanes=args.lanes),
        "plain": lambda: run_plain(validated, task_data, device, runs, fused=False),
        "plain-fused": lambda: run_plain(validated, task_data, device, runs, fused=True),
    }
    schedules = {name: available[name] for name in args.schedules.split(",")}
    times: dict[str, list[float]] = {name: [] for name in schedules}
    cpu_times: dict[str, list[float]] = {name: [] for name in schedules}
    accuracy: dict[str, float] = {}
    chose: dict[str, str] = {}
    for _ in range(args.repeats):
        for name, fn in schedules.items():
            wall, cpu, acc, how = fn()
            times[name].append(wall)
            cpu_times[name].append(cpu)
            accuracy[name], chose[name] = acc, how

    flops = job_flops(validated.arch, validated.config.recipe, task_data, runs)
    peak = matmul_flops_per_s(device)
    floor = flops / peak
    trained = sum(r.role != SUPERMASK for r in runs)
    print(f"verification job: task {args.task}, mlp {args.hidden} ({validated.arch.forward_macs:,} MACs/example), "
          f"density {args.density:.1%}, {trained} trained runs + supermask, {args.iterations} iterations each "
          f"(batch 60, eval every {eval_every}), device {device}, torch threads {torch.get_num_threads()}, "
          f"median of {args.repeats}")
    print(f"floor: {flops / 1e9:.0f} GFLOP at {peak / 1e9:.1f} GFLOP/s (torch.mm 1024) = {floor:.2f} s; "
          f"warm-up (once per process, before any job): {warm_up_s:.2f} s")
    medians = {name: statistics.median(t) for name, t in times.items()}
    cpu_medians = {name: statistics.median(t) for name, t in cpu_times.items()}
    reference, cpu_reference = medians.get("plain"), cpu_medians.get("plain")
    print("wall: elapsed seconds; cpu: this process's CPU seconds (steadier on a shared machine); ratios of medians")
    print(f"{'schedule':<12} {'wall s':>8} {'cpu s':>8} {'plain/x':>8} {'(cpu)':>7} {'x/floor':>8} {'(cpu)':>7} "
          f"{'ticket acc':>10}   chose; wall repeats")
    for name, median in medians.items():
        cpu = cpu_medians[name]
        vs_plain = f"{reference / median:.2f}x" if reference else "-"
        vs_plain_cpu = f"{cpu_reference / cpu:.2f}x" if cpu_reference else "-"
        reps = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"{name:<12} {median:>8.2f} {cpu:>8.2f} {vs_plain:>8} {vs_plain_cpu:>7} {median / floor:>7.2f}x "
              f"{cpu / floor:>6.2f}x {accuracy[name]:>10.4f}   {chose[name]}; {reps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
