"""Celery tasks: thin shells that take ids and call the job (torch is imported only inside the job).

- ``verifier.run_verification(verification_id)``: the one message of a verification. The registry sends it
  once the transaction that created the record has committed (a submission, a requeue, a transfer
  request), with the soft and hard time limits derived from the recipe's budget. It trains the ticket and its controls and applies the policy.
  Idempotent: finished runs are kept and skipped on redelivery. While it runs, a heartbeat thread stamps
  ``heartbeat_at`` every few seconds, so a dead worker is noticed by the sweeper within the stale threshold.
  A transient error (database, broker or storage unavailable) is retried ``TRANSIENT_MAX_RETRIES`` times with
  exponential backoff, then the verification ends as ``failed``; any other exception ends it as ``failed``
  at once (see :func:`verifier.job.run`).
- ``verifier.verify_revision(revision_id)``: a backward-compatible shim for messages that a registry older
  than the one-hop submit path left in a broker. It takes (or creates) the revision's own record and runs
  it in the same task, with no second message; its message carries no per-job time limits.
- ``verifier.sweep_stuck_verifications()``: periodic (celery beat), routed to its own queue (the sweep
  queue) so that it never counts against the training pool's ``max_tasks_per_child``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from verifier.celery import app
from verifier.errors import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

#: Transient errors (database or broker restarts) of the light tasks are retried after 2, 4, 8, ... up to
#: 300 s: about 18 minutes in all (the sweeper re-enqueues anything still stuck after that).
RETRY_KW = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": False,
    "max_retries": 10,
}

#: A verification job retries a transient error this many times (after 2, 4, 8, 16, 32, 64 s: about two
#: minutes in all), then ends as failed with the error for the operators.
TRANSIENT_MAX_RETRIES = 6


def transient_backoff_s(retries: int) -> float:
    return float(min(300, 2 ** (retries + 1)))


@contextmanager
def heartbeat(verification_id: int, interval_s: float) -> Iterator[None]:
    """Stamp the verification's ``heartbeat_at`` every ``interval_s`` while the job runs in this process.

    Only while it is ``running`` under this worker: a heartbeat never revives a record another worker took
    over or that finished. The thread has its own database connection, closed when it stops.
    """
    stop = threading.Event()

    def beat() -> None:
        from django.db import connection

        from registry.verifications import services
        from verifier.job import worker_identity

        me = worker_identity()
        try:
            while not stop.wait(interval_s):
                try:
                    services.record_heartbeat(verification_id, worker=me)
                except Exception:  # noqa: BLE001 - a database blip: the next beat tries again
                    log.warning("heartbeat of verification %s could not be written", verification_id, exc_info=True)
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{verification_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval_s + 5)


def heartbeat_interval_s() -> float:
    from verifier.config import get_settings

    return max(0.5, min(15.0, get_settings().heartbeat_stale_s / 4))


@app.task(name="verifier.run_verification", bind=True)
def run_verification(self: Task, verification_id: int, transient_retries: int = 0) -> str:
    return _run_job(self, verification_id, retry_args=[verification_id], transient_retries=transient_retries)


@app.task(name="verifier.verify_revision", bind=True)
def verify_revision(self: Task, revision_id: int, transient_retries: int = 0) -> str:
    """Backward-compatible shim: a ``verify_revision`` message from before the one-hop submit path runs the
    revision's own verification here, in this task (no second message)."""
    from registry.tickets.models import Revision
    from registry.verifications.dispatch import queue_own_verification

    revision = Revision.objects.select_related("ticket__task").get(pk=revision_id)
    verification = queue_own_verification(revision)
    return _run_job(self, verification.pk, retry_args=[revision_id], transient_retries=transient_retries)


def _run_job(task: Task, verification_id: int, *, retry_args: list[int], transient_retries: int) -> str:
    """Run the job under a heartbeat; retry (the same message) on a busy duplicate or a transient error."""
    from verifier import job

    try:
        with heartbeat(verification_id, heartbeat_interval_s()):
            return job.run(verification_id, attempt_id=task.request.id or "", transient_retries=transient_retries,
                           redelivered=bool((task.request.delivery_info or {}).get("redelivered")))
    except SoftTimeLimitExceeded:
        job.fail_time_limit(verification_id)
        return "time_limit"
    except job.AnotherWorkerIsRunning as busy:
        # A duplicate delivery while the first one is alive: look again once its heartbeat may be stale.
        raise task.retry(countdown=busy.retry_in_s, max_retries=None) from None
    except TRANSIENT_ERRORS as e:
        if transient_retries >= TRANSIENT_MAX_RETRIES:
            _fail_after_transient_errors(verification_id, e, transient_retries)
            return "failed"
        countdown = transient_backoff_s(transient_retries)
        log.warning("verification %s: transient %s (%s); retry %d/%d in %.0f s", verification_id,
                    type(e).__name__, e, transient_retries + 1, TRANSIENT_MAX_RETRIES, countdown)
        raise task.retry(args=retry_args, kwargs={"transient_retries": transient_retries + 1},
                         countdown=countdown, max_retries=None) from None


def _fail_after_transient_errors(verification_id: int, e: BaseException, retries: int) -> None:
    from registry.verifications.models import Verification
    from verifier import job

    v = Verification.objects.select_related("revision").get(pk=verification_id)
    job.fail(v, code="unavailable", reason=(
        "The hub could not finish this verification: a service it needs (database, queue or file storage) "
        "stayed unavailable. This is not a problem with your ticket; an operator can requeue it."
    ), detail=f"{retries} transient retries exhausted: {job.error_detail(e)}")


@app.task(name="verifier.sweep_stuck_verifications", **RETRY_KW)
def sweep_stuck_verifications() -> list[int]:
    from verifier import sweeper

    return sweeper.sweep()
