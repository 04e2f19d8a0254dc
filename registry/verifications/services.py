"""Every write to the verification tables: the transfer request (web) and, for the workers, claim, progress,
runs, finish and fail (verifier.job calls these; it never writes the rows itself). Creating a record and
sending its message: :mod:`registry.verifications.dispatch`."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from registry.common.errors import ApiError
from registry.verifications.dispatch import (
    enqueue_on_commit,
    get_or_create_verification,
    queue_own_verification,
    send_verification,
)
from registry.verifications.exceptions import AnotherWorkerIsRunning
from registry.verifications.models import Verification
from registry.verifications.selectors import is_admin


def request_transfer(*, user: Any, revision: Any, task_name: str,
                     claimed_accuracy: float | None = None) -> tuple[Verification, bool]:
    """Ask the verifier to verify ``revision`` on another task with the same input shape.

    Only the ticket's owner or an admin may ask; the revision must be verified on its own task. Returns
    ``(verification, created)``; asking again for the same task returns the existing record.
    """
    from registry.tickets.models import Task

    ticket = revision.ticket
    if not (user.is_authenticated and (ticket.owner_id == user.pk or is_admin(user))):
        raise ApiError("permission_denied", "Only the ticket's owner or an admin may request a transfer "
                       "verification.", status_code=403)
    if revision.status != "verified":
        raise ApiError("not_verified", f"Revision {revision.commit} is {revision.status}; only a revision "
                       "verified on its own task can be verified on another task.", status_code=409)
    target = Task.objects.filter(name=task_name).first()
    if target is None:
        known = ", ".join(Task.objects.values_list("name", flat=True)) or "none"
        raise ApiError("unknown_task", f"No task named {task_name!r} (known: {known}).", field="task")
    own = ticket.task
    if target.pk == own.pk:
        raise ApiError("same_task", f"{task_name!r} is the ticket's own task; its own verification covers it.",
                       field="task")
    if list(target.input_shape) != list(own.input_shape) or target.num_classes != own.num_classes:
        raise ApiError(
            "shape_mismatch",
            f"{task_name!r} takes inputs of shape {list(target.input_shape)} with {target.num_classes} classes; "
            f"the ticket's task {own.name!r} takes {list(own.input_shape)} with {own.num_classes} classes. "
            "A transfer needs the same input shape and number of classes.",
            field="task",
        )
    if claimed_accuracy is not None and not 0.0 <= claimed_accuracy <= 1.0:
        raise ApiError("invalid", "claimed_accuracy is a fraction in [0, 1].", field="claimed_accuracy")
    existing = Verification.objects.filter(revision=revision, task=target.name, kind=Verification.Kind.TRANSFER)
    if existing.exists():
        return existing.get(), False
    with transaction.atomic():
        verification = get_or_create_verification(revision, task=target.name, kind=Verification.Kind.TRANSFER,
                                                  requested_by=user)
        if claimed_accuracy is not None:
            Verification.objects.filter(pk=verification.pk).update(claimed_accuracy=claimed_accuracy)
            verification.claimed_accuracy = claimed_accuracy
        enqueue_on_commit(verification)
    return verification, True


# --- writes from the verifier's workers (every write to the verification tables goes through here) --------


def _set_revision_status(revision_id: int, status: str, verified_accuracy: float | None = None) -> None:
    from registry.tickets import services as ticket_services

    ticket_services.set_revision_status(revision_id, status, verified_accuracy=verified_accuracy)


def claim(verification_id: int, *, worker: str, policy: Any, heartbeat_stale_s: float, max_attempts: int,
          transient_retries: int = 0) -> Verification | None:
    """Mark the verification running under ``worker``; None when there is nothing left to do.

    Every delivery that takes the job counts as an attempt (a long-lived worker that keeps failing runs out
    of attempts too); the task's own retries after a transient error (``transient_retries``) are not held
    against ``max_attempts``. The seeds are drawn (``ticketclient.policy.draw_seeds``) the first time only, so
    a redelivery trains the same runs.
    """
    from datetime import timedelta

    from django.utils import timezone
    from ticketclient.policy import draw_seeds

    with transaction.atomic():
        v = Verification.objects.select_for_update().select_related("revision").get(pk=verification_id)
        if v.finished:
            return None
        now = timezone.now()
        if v.status == Verification.Status.RUNNING and v.worker and v.worker != worker and v.heartbeat_at:
            age = (now - v.heartbeat_at).total_seconds()
            if age < heartbeat_stale_s:
                raise AnotherWorkerIsRunning(heartbeat_stale_s - age + 1.0)
        v.attempts += 1
        if v.attempts - transient_retries > max_attempts:
            fail(v, code="worker_lost", reason=(
                f"The hub could not finish this verification: it was started {v.attempts - 1} times and did not "
                f"finish (a worker was lost or crashed). This is not a problem with your ticket; an operator can "
                f"requeue it."
            ), detail=(
                f"gave up after {max_attempts} attempts ({v.attempts - 1} deliveries, {transient_retries} "
                f"transient retries); last worker {v.worker or '-'}; last error: {v.error_detail or v.reason or '-'}"
            ))
            return None
        v.status = Verification.Status.RUNNING
        v.worker = worker
        v.started_at = v.started_at or now
        v.heartbeat_at = now
        v.policy = policy.as_dict(v.task)
        if len(v.seeds.get("data_order", [])) != policy.seeds:
            v.seeds = draw_seeds(policy.seeds)
        if v.time_limit_s:
            v.deadline_at = now + timedelta(seconds=v.time_limit_s)
        v.save()
        if v.kind == Verification.Kind.OWN:
            _set_revision_status(v.revision_id, "verifying")
        return v


def finish(v: Verification, *, verified: bool, reason: str, decision: Any | None = None, error_code: str = "",
           verified_accuracy: float | None = None) -> None:
    """Write the outcome of a verification (``decision``: a ``ticketclient.policy.Decision``)."""
    from django.utils import timezone

    with transaction.atomic():
        locked = Verification.objects.select_for_update().get(pk=v.pk)
        if locked.finished:
            return
        locked.status = Verification.Status.VERIFIED if verified else Verification.Status.REJECTED
        locked.reason = reason
        locked.error_code = error_code
        locked.decision = decision.as_dict() if decision is not None else {}
        locked.outcome = decision.outcome if decision is not None else Verification.Outcome.REJECTED
        locked.winning = decision.winning if decision is not None and verified else None  # none if rejected
        locked.matching = decision.matching if decision is not None else None
        locked.beats_controls = decision.beats_controls if decision is not None else None
        locked.finished_at = timezone.now()
        locked.current_run = ""
        locked.runs_done = locked.runs.count()
        locked.save()
        if locked.kind == Verification.Kind.OWN:
            _set_revision_status(locked.revision_id, "verified" if verified else "rejected",
                                 verified_accuracy=verified_accuracy if verified else None)


def fail(v: Verification, *, code: str, reason: str, detail: str) -> None:
    """End a verification as ``failed``: the hub could not finish it (not the ticket's fault).

    ``reason`` is a sentence for the submitter, ``detail`` the operator's details (exception, traceback
    summary). The revision goes back to ``pending`` (neither published nor rejected; a moderator's requeue
    verifies it afresh).
    """
    import logging

    from django.utils import timezone

    with transaction.atomic():
        locked = Verification.objects.select_for_update().get(pk=v.pk)
        if locked.finished:
            return
        locked.status = Verification.Status.FAILED
        locked.outcome = Verification.Outcome.FAILED
        locked.reason = reason
        locked.error_code = code
        locked.error_detail = detail[:20_000]
        locked.winning = None
        locked.finished_at = timezone.now()
        locked.current_run = ""
        locked.runs_done = locked.runs.count()
        locked.save()
        if locked.kind == Verification.Kind.OWN:
            _set_revision_status(locked.revision_id, "pending")
    logging.getLogger("verifier.job").error("verification %s failed (%s): %s", v.pk, code, detail)


def record_progress(verification_id: int, **fields: Any) -> None:
    """Progress of a running verification (run i of n, iteration, accuracy), with a heartbeat."""
    from django.utils import timezone

    Verification.objects.filter(pk=verification_id).update(heartbeat_at=timezone.now(), **fields)


def record_heartbeat(verification_id: int, *, worker: str) -> int:
    """The heartbeat of the worker holding a running verification; 0 when it no longer holds it."""
    from django.utils import timezone

    return Verification.objects.filter(pk=verification_id, status=Verification.Status.RUNNING,
                                       worker=worker).update(heartbeat_at=timezone.now())


def record_facts(verification_id: int, **fields: Any) -> None:
    """What the worker measured before training: claims read from the config, measured density, device."""
    allowed = {"claimed_accuracy", "claimed_density", "measured_density", "device", "engine", "reason",
               "error_code", "error_detail"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not a verification fact: {', '.join(sorted(unknown))}")
    Verification.objects.filter(pk=verification_id).update(**fields)


def record_run(verification_id: int, *, role: str, seed: int, fields: dict[str, Any]) -> bool:
    """One finished run; False if it was already recorded (a duplicate delivery won the race)."""
    from registry.verifications.models import VerificationRun

    _, created = VerificationRun.objects.get_or_create(verification_id=verification_id, role=role, seed=seed,
                                                       defaults=fields)
    return created


def resume_unfinished() -> list[int]:
    """Release every unfinished verification and send it again; returns their ids.

    Only where no verifier worker can be running (the local run at start-up, on its own locked state
    folder): a ``running`` record's worker is gone, so its heartbeat is cleared. A pending revision without
    any record (rows older than the one-hop submit path) gets its own first.
    """
    from registry.tickets.models import Revision

    for revision in Revision.objects.filter(status="pending", verifications__isnull=True).select_related("ticket__task"):
        queue_own_verification(revision)
    resumed: list[int] = []
    for v in Verification.objects.exclude(status__in=Verification.FINISHED):
        Verification.objects.filter(pk=v.pk).update(heartbeat_at=None)
        v.heartbeat_at = None
        send_verification(v, force=True)
        resumed.append(v.pk)
    return resumed
