"""The web process's side of Celery: send a verification job, without importing torch or the verifier.

A small producer-only Celery app built from Django settings (``CELERY_BROKER_URL``, the broker key prefix
``VERIFIER_BROKER_PREFIX`` and the queue ``VERIFIER_QUEUE`` shared with verifier/config.py). The worker
side is ``verifier.celery.app``; the two only have to agree on the broker, the queue and the task name.
"""

from __future__ import annotations

import json
import logging
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Celery
from django.conf import settings

logger = logging.getLogger("registry.enqueue")

#: The one task a verification's message names (its argument: the Verification record's id).
RUN_TASK = "verifier.run_verification"

#: After a failed send, sends are skipped (the record stays queued for the sweeper) for this long, so
#: that a broker outage does not cost every submission the connection retries.
SKIP_AFTER_FAILURE_S = 10.0
_broker_down_until: dict[str, float] = {}  # broker URL -> monotonic time


@lru_cache(maxsize=8)
def _build_app(broker_url: str, transport_options_json: str, timeout_s: float) -> Celery:
    app = Celery("registry", set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        broker_transport_options=json.loads(transport_options_json),
        broker_connection_timeout=timeout_s,
        broker_connection_retry_on_startup=False,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
    )
    return app


def celery_app() -> Celery:
    """The producer app for the current settings (cached per broker configuration)."""
    options: dict[str, Any] = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for key in ("data_folder_in", "data_folder_out", "processed_folder"):
            if options.get(key):
                Path(options[key]).mkdir(parents=True, exist_ok=True)
    return _build_app(
        settings.CELERY_BROKER_URL, json.dumps(options, sort_keys=True), float(settings.CELERY_ENQUEUE_TIMEOUT_S)
    )


def send_run_verification(verification_id: int, *, soft_time_limit_s: float | None,
                         time_limit_s: float | None) -> None:
    """Send ``verifier.run_verification(verification_id)`` to the verify queue, with the job's time limits.

    Raises when the broker cannot take the message (the sweeper's task retries); for the web process's
    never-raising send, see :func:`try_send_run_verification`.
    """
    app = celery_app()
    # An explicit connection: Celery lets a CELERY_BROKER_URL environment variable override the configured
    # broker_url, and the settings (which read that variable too) must stay the one source.
    with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        app.send_task(
            RUN_TASK,
            args=[verification_id],
            queue=settings.VERIFIER_QUEUE,
            soft_time_limit=soft_time_limit_s,
            time_limit=time_limit_s,
            connection=connection,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0},
        )
    logger.info("enqueued verification %s on queue %s", verification_id, settings.VERIFIER_QUEUE)


def try_send_run_verification(verification_id: int, *, soft_time_limit_s: float | None,
                              time_limit_s: float | None) -> bool:
    """:func:`send_run_verification`, but never raises: False when the broker is unreachable.

    Called after a submission's transaction has committed (through
    :func:`registry.verifications.dispatch.enqueue_on_commit`). If the broker is down, the verification
    record stays ``queued`` and the verifier's periodic sweep (or an admin requeue) sends it later; the
    submission itself has already succeeded, so this logs instead of failing the request. After a failure,
    sends are skipped for ``SKIP_AFTER_FAILURE_S`` so that an outage does not cost every request the retries.
    """
    if time.monotonic() < _broker_down_until.get(settings.CELERY_BROKER_URL, 0.0):
        logger.warning("broker unavailable a moment ago: verification %s stays queued for the sweeper",
                       verification_id)
        return False
    try:
        send_run_verification(verification_id, soft_time_limit_s=soft_time_limit_s, time_limit_s=time_limit_s)
    except Exception:
        _broker_down_until[settings.CELERY_BROKER_URL] = time.monotonic() + SKIP_AFTER_FAILURE_S
        logger.exception("could not enqueue verification %s (it stays queued for the sweeper)", verification_id)
        return False
    return True
