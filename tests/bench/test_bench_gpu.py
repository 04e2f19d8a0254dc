"""bench/bench_gpu.py and bench/bench_queue.py run on a CPU with a tiny recipe and print their tables.

No timing is asserted (benchmarks print ratios; tests only check that they run and what they print).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench_gpu  # noqa: E402
import bench_queue  # noqa: E402

TINY = ["--device", "cpu", "--iterations", "50", "--eval-every", "25", "--train-size", "300", "--val-size", "60",
        "--test-size", "60", "--baseline-iterations", "50", "--queue-iterations", "10", "--depths", "1,2"]


def test_bench_gpu_runs_on_cpu_and_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_gpu.main(TINY) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC MNIST-shaped data" in out
    assert "device cpu" in out and "a CPU figure" in out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()
            if line.startswith(("open_lth-style", "engine", "queue depth"))}
    assert set(rows) == {"open_lth-style", "engine", "queue depth 1", "queue depth 2"}
    assert "24 runs stacked" in rows["queue depth 2"]
    assert "stacked, 1 lane(s)" in rows["engine"]


def test_synthetic_mnist_has_mnist_shapes_and_every_class() -> None:
    d = bench_gpu.synthetic_mnist(500, 50, 50)
    assert d.x_train.shape == (500, 1, 28, 28) and d.x_train.dtype.name == "float32"
    assert d.y_test.dtype.name == "int64" and set(d.y_train.tolist()) == set(range(10))


def test_stacked_queue_keeps_each_tickets_runs_apart() -> None:
    """Every ticket gets its own 12 trained runs + supermask, each run trained from that ticket's own tensors."""
    recipe = {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "iterations": 5, "eval_every": 5}
    arch = {"family": "mlp", "args": {"hidden": [16]}}
    tickets = [bench_queue.make_ticket("mnist1d", arch, recipe, 0.2, seed) for seed in (0, 1)]
    name = tickets[0].arch.prunable[0]
    assert (tickets[0].bundle.mask[name] != tickets[1].bundle.mask[name]).any()
    task_data = bench_gpu.synthetic_mnist(120, 60, 60)
    task_data = type(task_data)(task_data.x_train.reshape(120, -1)[:, :40], task_data.y_train,
                                task_data.x_val.reshape(60, -1)[:, :40], task_data.y_val,
                                task_data.x_test.reshape(60, -1)[:, :40], task_data.y_test, task="mnist1d")
    per_ticket, wall, _ = bench_queue.train_queue_stacked(tickets, task_data, "cpu", 3)
    assert wall > 0 and len(per_ticket) == 2
    for pairs in per_ticket:
        roles = sorted(run.role for run, _ in pairs)
        assert roles.count("ticket") == 3 and roles.count("supermask") == 1 and len(pairs) == 13
    other = bench_queue.make_ticket("mnist1d", {**arch, "args": {"hidden": [8]}}, recipe, 0.2, 2)
    with pytest.raises(ValueError, match="share"):
        bench_queue.train_queue_stacked([tickets[0], other], task_data, "cpu", 1)
