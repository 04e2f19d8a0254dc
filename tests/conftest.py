"""Shared fixtures: users, API clients (anonymous, owner, other), the bundle factory, isolated storage.

Everything runs against the real PostgreSQL (settings default to it under pytest; ``TEST_DB_SUFFIX`` gives
a run its own test database) and, where a broker is involved, the real Redis.

    def test_x(owner_client, make_bundle):
        bundle = make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.2, seed=0)
        r = owner_client.post("/api/v1/tickets/", bundle.form(name="my-ticket"), format="multipart")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from factories import BundleBytes
from factories import make_bundle as _make_bundle


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path_factory):
    """Every test gets its own filesystem storage (a fresh MEDIA_ROOT behind default_storage).

    Also: a fast password hasher (PBKDF2 costs ~0.3 s per user on a shared 2-core machine).
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    media = tmp_path_factory.mktemp("media")
    settings.MEDIA_ROOT = media
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media)}},
    }
    return media


@pytest.fixture(autouse=True)
def _seeded_tasks(request):
    """Task rows for every test with database access.

    The data migration seeds them, but a ``transaction=True`` test empties every table when it ends, so
    later tests would see no tasks; re-seeding from ticketclient.tasks is a few cheap upserts.
    """
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db"}:
        return
    transactional = "transactional_db" in names or bool(
        marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    from registry.tickets.models import Task
    from registry.tickets.taskseed import sync_tasks

    sync_tasks(Task)


@pytest.fixture
def make_bundle() -> Callable[..., BundleBytes]:
    """The bundle factory: ``make_bundle(task=, family=, hidden=, density=, seed=, ...)`` -> BundleBytes."""
    return _make_bundle


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="olivia", password="correct-horse-battery")


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user(username="oscar", password="correct-horse-battery")


def _token_client(user: Any, name: str = "tests"):
    from rest_framework.test import APIClient

    from registry.accounts.services import create_token

    client = APIClient()
    issued = create_token(user=user, name=name)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.key}")
    client.user = user
    client.token_key = issued.key
    return client


@pytest.fixture
def anon_client(db):
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def owner_client(owner):
    return _token_client(owner)


@pytest.fixture
def other_client(other):
    return _token_client(other)


@pytest.fixture
def token_client_for() -> Callable[[Any], Any]:
    """``token_client_for(user)``: an APIClient authenticated with a fresh API token of ``user``."""
    return _token_client
