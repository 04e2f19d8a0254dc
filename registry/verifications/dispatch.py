"""Creating verification records and sending their one job message, with time limits (torch-free).

One submission, one broker hop: the submit (or requeue) transaction creates the revision's own record with
:func:`queue_own_verification` (status ``queued``) and :func:`enqueue_on_commit` sends
``verifier.run_verification(verification_id)`` once it commits. The transfer request
(``registry.verifications.services``) does the same for its record; the verifier's sweeper resends what
the broker lost with :func:`send_verification`. It lives in the registry because the web process uses it
and must not import the verifier. Models are imported inside the functions: the verifier's sweeper module
imports this one before Django's apps are ready.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from ticketclient.policy import TRAINED_ROLES

from registry.celery_client import send_run_verification, try_send_run_verification
from registry.verifications.budget import TimeLimits, estimate_macs, time_limits
from registry.verifications.config import get_settings

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from registry.tickets.models import Revision
    from registry.verifications.models import Verification

log = logging.getLogger(__name__)


def limits_for(revision: Revision, task: str | None = None) -> TimeLimits:
    """Time limits of a verification of ``revision`` from its recipe and its forward multiply-adds."""
    settings = get_settings()
    recipe = (revision.config or {}).get("recipe", {})
    budget = revision.budget or {}
    forward_macs = int(budget.get("forward_macs") or budget.get("macs") or budget.get("multiply_adds") or 0)
    if not forward_macs:  # fall back to a dense estimate: every parameter used once per example
        forward_macs = int(revision.num_parameters or 0)
    macs = estimate_macs(
        forward_macs=forward_macs,
        iterations=int(recipe.get("iterations") or budget.get("iterations") or 0),
        batch_size=int(recipe.get("batch_size") or 1),
        eval_every=int(recipe.get("eval_every") or 1000),
        trained_runs=settings.seeds * len(TRAINED_ROLES),
        eval_examples=_eval_examples(task or own_task(revision)),
    )
    return time_limits(macs, settings)


def own_task(revision: Revision) -> str:
    """The task a revision is verified on first: its config's, else its ticket's."""
    return (revision.config or {}).get("task") or revision.ticket.task.name


def _eval_examples(task: str) -> int:
    from registry.tickets.models import Task

    row = Task.objects.filter(name=task).first()
    extra = (row.extra if row else {}) or {}
    splits = extra.get("splits") or {}
    n = sum(int(splits.get(k) or 0) for k in ("val", "test", "validation"))
    return n or 20_000


def get_or_create_verification(revision: Revision, *, task: str, kind: str,
                               requested_by: User | None = None) -> Verification:
    """The verification of (revision, task, kind), created with its time limits if it is new."""
    from registry.verifications.models import Verification

    existing = Verification.objects.filter(revision=revision, task=task, kind=kind).first()
    if existing is not None:
        return existing
    limits = limits_for(revision, task)
    try:
        with transaction.atomic():
            return Verification.objects.create(
                revision=revision, task=task, kind=kind, requested_by=requested_by,
                soft_time_limit_s=limits.soft_s, time_limit_s=limits.hard_s,
            )
    except IntegrityError:  # a concurrent delivery created it first
        return Verification.objects.get(revision=revision, task=task, kind=kind)


def resend_after_s(verification: Verification) -> float:
    """A job message is sent again only when the last one is older than its hard limit plus the grace."""
    return float(verification.time_limit_s or 0) + get_settings().heartbeat_stale_s


def _stamp_enqueued(verification: Verification, *, force: bool) -> bool:
    """Record that a message is being sent now; False (send nothing) when one was sent recently, unless
    ``force``: a queued message may wait behind long jobs, and duplicates would only be skipped by the job."""
    from registry.verifications.models import Verification

    now = timezone.now()
    rows = Verification.objects.filter(pk=verification.pk)
    if not force:
        cutoff = now - timedelta(seconds=resend_after_s(verification))
        rows = rows.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff))
    return bool(rows.update(enqueued_at=now))


def send_verification(verification: Verification, *, force: bool = False) -> bool:
    """Send the verification's ``verifier.run_verification`` message now (the sweeper's resend).

    Returns False (and sends nothing) when a message was sent recently, unless ``force``. Raises when the
    broker cannot take the message (the sweep task retries).
    """
    if not _stamp_enqueued(verification, force=force):
        return False
    send_run_verification(verification.pk, soft_time_limit_s=verification.soft_time_limit_s,
                          time_limit_s=verification.time_limit_s)
    return True


def enqueue_on_commit(verification: Verification) -> None:
    """Send the verification's message once the current transaction commits (nothing if it rolls back).

    Never fails the caller: when the broker is unreachable the record stays ``queued`` with no message
    stamped, and the sweeper sends it (:func:`registry.celery_client.try_send_run_verification`).
    """
    from registry.verifications.models import Verification

    def send() -> None:
        if not _stamp_enqueued(verification, force=True):
            return
        if not try_send_run_verification(verification.pk, soft_time_limit_s=verification.soft_time_limit_s,
                                         time_limit_s=verification.time_limit_s):
            Verification.objects.filter(pk=verification.pk).update(enqueued_at=None)

    transaction.on_commit(send, robust=True)


def queue_own_verification(revision: Revision) -> Verification:
    """The revision's own verification, ``queued``: created if new, reset if it had finished (a moderator's
    requeue). Call inside the transaction that stores or requeues the revision, then
    :func:`enqueue_on_commit`.
    """
    verification = get_or_create_verification(revision, task=own_task(revision), kind="own")
    if verification.finished and revision.status == "pending":
        verification = reset_verification(verification)
    return verification


def reset_verification(verification: Verification) -> Verification:
    """Forget a finished verification's runs and outcome so that it runs again from scratch."""
    from registry.verifications.models import Verification

    with transaction.atomic():
        v = Verification.objects.select_for_update().get(pk=verification.pk)
        v.runs.all().delete()
        limits = limits_for(v.revision, v.task)
        fresh: dict[str, Any] = {
            "status": Verification.Status.QUEUED, "decision": {}, "reason": "", "error_code": "", "winning": None,
            "matching": None, "beats_controls": None, "outcome": "", "seeds": {}, "error_detail": "",
            "runs_done": 0, "runs_total": 0, "current_run": "", "current_iteration": None,
            "current_accuracy": None, "heartbeat_at": None, "attempts": 0, "worker": "", "started_at": None,
            "finished_at": None, "deadline_at": None, "policy": {}, "soft_time_limit_s": limits.soft_s,
            "time_limit_s": limits.hard_s,
        }
        for name, value in fresh.items():
            setattr(v, name, value)
        v.save()
    return v
