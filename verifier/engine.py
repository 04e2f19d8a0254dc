"""How a verification's runs are trained: stacked (all runs as one batched model) or one after another.

Both use the client library only (``ticketclient.training.train`` or ``ticketclient.stacked``), so the
verifier retrains with exactly the code users run. The stacked engine is used where it reproduces the
recipe exactly (``ticketclient.stacked.supports(arch, recipe)``) and, on a CPU, the network is small enough
for stacking to pay (:func:`use_stacking`, measured: bench/RESULTS.md); the sequential one otherwise.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from verifier.config import VerifierSettings
from verifier.policy import SUPERMASK, TICKET

log = logging.getLogger(__name__)

#: Below this many forward multiply-adds per example a CPU worker trains all runs in one lane (see lanes()).
LANE_MIN_FORWARD_MACS = 20_000
#: Above this many forward multiply-adds per example a CPU worker trains runs one at a time instead of
#: stacked (see use_stacking(); measured by ``bench/bench_verification.py --sweep``, bench/RESULTS.md).
STACK_MAX_FORWARD_MACS = 400_000

ProgressCallback = Callable[[str, int, int, "float | None"], None]


class EngineStopped(Exception):
    """Raised inside a lane's training when the verification stopped (time limit, error in another lane)."""


@dataclass
class EvaluationOnly:
    """The result of an untrained evaluation (the supermask control), shaped like a TrainResult."""

    final_test_accuracy: float
    curve: list[dict[str, Any]] = field(default_factory=list)
    early_stop_iteration: int | None = None
    early_stop_test_accuracy: float | None = None
    iterations: int = 0
    wall_time_s: float = 0.0
    device: str = "cpu"


def lane_count(device: str, arch: Any, settings: VerifierSettings, runs: int) -> int:
    """Groups of runs trained at the same time, each in its own thread.

    On a GPU: one (stacking already fills it). On a CPU: ``VERIFIER_CPU_PARALLEL_RUNS`` when set, else one
    per torch CPU thread (``torch.get_num_threads()``: the worker's ``TICKETHUB_TORCH_THREADS``, never more
    lanes than threads, so a worker told to use one thread trains in one lane) for networks of at least
    ``LANE_MIN_FORWARD_MACS`` multiply-adds per example, and one for smaller ones, whose steps are so short
    that two threads only contend for the interpreter lock (bench/bench_verification.py).
    """
    if not str(device).startswith("cpu"):
        return 1
    if settings.cpu_parallel_runs:
        return max(1, min(settings.cpu_parallel_runs, runs))
    if int(getattr(arch, "forward_macs", 0) or 0) < LANE_MIN_FORWARD_MACS:
        return 1
    import torch

    return max(1, min(torch.get_num_threads(), runs))


def use_stacking(device: str, arch: Any, recipe: Any, wanted: bool | None) -> bool:
    """Whether the runs are trained stacked: never when ``ticketclient.stacked.supports(arch, recipe)`` is
    False (the sequential engine then gives ``training.train``'s semantics); when ``wanted`` is True or False,
    as told; when None (the deployed default), on a GPU always and on a CPU for networks of at most
    ``STACK_MAX_FORWARD_MACS`` multiply-adds per example: stacking measured 1.8-3.5x less CPU than one run at
    a time from MLP 100-100 up to MLP 1000-300 (343k) on one thread at 3.6% density (block-sparse products;
    1.3-1.9x before them, bench/RESULTS.md); wider networks, and
    conv nets above it (stacked as grouped convolutions), are unmeasured, so they train one at a time."""
    from ticketclient import stacked as stacked_mod

    if not stacked_mod.supports(arch, recipe):
        return False
    if wanted is not None:
        return bool(wanted)
    if not str(device).startswith("cpu"):
        return True
    return int(getattr(arch, "forward_macs", 0) or 0) <= STACK_MAX_FORWARD_MACS


