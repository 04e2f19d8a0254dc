"""What the broker holds right now, read from Redis (torch-free; the sweeper's view of the queue).

The sweeper re-enqueues from PostgreSQL whatever the broker has lost (a Redis restart that keeps nothing on
disk, a message acknowledged by a worker that then died). To send nothing twice it asks Redis which jobs it
still holds: kombu's Redis transport keeps each queue as a list (one key per priority step) and the delivered
but unacknowledged messages in the ``unacked`` hash, every key under the broker's ``global_keyprefix``.
Other brokers (the local run's filesystem transport) have no such view: :func:`broker_view` returns None and
the sweeper falls back to its time-based resend rule.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from registry.celery_client import RUN_TASK

log = logging.getLogger(__name__)

#: The legacy task of messages from before the one-hop submit path (see :func:`verifier.tasks.verify_revision`).
LEGACY_VERIFY_TASK = "verifier.verify_revision"
#: kombu's Redis transport: the separator and priority steps of a queue's list keys.
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)


@dataclass
class BrokerView:
    #: Verification ids with a ``run_verification`` message waiting in a queue.
    waiting: set[int] = field(default_factory=set)
    #: Verification ids with a message delivered to a worker and not acknowledged yet.
    delivered: set[int] = field(default_factory=set)
    #: Revision ids with a legacy ``verify_revision`` message waiting or delivered.
    revisions: set[int] = field(default_factory=set)

    def holds_verification(self, verification_id: int) -> bool:
        return verification_id in self.waiting or verification_id in self.delivered


def broker_view(queues: list[str] | None = None, timeout_s: float = 3.0) -> BrokerView | None:
    """The jobs the Redis broker holds, or None when the broker is not Redis.

    Raises ``redis.exceptions.ConnectionError`` when Redis is unreachable (the sweep cannot send either).
    """
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    prefix = str((settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}).get("global_keyprefix") or "")
    queues = queues or [settings.VERIFIER_QUEUE]
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    view = BrokerView()
    try:
        for queue in queues:
            for step in PRIORITY_STEPS:
                key = f"{prefix}{queue}" if step == 0 else f"{prefix}{queue}{PRIORITY_SEP}{step}"
                for raw in client.lrange(key, 0, -1):
                    _record(view, raw, delivered=False)
        for raw in client.hvals(f"{prefix}unacked"):
            try:
                message = json.loads(raw)[0]
            except (ValueError, IndexError, TypeError):
                continue
            _record(view, json.dumps(message), delivered=True)
    finally:
        client.close()
    return view


def _record(view: BrokerView, raw: bytes | str, *, delivered: bool) -> None:
    parsed = _task_and_id(raw)
    if parsed is None:
        return
    task, object_id = parsed
    if task == RUN_TASK:
        (view.delivered if delivered else view.waiting).add(object_id)
    elif task == LEGACY_VERIFY_TASK:
        view.revisions.add(object_id)


def _task_and_id(raw: bytes | str) -> tuple[str, int] | None:
    """(task name, its first argument) of a Celery protocol-2 message in kombu's JSON envelope."""
    try:
        message: dict[str, Any] = json.loads(raw)
        task = message["headers"]["task"]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        first = args[0] if args else kwargs.get("verification_id", kwargs.get("revision_id"))
        return str(task), int(first)
    except (ValueError, KeyError, TypeError, IndexError):
        log.debug("broker message not understood: %.200r", raw)
        return None
