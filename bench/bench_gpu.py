"""The LeNet-300-100 paper recipe on a GPU: the hub's engine vs open_lth-style runs, and tickets per GPU-hour.

    python bench/bench_gpu.py                          # on a CUDA machine: the whole table in one command
    python bench/bench_gpu.py --device cpu --iterations 50 --train-size 600 --baseline-iterations 50 \
        --queue-iterations 20 --depths 1,2                                 # the CPU smoke run (tests/bench)

The job (``verifier.job.plan_runs``): LeNet-300-100 (``mlp`` 300,100 on 1x28x28 inputs, 10 classes), a
random mask at ``--density`` (3.6%) on a fresh init; the ticket, the dense parent, reinit and random mask x 3
seeds (12 trained runs) plus the supermask evaluation; Adam 1.2e-3, batch 60, ``--iterations`` (50,000),
test and validation accuracy every ``--eval-every`` (1,000); fp32 (TF32 switched off).

**The data is synthetic** (Gaussian inputs with labels from a fixed random linear teacher, MNIST's shapes:
55,000 / 5,000 / 10,000 by default): no dataset can be fetched on the device machine. Step times do not depend
on the pixel values; the accuracies printed only show that training ran.

Rows, each measured in this process:

* **open_lth-style**: one run at a time, ``torch.utils.data.DataLoader`` over a CPU dataset, each batch copied
  to the device, stock ``torch.optim.Adam``, the mask re-applied after each step
  (``bench_training.baseline_train``); timed on ``--baseline-iterations`` per run (2,000) and projected
  linearly to ``--iterations`` (a full one takes about 20 minutes on an H100, an estimate);
* **engine**: ``verifier.engine.Engine`` as deployed (on a GPU: all trained runs stacked, one lane; the
  optimizer keeps state for surviving weights only), the full ``--iterations`` unless
  ``--engine-iterations`` is set (then projected the same way);
* **queue depth D**: D distinct tickets of the same architecture and recipe, all 12 x D runs stacked in one
  ``ticketclient.stacked.train_stacked`` call (``bench_queue.train_queue_stacked``), timed on
  ``--queue-iterations`` (2,000) and projected; tickets per GPU-hour = 3600 x D / projected job wall.

No CUDA graphs: the stacked step reads the learning rate, gathers a batch by index and runs the
kept-weights optimizer with Python-side control flow; capturing it needs a static-buffer rewrite of
``ticketclient.stacked`` whose capture path cannot be exercised on a CPU, so it is left out (the note
measured 12.2 s a job with graphs vs 76 s eager on an H100). Projections assume a constant step time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "client" / "src"), str(ROOT / "bench")]

from bench_queue import InMemoryEngine, make_ticket, per_hour, settings_for, train_queue_stacked, uptime  # noqa: E402
from bench_training import baseline_train  # noqa: E402
from ticketclient import data, models, pruning, training  # noqa: E402

from verifier import engine as engine_mod  # noqa: E402
from verifier.job import plan_runs  # noqa: E402
from verifier.policy import SUPERMASK, TICKET  # noqa: E402

ARCHITECTURE = {"family": "mlp", "args": {"hidden": [300, 100]}}
INPUT_SHAPE = (1, 28, 28)
CLASSES = 10


def synthetic_mnist(train: int, val: int, test: int, seed: int = 0) -> data.TaskData:
    """MNIST-shaped float32 inputs [n, 1, 28, 28] and int64 labels from a fixed random linear teacher."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((784, CLASSES)).astype(np.float32)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((n, 784), dtype=np.float32)
        return x.reshape(n, *INPUT_SHAPE), np.ascontiguousarray((x @ teacher).argmax(1), dtype=np.int64)

    return data.TaskData(*split(train), *split(val), *split(test), task="mnist")


def recipe_dict(iterations: int, eval_every: int) -> dict[str, Any]:
    return {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "iterations": iterations, "eval_every": eval_every}


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_engine(validated: Any, task_data: Any, device: str, seeds: int) -> tuple[float, float, str]:
    """Wall time of one verification job by the verifier's engine, its ticket median accuracy, its choice."""
    sync(device)
    started = time.perf_counter()
    eng = InMemoryEngine(validated, task_data, device=device, settings=settings_for(seeds))
    runs = plan_runs(seeds)
    results = list(eng.train(runs, on_progress=lambda *a: None))
    sync(device)
    wall = time.perf_counter() - started
    acc = statistics.median(r.final_test_accuracy for run, r, _ in results if run.role == TICKET)
    return wall, acc, f"{eng.name}, {eng.lanes(sum(r.role != SUPERMASK for r in runs))} lane(s)"


def time_open_lth(validated: Any, task_data: Any, device: str, seeds: int) -> tuple[float, float]:
    """The same job one run at a time in a DataLoader loop (open_lth-style). (wall s, ticket median acc)."""
    sync(device)
    started = time.perf_counter()
    ticket_acc = []
    for run in plan_runs(seeds):
        if run.role == SUPERMASK:
            pruning.supermask_accuracy(validated.bundle, task_data, device=device)
            continue
        init, mask = engine_mod.Engine.initial_state_of(validated.bundle, run.role, run.control_seed)
        model = models.load_tensors(models.build_model(validated.arch), init)
        acc = baseline_train(model, {n: np.asarray(m, dtype=bool) for n, m in mask.items()}, task_data,
                             validated.config.recipe, seed=int(run.data_seed) % 2**63, device=torch.device(device))
        if run.role == TICKET:
            ticket_acc.append(acc)
    sync(device)
    return time.perf_counter() - started, statistics.median(ticket_acc)


