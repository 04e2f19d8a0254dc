"""Fixtures of the verifier tests: the broker prefix, worker processes, and the environment they need."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from verifier_workers import REDIS_URL, WorkerProcess, purge_prefix, worker_environment


@pytest.fixture(scope="session")
def broker_prefix() -> Iterator[str]:
    prefix = f"tickethub-test-{os.getpid()}-{uuid.uuid4().hex[:8]}:"
    yield prefix
    purge_prefix(prefix)


@pytest.fixture
def verifier_broker(settings, broker_prefix: str) -> str:
    """Point the test process's producer (registry.celery_client) at Redis with this session's prefix."""
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": broker_prefix}
    purge_prefix(broker_prefix)
    return broker_prefix


@pytest.fixture
def worker_env(verifier_broker: str, transactional_db, settings) -> dict[str, str]:
    """The environment of a worker that sees this test's database, storage and broker prefix."""
    return worker_environment(
        verifier_broker, VERIFIER_TORCH_THREADS=os.environ.get("VERIFIER_TORCH_THREADS", "1")
    )


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path) -> Iterator:
    """``start_worker(**extra_env)`` starts a real celery worker; all are stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(**extra_env: str) -> WorkerProcess:
        env = {**worker_env, **extra_env}
        w = WorkerProcess(env, tmp_path / f"worker{len(started)}.log", name=f"verifier{len(started)}-{uuid.uuid4().hex[:6]}")
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
