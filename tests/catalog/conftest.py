"""Catalog fixtures: a task and tickets in every status, written as rows (see catalog_rows.py)."""

from __future__ import annotations

import pytest
from catalog_rows import make_task, make_ticket


@pytest.fixture(autouse=True)
def _clear_cache():
    """Plots are cached in Django's cache; every test starts without them."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _broker_goes_nowhere(settings):
    """Submissions made here enqueue their verification on kombu's in-memory transport: no worker is
    meant to run them, and nothing lands in a shared Redis queue."""
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}


@pytest.fixture
def task(db):
    return make_task("mnist1d", baseline=0.62)


@pytest.fixture
def tickets(task, owner):
    """One ticket per status, named after it."""
    return {
        "verified": make_ticket("lenet-mnist1d-3.6pct", task=task, owner=owner, status="verified",
                                density=0.036, accuracy=0.982, claimed=0.98),
        "pending": make_ticket("pending-ticket", task=task, owner=owner, status="pending", density=0.1,
                               accuracy=None, claimed=0.9),
        "verifying": make_ticket("verifying-ticket", task=task, owner=owner, status="verifying", density=0.2,
                                 accuracy=None, claimed=0.9),
        "rejected": make_ticket("rejected-ticket", task=task, owner=owner, status="rejected", density=0.05,
                                accuracy=0.4, claimed=0.9),
    }


@pytest.fixture
def clients(owner, other, django_user_model, token_client_for, anon_client):
    """A client per viewer of the visibility tests: owner, staff, other user (each with a session and a token)
    and anonymous. The pages use the session, the API and the Hub the token."""
    staff = django_user_model.objects.create_user("staff-user", password="pw-staff-123", is_staff=True)
    made = {"owner": token_client_for(owner), "other": token_client_for(other), "staff": token_client_for(staff),
            "anonymous": anon_client}
    for who, user in (("owner", owner), ("other", other), ("staff", staff)):
        made[who].force_login(user)
    return made
