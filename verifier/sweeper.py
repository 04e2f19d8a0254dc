"""Re-enqueue verifications that are stuck (torch-free; run by celery beat every sweep interval).

- a verification ``running`` past its deadline (start + hard time limit) plus the heartbeat grace, whose
  heartbeat is stale: its worker is gone and its message was lost. It is re-enqueued (the job skips the
  runs already finished); after ``max_attempts`` lost workers the job itself rejects it with the reason.
- a verification ``queued`` whose last message is older than its hard limit plus the grace.
- a revision ``pending`` with no verification at all (the registry's enqueue failed after its commit):
  its own verification is created and enqueued.
Nothing is sent twice within a hard limit (see :func:`verifier.dispatch.enqueue_verification`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from verifier.config import get_settings
from verifier.dispatch import enqueue_verification, get_or_create_verification, own_task

log = logging.getLogger(__name__)


def sweep() -> list[int]:
    """Re-enqueue what is stuck; returns the ids of the verifications re-enqueued."""
    from registry.tickets.models import Revision
    from registry.verifications.models import Verification

    settings = get_settings()
    now = timezone.now()
    grace = timedelta(seconds=settings.heartbeat_stale_s)
    requeued: list[int] = []

    stale = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - grace)
    stuck_running = Verification.objects.filter(status=Verification.Status.RUNNING, deadline_at__lt=now - grace)
    stuck_queued = Verification.objects.filter(status=Verification.Status.QUEUED, created_at__lt=now - grace)
    for v in [*stuck_running.filter(stale), *stuck_queued]:
        if enqueue_verification(v):
            log.warning("sweeper: re-enqueued %s", v)
            requeued.append(v.pk)

    orphans = Revision.objects.filter(
        status="pending", created_at__lt=now - grace, verifications__isnull=True
    ).select_related("ticket__task")
    for revision in orphans:
        v = get_or_create_verification(revision, task=own_task(revision), kind="own")
        if enqueue_verification(v):
            log.warning("sweeper: revision %s was never enqueued; enqueued %s", revision.pk, v)
            requeued.append(v.pk)
    return requeued