def projected(wall: float, measured_iterations: int, iterations: int) -> float:
    return wall * iterations / max(1, measured_iterations)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument("--density", type=float, default=0.036)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=55_000)
    parser.add_argument("--val-size", type=int, default=5_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--engine-iterations", type=int, default=0, help="time the engine on this many (0: all)")
    parser.add_argument("--baseline-iterations", type=int, default=2_000, help="open_lth-style: timed iterations")
    parser.add_argument("--queue-iterations", type=int, default=2_000, help="queue depths: timed iterations")
    parser.add_argument("--depths", default="1,8,32")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads on a CPU device")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    depths = [int(d) for d in args.depths.split(",")]
    task_data = synthetic_mnist(args.train_size, args.val_size, args.test_size)
    full = args.iterations
    eval_every = min(args.eval_every, full)

    def ticket(seed: int, iterations: int) -> Any:
        return make_ticket("mnist", ARCHITECTURE, recipe_dict(iterations, min(eval_every, iterations)),
                           args.density, seed, input_shape=INPUT_SHAPE, num_classes=CLASSES)

    started = time.perf_counter()
    training.warm_up()
    # first CUDA context, cuBLAS handles and kernels: paid once per worker process, not per job
    train_queue_stacked([ticket(0, 5)], task_data, device, 1)  # (results, wall, cpu)
    warm_s = time.perf_counter() - started
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    print(f"bench_gpu: LeNet-300-100 (mlp 300,100; 1x28x28 -> 10), density {args.density:.1%}, "
          f"{4 * args.seeds} trained runs + supermask per ticket, Adam 1.2e-3, batch 60, {full:,} iterations, "
          f"eval every {eval_every:,}, fp32 (TF32 off); SYNTHETIC MNIST-shaped data "
          f"({args.train_size:,}/{args.val_size:,}/{args.test_size:,}); device {device} ({gpu}), torch "
          f"{torch.__version__}, torch threads {torch.get_num_threads()}; warm-up {warm_s:.2f} s; {uptime()}")

    rows: list[tuple[str, float, str, str]] = []  # (name, job wall s, how measured, note)
    if not args.skip_baseline:
        n = min(args.baseline_iterations, full)
        wall, acc = time_open_lth(ticket(0, n), task_data, device, args.seeds)
        rows.append(("open_lth-style", projected(wall, n, full), f"{wall:.2f} s for {n:,} it, projected",
                     f"ticket acc {acc:.3f} at {n:,} it"))
    n = args.engine_iterations or full
    wall, acc, how = time_engine(ticket(0, n), task_data, device, args.seeds)
    rows.append(("engine", projected(wall, n, full), f"{wall:.2f} s for {n:,} it" + (", projected" if n < full else ""),
                 f"{how}; ticket acc {acc:.3f}"))
    peaks: dict[int, float] = {}
    for depth in depths:
        n = min(args.queue_iterations, full)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        _, wall, _ = train_queue_stacked([ticket(seed, n) for seed in range(depth)], task_data, device, args.seeds)
        sync(device)
        if device.startswith("cuda"):
            peaks[depth] = torch.cuda.max_memory_allocated() / 2**30
        rows.append((f"queue depth {depth}", projected(wall, n, full), f"{wall:.2f} s for {n:,} it, projected",
                     f"{depth} tickets, {4 * args.seeds * depth} runs stacked"
                     + (f", peak {peaks[depth]:.2f} GiB" if depth in peaks else "")))

    baseline = rows[0][1] if not args.skip_baseline else None
    engine_wall = next(r[1] for r in rows if r[0] == "engine")
    per_h = "tickets/GPU-h" if device.startswith("cuda") else "tickets/h"
    print(f"{'schedule':<16} {'job wall s':>11} {'tickets':>7} {'s/ticket':>9} {per_h:>13} "
          f"{'vs open_lth':>11} {'vs engine':>9}   measured; note")
    for name, wall, measured, note in rows:
        tickets = int(name.rsplit(" ", 1)[1]) if name.startswith("queue") else 1
        vs_base = f"{baseline / (wall / tickets):.1f}x" if baseline else "-"
        vs_engine = f"{engine_wall / (wall / tickets):.2f}x"
        print(f"{name:<16} {wall:>11.2f} {tickets:>7} {wall / tickets:>9.2f} {per_hour(tickets, wall):>13.0f} "
              f"{vs_base:>11} {vs_engine:>9}   {measured}; {note}")
    print("ratios are per ticket (s/ticket of the baseline or the engine over this row's); "
          f"{per_h} = 3600 x tickets / job wall{' (device is not a GPU: a CPU figure)' if device == 'cpu' else ''}")
    print(f"after: {uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
