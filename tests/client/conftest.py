"""Fixtures of the client tests: a storage of their own, published tickets, a request log of the live server."""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.signals import request_started

_counter = itertools.count(1)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class RequestLog(list):
    """(method, path) of every request; ``authorizations`` holds each request's Authorization header."""

    def __init__(self) -> None:
        super().__init__()
        self.authorizations: list[str | None] = []

    def clear(self) -> None:
        super().clear()
        self.authorizations.clear()


@pytest.fixture
def request_log() -> Iterator[RequestLog]:
    """(method, path) of every request the live server (same process) handles during the test."""
    log = RequestLog()

    def record(sender, environ, **kwargs) -> None:
        log.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        log.authorizations.append(environ.get("HTTP_AUTHORIZATION"))

    request_started.connect(record, weak=False)
    yield log
    request_started.disconnect(record)


@pytest.fixture
def make_user(django_user_model) -> Callable:
    def make(username: str | None = None):
        return django_user_model.objects.create_user(username=username or f"user{next(_counter)}", password="pw-12345678")

    return make


@pytest.fixture
def user_token() -> Callable:
    """``user_token(user)`` -> a registry API token (plaintext) for ``user``."""
    from registry.accounts.services import create_token

    def make(user) -> str:
        return create_token(user=user, name=f"token{next(_counter)}").key

    return make


@pytest.fixture
def make_revision(make_user) -> Callable:
    """Store raw files as a revision of a ticket (no validation): for tests of the protocol alone."""
    from registry.tickets import blobs
    from registry.tickets.models import Revision, RevisionFile, Status, Task, Ticket

    def make(name: str, files: dict[str, bytes], *, status: str = Status.VERIFIED, owner=None,
             task: str = "mnist1d", density: float = 0.05, verified_accuracy: float | None = 0.9):
        task_row, _ = Task.objects.get_or_create(name=task, defaults={"input_shape": [40], "num_classes": 10})
        ticket = Ticket.objects.filter(name=name).first()
        if ticket is None:
            ticket = Ticket.objects.create(name=name, owner=owner or make_user(), task=task_row)
        number = ticket.revisions.count() + 1
        commit = hashlib.sha1(f"{name}-{number}-{next(_counter)}".encode()).hexdigest()
        revision = Revision.objects.create(
            ticket=ticket, number=number, commit=commit, created_by=ticket.owner, config={"task": task},
            family="lenet-300-100", architecture=[], density=density, num_parameters=1000,
            status=status, verified_accuracy=verified_accuracy if status == Status.VERIFIED else None,
        )
        for path, data in files.items():
            digest, _ = blobs.put_blob(data)
            RevisionFile.objects.create(revision=revision, path=path, sha256=digest, size=len(data))
        ticket.latest_revision = revision
        if status == Status.VERIFIED:  # what services keep: the latest verified revision is the one served
            ticket.served_revision = revision
        ticket.status = status
        ticket.density = density
        ticket.verified_accuracy = revision.verified_accuracy
        ticket.save()
        return revision

    return make


_BROKER_PREFIX = f"client-tests-{os.environ.get('TEST_DB_SUFFIX', 'main')}-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(autouse=True)
def private_broker(request):
    """Submissions enqueue verifications: send them under a key prefix of this session (no worker listens)."""
    if "settings" not in request.fixturenames and request.node.get_closest_marker("django_db") is None \
            and "live_server" not in request.fixturenames:
        yield None
        return
    settings = request.getfixturevalue("settings")
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": _BROKER_PREFIX}
    yield _BROKER_PREFIX
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{_BROKER_PREFIX}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def hub_env(live_server, tmp_path: Path, monkeypatch) -> dict[str, Any]:
    """Client keyword arguments for the live registry, with a fresh cache; HF/TICKETHUB env cleared."""
    for var in ("TICKETHUB_ENDPOINT", "TICKETHUB_TOKEN", "TICKETHUB_CACHE", "TICKETHUB_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TICKETHUB_TOKEN_PATH", str(tmp_path / "token"))
    return {"endpoint": live_server.url, "cache_dir": tmp_path / "cache"}


@pytest.fixture
def registry_tasks(transactional_db) -> None:
    """The task rows (seeded by a migration, but flushed between transactional tests)."""
    from registry.tickets.models import Task
    from registry.tickets.taskseed import sync_tasks

    sync_tasks(Task)


@pytest.fixture
def publish(registry_tasks, make_bundle, make_user, make_revision) -> Callable:
    """``publish(name, density=, accuracy=, status="verified", owner=, task=, winning=)`` -> (revision, BundleBytes).

    A verified record is winning unless ``winning=False``.

    Stores a real bundle (made by the shared bundle factory) as a revision, then records a finished
    own-task verification (what a worker writes) and the status through the registry's service, unless
    ``status`` says otherwise. The REST submission path is walked by the end-to-end test.
    """
    from django.utils import timezone
    from ticketclient.format import TicketBundle

    from registry.tickets import services
    from registry.tickets.models import Status
    from registry.verifications.models import Verification, VerificationRun

    def make(name: str, *, density: float = 0.2, accuracy: float = 0.6, status: str = Status.VERIFIED, owner=None,
             task: str = "mnist1d", seed: int = 0, bundle=None, winning: bool | None = None):
        b = bundle or make_bundle(task=task, density=density, seed=seed, accuracy=accuracy)
        measured = TicketBundle.from_bytes(config=b.config, init=b.init, mask=b.mask).density
        revision = make_revision(name, b.by_path(), status=Status.PENDING, owner=owner, task=task,
                                 density=measured, verified_accuracy=None)
        if status in (Status.VERIFIED, Status.REJECTED):
            verification = Verification.objects.create(
                revision=revision, task=task, kind="own", status=status,
                winning=(status == Status.VERIFIED) if winning is None else (winning and status == Status.VERIFIED),
                reason="test record", policy={"seeds": 1, "statistic": "median", "tolerance": 0.03},
                decision={"verified": status == Status.VERIFIED, "ticket_statistic": accuracy, "tolerance": 0.03,
                          "control_statistics": {"random_mask": accuracy - 0.1}},
                claimed_accuracy=accuracy, measured_density=measured, finished_at=timezone.now(),
            )
            VerificationRun.objects.create(verification=verification, role="ticket", seed=0,
                                           final_test_accuracy=accuracy)
        if status != Status.PENDING:
            revision = services.set_revision_status(
                revision.pk, status, verified_accuracy=accuracy if status == Status.VERIFIED else None)
        return revision, b

    return make


# --- a real verifier worker (the verifier's test harness, tests/verifier/verifier_workers.py) -----------

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verifier"))


@pytest.fixture
def verifier_worker(private_broker, transactional_db, tmp_path: Path) -> Iterator[Callable]:
    """``verifier_worker(**env)`` starts a real ``celery worker`` on this test's database, storage and
    broker prefix (the one the registry's producer uses here); all are stopped at teardown."""
    from verifier_workers import WorkerProcess, worker_environment

    env = worker_environment(private_broker, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    started: list[Any] = []

    def start(**extra: str):
        worker = WorkerProcess({**env, **extra}, tmp_path / f"worker{len(started)}.log",
                               name=f"client-verifier{len(started)}-{uuid.uuid4().hex[:6]}")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
