"""How a verification's runs are trained: stacked (all runs as one batched model) or one after another.

Both use the client library only (``ticketclient.training.train`` or ``ticketclient.stacked``), so the
verifier retrains with exactly the code users run. The stacked engine is used where the architecture
allows it (it measured faster: see bench/bench_verification.py); the sequential one otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from verifier.config import VerifierSettings
from verifier.policy import RANDOM_MASK, REINIT, SUPERMASK, TICKET

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int, "float | None"], None]


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


def control_seed(role: str, seed: int) -> int:
    """The seed of a control's fresh init or random mask: distinct per role, fixed per data-order seed."""
    return {REINIT: 1_000_003, RANDOM_MASK: 2_000_003}.get(role, 0) + seed


class Engine:
    """Trains the planned runs of one verification of ``validated`` on ``task``."""

    def __init__(self, validated: Any, *, task: str, device: str, settings: VerifierSettings,
                 stacked: bool | None = None) -> None:
        from ticketclient import data
        from ticketclient import stacked as stacked_mod

        self.validated = validated
        self.arch = validated.arch
        self.recipe = validated.config.recipe
        self.task = task
        self.device = device
        self.bundle = validated.bundle
        self.data = data.load(task)
        want = settings.stacked if stacked is None else stacked
        self.stacked = bool(want and stacked_mod.supports(self.arch))
        self.name = "stacked" if self.stacked else "sequential"

    def initial_state(self, role: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(init, mask) of a run: the ticket's own, or a control's."""
        return self.initial_state_of(self.bundle, role, seed)

    @staticmethod
    def initial_state_of(bundle: Any, role: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        from ticketclient import pruning

        if role == TICKET:
            return bundle.init, bundle.mask
        if role == REINIT:
            control = pruning.reinit_control(bundle, control_seed(role, seed))
        elif role == RANDOM_MASK:
            control = pruning.random_mask_control(bundle, control_seed(role, seed))
        else:
            raise ValueError(f"no initial state for role {role!r}")
        return control.init, control.mask

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

    def train(self, todo: list[Any], on_progress: ProgressCallback) -> Iterator[tuple[Any, Any, float]]:
        """Yield (planned run, result, density of its mask) as runs finish."""
        trained = []
        for run in todo:
            if run.role == SUPERMASK:
                on_progress("supermask (untrained init)", 0, 0, None)
                yield run, self.supermask(), self.density_of(self.bundle.mask)
            else:
                trained.append(run)
        if not trained:
            return
        if self.stacked:
            yield from self._train_stacked(trained, on_progress)
        else:
            yield from self._train_sequential(trained, on_progress)

    def _train_sequential(self, runs: list[Any], on_progress: ProgressCallback) -> Iterator[tuple[Any, Any, float]]:
        from ticketclient import models, training

        for i, run in enumerate(runs):
            init, mask = self.initial_state(run.role, run.seed)
            model = models.build_model(self.arch)
            models.load_tensors(model, init)
            label = f"{run.label} ({i + 1} of {len(runs)} left to train)"

            def on_eval(point: dict[str, Any], label: str = label) -> None:
                on_progress(label, int(point["iteration"]), int(self.recipe.iterations),
                            point.get("test_accuracy"))

            result = training.train(model, mask, self.data, self.recipe, seed=run.seed, device=self.device,
                                    progress=False, on_eval=on_eval)
            yield run, result, self.density_of(mask)

    def _train_stacked(self, runs: list[Any], on_progress: ProgressCallback) -> Iterator[tuple[Any, Any, float]]:
        from ticketclient import stacked

        states = [self.initial_state(r.role, r.seed) for r in runs]
        label = f"{len(runs)} runs trained together (" + ", ".join(r.label for r in runs) + ")"
        ticket_index = next((i for i, r in enumerate(runs) if r.role == TICKET), 0)

        def on_eval(index: int, point: dict[str, Any]) -> None:
            if index == ticket_index:
                on_progress(label[:200], int(point["iteration"]), int(self.recipe.iterations),
                            point.get("test_accuracy"))

        results = stacked.train_stacked(
            self.arch, [stacked.StackedRun(init=i, mask=m, seed=r.seed) for r, (i, m) in zip(runs, states, strict=True)],
            self.data, self.recipe, device=self.device, on_eval=on_eval,
        )
        for run, (_, mask), result in zip(runs, states, results, strict=True):
            yield run, result, self.density_of(mask)
