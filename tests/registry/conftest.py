"""Registry test fixtures: a private broker key prefix on the real Redis, a clean throttle cache, and
helpers to inspect what was enqueued and what storage holds."""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass

import pytest
import redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_SESSION_PREFIX = f"registry-tests-{os.environ.get('TEST_DB_SUFFIX', 'main')}-{uuid.uuid4().hex[:8]}:"


@dataclass
class Broker:
    """The verify queue of this test session on the real Redis (a key prefix no worker listens on)."""

    client: redis.Redis
    prefix: str
    queue: str

    @property
    def key(self) -> str:
        return f"{self.prefix}{self.queue}"

    def messages(self) -> list[dict]:
        """The queued task messages: ``{"task": name, "args": [...], "kwargs": {...}}`` in send order."""
        out = []
        for raw in reversed(self.client.lrange(self.key, 0, -1)):  # kombu LPUSHes, consumers BRPOP
            envelope = json.loads(raw)
            body = base64.b64decode(envelope["body"]) if envelope.get("properties", {}).get(
                "body_encoding") == "base64" else envelope["body"]
            args, kwargs, _embed = json.loads(body)
            out.append({"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs})
        return out

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=f"{self.prefix}*"))
        if keys:
            self.client.delete(*keys)


@pytest.fixture(scope="session")
def _redis():
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield client
    keys = list(client.scan_iter(match=f"{_SESSION_PREFIX}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def broker(settings, _redis) -> Broker:
    """Point the registry's producer at the real Redis under this session's private key prefix (and forget
    any broker outage an earlier test provoked)."""
    from registry import celery_client

    celery_client._broker_down_until.clear()
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": _SESSION_PREFIX}
    b = Broker(client=_redis, prefix=_SESSION_PREFIX, queue=settings.VERIFIER_QUEUE)
    b.clear()
    yield b
    b.clear()


@pytest.fixture(autouse=True)
def _fresh_throttle_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


# --- submissions --------------------------------------------------------------------------------------


@pytest.fixture
def submit():
    """``submit(client, bundle, name=..., **fields)`` -> the response of POST /api/v1/tickets/."""

    def _submit(client, bundle, name: str | None = "lenet-test-20pct", **fields):
        return client.post("/api/v1/tickets/", bundle.form(name=name, **fields), format="multipart")

    return _submit


@pytest.fixture
def assert_no_trace(isolated_storage):
    """``assert_no_trace()``: no ticket, revision or file row, and no blob in storage."""

    def _check(tickets: int = 0, revisions: int = 0, blobs_expected: int = 0) -> None:
        from registry.tickets import blobs
        from registry.tickets.models import Revision, RevisionFile, Ticket

        assert Ticket.objects.count() == tickets
        assert Revision.objects.count() == revisions
        assert RevisionFile.objects.count() == revisions * 3
        assert len(blobs.list_blobs()) == blobs_expected

    return _check
