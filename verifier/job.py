"""The verification job for one Verification record (runs in a worker; imports torch lazily).

1. Claim the record (one live worker per verification; a redelivery after a lost worker takes over).
2. Load the revision's three files from storage and validate them fully (a BundleError rejects, once).
3. Run what is not finished yet: the supermask evaluation, then the ticket, its dense parent and the
   controls (same mask + fresh init, random mask of the same per-layer counts), each with the N data-order
   seeds drawn (``secrets``) when the verification first ran and kept on the record for redeliveries.
   Every finished run is saved at once (unique per role and run index), so a redelivery skips it.
4. Apply the policy (ticketclient.policy); the ``own`` verification sets the revision's status
   (verified/rejected), a ``transfer`` verification never does. The seeds become visible with the result.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import time
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from registry.verifications.exceptions import AnotherWorkerIsRunning
from verifier.config import VerifierSettings, get_settings
from verifier.errors import TRANSIENT_ERRORS
from verifier.policy import (
    RANDOM_MASK,
    REINIT,
    SUPERMASK,
    TRAINED_ROLES,
    VerificationPolicy,
    draw_seeds,
    policy_from_settings,
)

log = logging.getLogger(__name__)

#: Seconds between progress writes to the database while a run trains.
PROGRESS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class PlannedRun:
    """One run of a verification: its role, its index K within the role and the seeds it trains with."""

    role: str
    seed: int
    data_seed: int | None = None
    control_seed: int | None = None

    @property
    def label(self) -> str:
        return f"{self.role} run {self.seed}"


def plan_runs(seeds: int | dict[str, list[int]]) -> list[PlannedRun]:
    """Every run of a verification, in the order they are trained (supermask first: it is cheap).

    ``seeds`` is a verification's drawn seeds (:func:`ticketclient.policy.draw_seeds`), or a count, which
    draws fresh ones (benchmarks).
    """
    drawn = draw_seeds(seeds) if isinstance(seeds, int) else seeds
    data_order = [int(s) for s in drawn["data_order"]]
    plan = [PlannedRun(SUPERMASK, 0)]
    for role in TRAINED_ROLES:
        control = drawn.get(role) if role in (REINIT, RANDOM_MASK) else None
        plan += [PlannedRun(role, k, data_seed=s, control_seed=int(control[k]) if control else None)
                 for k, s in enumerate(data_order)]
    return plan


def _services() -> Any:
    """registry.verifications.services: every write to the verification tables (imported once Django is set
    up: the worker's process does it; benchmarks import this module without Django)."""
    from registry.verifications import services

    return services


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def library_versions() -> dict[str, str]:
    import numpy
    import ticketclient
    import torch

    versions = {
        "ticketclient": ticketclient.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        versions["cuda"] = str(torch.version.cuda)
        versions["gpu"] = torch.cuda.get_device_name()
    return versions


def pick_device() -> str:
    import torch

    if torch.cuda.is_available():
        from billiard.process import current_process

        index = getattr(current_process(), "index", 0) or 0
        return f"cuda:{index % torch.cuda.device_count()}"
    return "cpu"


# --- claiming and finishing --------------------------------------------------------------------------


def claim(verification_id: int, settings: VerifierSettings, policy: VerificationPolicy, *,
          transient_retries: int = 0) -> Any | None:
    """Mark the verification running under this worker; None when there is nothing left to do
    (:func:`registry.verifications.services.claim`)."""
    return _services().claim(verification_id, worker=worker_identity(), policy=policy,
                          heartbeat_stale_s=settings.heartbeat_stale_s, max_attempts=settings.max_attempts,
                          transient_retries=transient_retries)


def _finish(v: Any, *, verified: bool, reason: str, decision: Any | None = None, error_code: str = "",
            verified_accuracy: float | None = None) -> None:
    _services().finish(v, verified=verified, reason=reason, decision=decision, error_code=error_code,
                    verified_accuracy=verified_accuracy)


def fail(v: Any, *, code: str, reason: str, detail: str) -> None:
    """End a verification as ``failed`` (:func:`registry.verifications.services.fail`)."""
    _services().fail(v, code=code, reason=reason, detail=detail)


def error_detail(e: BaseException) -> str:
    """The operator's summary of an exception: its type, message and the last frames of its traceback."""
    import traceback

    frames = traceback.format_exception(type(e), e, e.__traceback__, limit=-12)
    return "".join(frames)[-8000:]


def fail_time_limit(verification_id: int) -> None:
    from registry.verifications.models import Verification

    v = Verification.objects.select_related("revision").get(pk=verification_id)
    _finish(v, verified=False, error_code="time_limit", reason=(
        f"Verification exceeded its time limit of {v.soft_time_limit_s or 0:.0f} s, derived from the recipe's "
        f"training budget; the runs finished so far are kept."
    ))


# --- progress -----------------------------------------------------------------------------------------


class Progress:
    """Throttled progress writes: run i of n, iteration, current accuracy, heartbeat."""

    def __init__(self, verification_id: int, runs_total: int, runs_done: int) -> None:
        self.verification_id = verification_id
        self.runs_total = runs_total
        self.runs_done = runs_done
        self._last = 0.0

    def write(self, *, force: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        _services().record_progress(self.verification_id, runs_total=self.runs_total, runs_done=self.runs_done,
                                 **fields)

    def run_finished(self, count: int = 1) -> None:
        self.runs_done += count
        self.write(force=True)


# --- the job ------------------------------------------------------------------------------------------


def load_bundle_bytes(revision: Any) -> dict[str, bytes]:
    """The revision's three files from storage, checked against their recorded sha256."""
    from ticketclient.errors import BundleError

    from registry.tickets.blobs import read_blob, sha256_hex

    files = {f.path: f for f in revision.files.all()}
    out: dict[str, bytes] = {}
    for path, key in (("config.json", "config"), ("init.safetensors", "init"), ("mask.safetensors", "mask")):
        if path not in files:
            raise BundleError("missing_file", path, f"the revision has no {path}")
        data = read_blob(files[path].sha256)
        if sha256_hex(data) != files[path].sha256:
            raise BundleError("checksum_mismatch", path, f"the stored {path} no longer matches its recorded "
                              f"sha256 {files[path].sha256}; the file cannot be verified")
        out[key] = data
    return out


def save_run(v: Any, run: PlannedRun, result: Any, *, density: float, device: str, engine: str,
             versions: dict[str, str]) -> bool:
    """Record one finished run; False if it was already recorded (a duplicate delivery won the race)."""
    defaults = {
        "data_seed": run.data_seed,
        "control_seed": run.control_seed,
        "final_test_accuracy": float(result.final_test_accuracy),
        "final_test_loss": _last(result.curve, "test_loss"),
        "final_val_accuracy": _last(result.curve, "val_accuracy"),
        "early_stop_iteration": result.early_stop_iteration,
        "early_stop_test_accuracy": result.early_stop_test_accuracy,
        "iterations": int(result.iterations),
        "curve": [_jsonable(point) for point in result.curve],
        "density": density,
        "device": device,
        "engine": engine,
        "wall_time_s": float(result.wall_time_s),
        "versions": versions,
    }
    return _services().record_run(v.pk, role=run.role, seed=run.seed, fields=defaults)


def _last(curve: list[dict[str, Any]], key: str) -> float | None:
    return _finite(curve[-1][key]) if curve and curve[-1].get(key) is not None else None


def _finite(x: Any) -> float | None:
    """A float, or None for inf/NaN (a diverged run: JSON and the API refuse non-finite numbers)."""
    import math

    value = float(x)
    return value if math.isfinite(value) else None


def _jsonable(point: dict[str, Any]) -> dict[str, Any]:
    return {k: (_finite(x) if isinstance(x, float) or getattr(getattr(x, "dtype", None), "kind", "") == "f" else x)
            for k, x in point.items()}


def run(verification_id: int, *, attempt_id: str = "", redelivered: bool = False, transient_retries: int = 0) -> str:
    """Run (or finish) one verification. Returns a one-word outcome for the task log."""
    from ticketclient.errors import BundleError

    settings = get_settings()
    policy = policy_from_settings(settings)
    v = claim(verification_id, settings, policy, transient_retries=transient_retries)
    if v is None:
        return "already finished"
    log.info("verification %s (revision %s, %s on %s): attempt %s%s", v.pk, v.revision_id, v.kind, v.task,
             v.attempts, " (redelivered)" if redelivered else "")
    try:
        return _verify(v, settings, policy)
    except BundleError as e:
        # The ticket's fault: rejected once, with the reason, never retried.
        _finish(v, verified=False, error_code=e.code, reason=f"The bundle is invalid: {e}")
        return "rejected"
    except (SoftTimeLimitExceeded, *TRANSIENT_ERRORS):
        raise  # time limit: the task rejects; transient: retried by the task with backoff; finished runs are kept
    except Exception as e:
        # Neither the ticket's fault nor transient: deterministic, so retrying would fail the same way. The
        # verification ends as failed (the submitter's sentence, the operator's traceback), logged.
        log.exception("verification %s failed", v.pk)
        fail(v, code="internal_error", reason=(
            "The hub could not finish this verification because of an internal error on the verifier "
            "(not a problem with your ticket). The operators have the details and can requeue it."
        ), detail=f"attempt {v.attempts} on {worker_identity()}: {error_detail(e)}")
        return "failed"


def _verify(v: Any, settings: VerifierSettings, policy: VerificationPolicy) -> str:
    from ticketclient import validation

    from verifier import engine

    files = load_bundle_bytes(v.revision)
    validated = validation.validate_bundle(**files, limits=validation.Limits.from_env())
    from registry.verifications.models import Verification

    transfer = v.kind == Verification.Kind.TRANSFER
    claims = validated.config.claims
    if transfer:  # the config's claims are about its own task; a transfer request may state its own
        claimed_accuracy, claimed_density = v.claimed_accuracy, None
    else:
        claimed_accuracy = claims.test_accuracy
        claimed_density = claims.density
    _services().record_facts(v.pk, claimed_accuracy=claimed_accuracy, claimed_density=claimed_density,
                          measured_density=validated.density)

    plan = plan_runs(v.seeds)
    done = {(r.role, r.seed) for r in v.runs.all()}
    todo = [r for r in plan if (r.role, r.seed) not in done]
    progress = Progress(v.pk, runs_total=len(plan), runs_done=len(plan) - len(todo))
    progress.write(force=True)

    if todo:
        device = pick_device()
        eng = engine.Engine(validated, task=v.task, device=device, settings=settings)
        _services().record_facts(v.pk, device=device, engine=eng.name)
        versions = library_versions()

        def on_progress(label: str, iteration: int, iterations: int, accuracy: float | None) -> None:
            # the first and last evaluation of a run are always written; the others at most once a second
            progress.write(force=iteration in (0, iterations), current_run=label, current_iteration=iteration,
                           current_iterations_total=iterations, current_accuracy=accuracy)

        for run, result, density in eng.train(todo, on_progress=on_progress):
            save_run(v, run, result, density=density, device=device, engine=eng.name, versions=versions)
            progress.run_finished()

    runs: dict[str, list[float]] = {}
    for r in v.runs.all():
        runs.setdefault(r.role, []).append(r.final_test_accuracy)
    decision = policy.decide(task=v.task, runs=runs, claimed_accuracy=claimed_accuracy, transfer=transfer,
                             claim_runs=None if transfer else claims.runs)
    _finish(v, verified=decision.verified, reason=decision.reason, decision=decision,
            verified_accuracy=decision.ticket_statistic)
    return "verified" if decision.verified else "rejected"


__all__ = ["AnotherWorkerIsRunning", "PlannedRun", "plan_runs", "run", "fail_time_limit", "RANDOM_MASK", "REINIT"]