class Engine:
    """Trains the planned runs of one verification of ``validated`` on ``task``."""

    def __init__(self, validated: Any, *, task: str, device: str, settings: VerifierSettings,
                 stacked: bool | None = None) -> None:
        from ticketclient import data

        self.validated = validated
        self.arch = validated.arch
        self.recipe = validated.config.recipe
        self.task = task
        self.device = device
        self.bundle = validated.bundle
        self.data = data.load(task)
        # an explicit ``stacked`` forces the schedule (benchmarks); settings.stacked=True lets the size decide
        wanted = stacked if stacked is not None else (None if settings.stacked else False)
        self.stacked = use_stacking(device, self.arch, self.recipe, wanted)
        self.settings = settings
        self.name = "stacked" if self.stacked else "sequential"

    def initial_state(self, run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(init, mask) of a planned run: the ticket's own, the dense parent's, or a control's."""
        return self.initial_state_of(self.bundle, run.role, run.control_seed)

    @staticmethod
    def initial_state_of(bundle: Any, role: str, control_seed: int | None = None,
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(init, mask) of ``role`` for ``bundle``: :func:`ticketclient.pruning.role_state`."""
        from ticketclient import pruning

        return pruning.role_state(bundle, role, control_seed)

    def density_of(self, mask: dict[str, Any]) -> float:
        from ticketclient import format

        return float(format.measure_density(mask)[0])

    def supermask(self) -> EvaluationOnly:
        from ticketclient import pruning

        started = time.perf_counter()
        acc = pruning.supermask_accuracy(self.bundle, self.data, device=self.device)
        accuracy = float(acc if isinstance(acc, int | float) else getattr(acc, "test_accuracy", acc))
        return EvaluationOnly(
            final_test_accuracy=accuracy,
            curve=[{"iteration": 0, "test_accuracy": accuracy}],
            wall_time_s=time.perf_counter() - started,
            device=self.device,
        )

    def lanes(self, runs: int) -> int:
        return lane_count(self.device, self.arch, self.settings, runs)

    def train(self, todo: list[Any], on_progress: ProgressCallback) -> Iterator[tuple[Any, Any, float]]:
        """Yield (planned run, result, density of its mask) as runs finish.

        The trained runs are split into lanes (round-robin); each lane is trained in its own thread, stacked
        or one run at a time, with torch's CPU threads divided between the lanes. Progress is reported from
        the calling thread only (it writes to the database).
        """
        trained = []
        for run in todo:
            if run.role == SUPERMASK:
                on_progress("supermask (untrained init)", 0, 0, None)
                yield run, self.supermask(), self.density_of(self.bundle.mask)
            else:
                trained.append(run)
        if not trained:
            return
        lanes = self.lanes(len(trained))
        groups = [trained[i::lanes] for i in range(lanes)]
        finished: queue.Queue[tuple[str, Any]] = queue.Queue()
        latest: dict[int, tuple[str, int, int, float | None]] = {}
        stop = threading.Event()

        def lane(index: int, group: list[Any]) -> None:
            def report(label: str, iteration: int, iterations: int, accuracy: float | None) -> None:
                if stop.is_set():
                    raise EngineStopped("the verification stopped")
                latest[index] = (label, iteration, iterations, accuracy)

            try:
                train_group = self._train_stacked if self.stacked else self._train_sequential
                for item in train_group(group, report, lane=(index, lanes)):
                    finished.put(("run", item))
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                finished.put(("error", e))
            finally:
                finished.put(("done", index))

        import torch

        threads_before = torch.get_num_threads()
        if lanes > 1:
            torch.set_num_threads(max(1, threads_before // lanes))
        workers = [threading.Thread(target=lane, args=(i, g), name=f"verify-lane-{i}", daemon=True)
                   for i, g in enumerate(groups)]
        try:
            for w in workers:
                w.start()
            running = len(workers)
            while running:
                try:
                    kind, payload = finished.get(timeout=0.5)
                except queue.Empty:
                    kind, payload = "tick", None
                if kind == "run":
                    yield payload
                elif kind == "error":
                    raise payload
                elif kind == "done":
                    running -= 1
                if latest:
                    label, iteration, iterations, accuracy = latest[min(latest)]
                    on_progress(label, iteration, iterations, accuracy)
        finally:
            stop.set()
            for w in workers:
                w.join()
            torch.set_num_threads(threads_before)

    def _train_sequential(self, runs: list[Any], on_progress: ProgressCallback,
                          lane: tuple[int, int] = (0, 1)) -> Iterator[tuple[Any, Any, float]]:
        from ticketclient import models, training

        for i, run in enumerate(runs):
            init, mask = self.initial_state(run)
            model = models.build_model(self.arch)
            models.load_tensors(model, init)
            label = f"{run.label} (run {i + 1} of {len(runs)} in lane {lane[0] + 1} of {lane[1]})"

            def on_eval(point: dict[str, Any], label: str = label) -> None:
                on_progress(label, int(point["iteration"]), int(self.recipe.iterations),
                            point.get("test_accuracy"))

            result = training.train(model, mask, self.data, self.recipe, seed=run.data_seed, device=self.device,
                                    progress=False, on_eval=on_eval)
            yield run, result, self.density_of(mask)

    def _train_stacked(self, runs: list[Any], on_progress: ProgressCallback,
                       lane: tuple[int, int] = (0, 1)) -> Iterator[tuple[Any, Any, float]]:
        from ticketclient import stacked

        states = [self.initial_state(r) for r in runs]
        label = (f"{len(runs)} runs trained together in lane {lane[0] + 1} of {lane[1]}: "
                 + ", ".join(r.label for r in runs))
        ticket_index = next((i for i, r in enumerate(runs) if r.role == TICKET), 0)

        def on_eval(index: int, point: dict[str, Any]) -> None:
            if index == ticket_index:
                on_progress(label[:200], int(point["iteration"]), int(self.recipe.iterations),
                            point.get("test_accuracy"))

        results = stacked.train_stacked(
            self.arch, [stacked.StackedRun(init=i, mask=m, seed=r.data_seed) for r, (i, m) in zip(runs, states, strict=True)],
            self.data, self.recipe, device=self.device, on_eval=on_eval,
        )
        for run, (_, mask), result in zip(runs, states, results, strict=True):
            yield run, result, self.density_of(mask)
