"""Celery tasks: thin shells that take ids and call the job (torch is imported only inside the job).

- ``verifier.verify_revision(revision_id)``: what the registry enqueues when a revision is created. It
  records the revision's own Verification, derives the time limits from the recipe's budget, and enqueues
  ``verifier.run_verification`` with those limits.
- ``verifier.run_verification(verification_id)``: trains the ticket and its controls and applies the policy.
  Idempotent: finished runs are kept and skipped on redelivery.
- ``verifier.sweep_stuck_verifications()``: periodic (celery beat); re-enqueues verifications stuck in
  ``running`` past their time limit.
"""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded

from verifier.celery import app
from verifier.errors import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

#: Transient errors (database or broker restarts) are retried after 2, 4, 8, ... up to 300 s: about 18
#: minutes in all before the task gives up (the sweeper then re-enqueues the verification).
RETRY_KW = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": False,
    "max_retries": 10,
}


@app.task(name="verifier.verify_revision", **RETRY_KW)
def verify_revision(revision_id: int) -> int:
    from verifier import dispatch

    return dispatch.start_own_verification(revision_id)


@app.task(name="verifier.run_verification", bind=True, **RETRY_KW)
def run_verification(self, verification_id: int) -> str:
    from verifier import job

    try:
        return job.run(verification_id, attempt_id=self.request.id or "", redelivered=bool(
            (self.request.delivery_info or {}).get("redelivered")))
    except SoftTimeLimitExceeded:
        job.fail_time_limit(verification_id)
        return "time_limit"
    except job.AnotherWorkerIsRunning as busy:
        # A duplicate delivery while the first one is alive: look again once its heartbeat may be stale.
        raise self.retry(countdown=busy.retry_in_s, max_retries=None) from None


@app.task(name="verifier.sweep_stuck_verifications", **RETRY_KW)
def sweep_stuck_verifications() -> list[int]:
    from verifier import sweeper

    return sweeper.sweep()
