"""Re-enqueue verifications that are stuck (torch-free; run by celery beat every sweep interval).

PostgreSQL is the record of what must run; the broker only carries messages, and may lose them (a Redis
restart with nothing on disk, a worker SIGKILLed after its message was delivered). One sweep fixes every
case:

- a verification ``running`` whose heartbeat is older than ``VERIFIER_HEARTBEAT_STALE_S`` (60 s): its
  worker is gone (a live job stamps its heartbeat every few seconds, whatever its time limit). It is
  re-enqueued unless a message for it is already waiting in the queue; the job skips the runs already
  finished, and after ``max_attempts`` lost workers the claim ends it as failed.
- a verification ``queued`` for which the broker holds no message at all (waiting or delivered), at most
  once per stale threshold.
- a verification ``queued`` whose message was never sent (the broker was down when its submission
  committed: the registry stamps no ``enqueued_at`` then), on the next sweep.
- a revision ``pending`` with no verification at all and no legacy ``verify_revision`` message (rows from
  before the submit transaction created the record): its own verification is created and enqueued.

Which messages the broker holds comes from :func:`verifier.broker.broker_view` (Redis). Without such a
view (the filesystem transport of the local run) a message is re-sent only when the last one is older than
the verification's hard limit plus the grace, or older than the last heartbeat of a dead worker.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from registry.verifications.dispatch import (
    get_or_create_verification,
    own_task,
    resend_after_s,
    send_verification,
)
from verifier.config import get_settings

log = logging.getLogger(__name__)

#: A message sent less than this long ago may still be on its way (or a worker may be about to claim it).
IN_FLIGHT_S = 10.0


def sweep() -> list[int]:
    """Re-enqueue what is stuck; returns the ids of the verifications re-enqueued."""
    from registry.tickets.models import Revision
    from registry.verifications.models import Verification
    from verifier.broker import broker_view

    settings = get_settings()
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.heartbeat_stale_s)
    in_flight = now - timedelta(seconds=min(IN_FLIGHT_S, settings.heartbeat_stale_s))
    try:
        view = broker_view()
    except Exception:  # noqa: BLE001 - the broker is down: sending fails below too, and is retried
        log.warning("sweeper: the broker cannot be inspected", exc_info=True)
        raise
    requeued: list[int] = []

    def send(v: Verification, why: str) -> None:
        send_verification(v, force=True)
        log.warning("sweeper: re-enqueued %s (%s)", v, why)
        requeued.append(v.pk)

    dead = Verification.objects.filter(status=Verification.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, started_at__lt=stale_before)
    ).filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=in_flight))
    for v in dead.select_related("revision"):
        last_seen = v.heartbeat_at or v.started_at or now  # the filter above: one of the two is set
        if view is not None:
            if v.pk not in view.waiting:
                send(v, f"heartbeat {_age(last_seen, now)} old, no message waiting")
        elif v.enqueued_at is None or v.enqueued_at < last_seen or \
                v.enqueued_at < now - timedelta(seconds=resend_after_s(v)):
            send(v, f"heartbeat {_age(last_seen, now)} old")

    # at most one message per stale threshold: a job that crashes before it can claim (broken code, a schema
    # mismatch) is acknowledged and lost again each time; it must not be re-sent on every sweep
    queued = Verification.objects.filter(status=Verification.Status.QUEUED, created_at__lt=in_flight).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale_before))
    for v in queued.select_related("revision"):
        if view is not None:
            if not view.holds_verification(v.pk):
                send(v, "queued but the broker holds no message for it")
        elif v.enqueued_at is None or v.enqueued_at < now - timedelta(seconds=resend_after_s(v)):
            send(v, "queued, last message overdue")

    orphans = Revision.objects.filter(
        status="pending", created_at__lt=in_flight, verifications__isnull=True
    ).select_related("ticket__task")
    for revision in orphans:
        if view is not None and revision.pk in view.revisions:
            continue  # its legacy verify_revision message is waiting or being handled
        v = get_or_create_verification(revision, task=own_task(revision), kind="own")
        if send_verification(v):
            log.warning("sweeper: revision %s was never enqueued; enqueued %s", revision.pk, v)
            requeued.append(v.pk)
    return requeued


def _age(then: datetime | None, now: datetime) -> str:
    return f"{(now - then).total_seconds():.0f}s" if then else "unknown"
