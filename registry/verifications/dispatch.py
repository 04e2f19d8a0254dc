"""Creating verification records and enqueueing their jobs with time limits (torch-free).

Used by the ``verifier.verify_revision`` task (what the registry enqueues on every new revision), by the
transfer-verification request of the web API (``registry.verifications.services``), and by the verifier's
sweeper. It lives in the registry because the web process uses it and must not import the verifier.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from ticketclient.policy import TRAINED_ROLES

from registry.verifications.budget import TimeLimits, estimate_macs, time_limits
from registry.verifications.config import get_settings

log = logging.getLogger(__name__)


def limits_for(revision: Any, task: str | None = None) -> TimeLimits:
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


def own_task(revision: Any) -> str:
    return (revision.config or {}).get("task") or revision.ticket.task.name


def _eval_examples(task: str) -> int:
    from registry.tickets.models import Task

    row = Task.objects.filter(name=task).first()
    extra = (row.extra if row else {}) or {}
    splits = extra.get("splits") or {}
    n = sum(int(splits.get(k) or 0) for k in ("val", "test", "validation"))
    return n or 20_000


def get_or_create_verification(revision: Any, *, task: str, kind: str, requested_by: Any = None) -> Any:
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


def resend_after_s(verification: Any) -> float:
    """A job message is sent again only when the last one is older than its hard limit plus the grace."""
    return float(verification.time_limit_s or 0) + get_settings().heartbeat_stale_s


def enqueue_verification(verification: Any, *, force: bool = False) -> bool:
    """Send ``verifier.run_verification`` with the verification's soft and hard time limits.

    Returns False (and sends nothing) when a message was sent recently: a queued message may wait behind
    long jobs, and duplicates would only be skipped by the job.
    """
    from registry.celery_client import celery_app
    from registry.verifications.models import Verification

    settings = get_settings()
    now = timezone.now()
    cutoff = now - timedelta(seconds=resend_after_s(verification))
    if not force:
        claimed = Verification.objects.filter(pk=verification.pk).filter(
            Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff)
        ).update(enqueued_at=now)
        if not claimed:
            return False
    else:
        Verification.objects.filter(pk=verification.pk).update(enqueued_at=now)
    # The registry's producer app: the current Django settings name the broker (one path for the web
    # process, the dispatcher task and the sweeper).
    celery_app().send_task(
        "verifier.run_verification",
        args=[verification.pk],
        queue=settings.queue,
        soft_time_limit=verification.soft_time_limit_s,
        time_limit=verification.time_limit_s,
    )
    return True


def start_own_verification(revision_id: int) -> int:
    """What ``verifier.verify_revision`` does: record the own verification and enqueue its job."""
    from registry.tickets.models import Revision

    revision = Revision.objects.select_related("ticket__task").get(pk=revision_id)
    verification = get_or_create_verification(revision, task=own_task(revision), kind="own")
    if verification.finished and revision.status == "pending":
        # A moderator requeued the revision (registry.tickets.services.requeue_revision): verify afresh.
        verification = reset_verification(verification)
        enqueue_verification(verification, force=True)
    elif not verification.finished:
        enqueue_verification(verification)
    return verification.pk


def reset_verification(verification: Any) -> Any:
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
