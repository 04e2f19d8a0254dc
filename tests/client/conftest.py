"""Fixtures of the client tests: a storage of their own, published tickets, a request log of the live server."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.signals import request_started

_counter = itertools.count(1)


@pytest.fixture
def hub_storage(settings, tmp_path: Path) -> Path:
    """Point the default storage at a fresh folder for this test."""
    location = tmp_path / "media"
    location.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
    }
    return location


@pytest.fixture
def request_log() -> Iterator[list[tuple[str, str]]]:
    """(method, path) of every request the live server (same process) handles during the test."""
    log: list[tuple[str, str]] = []

    def record(sender, environ, **kwargs) -> None:
        log.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))

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
def make_revision(hub_storage: Path, make_user) -> Callable:
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
        ticket.status = status
        ticket.density = density
        ticket.verified_accuracy = revision.verified_accuracy
        ticket.save()
        return revision

    return make
