"""The management commands scripts/run calls: ``demo_account`` (the demo superuser and its token, kept in a
credentials file) and ``resume_verifications`` (resend what a stopped run left unfinished)."""

from __future__ import annotations

import io
import json
import stat

import pytest
from django.core.management import call_command
from django.utils import timezone

from registry.accounts.models import ApiToken
from registry.celery_client import RUN_TASK
from registry.verifications.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)


def _demo_account(path) -> str:
    out = io.StringIO()
    call_command("demo_account", "--credentials", str(path), stdout=out)
    return out.getvalue().strip()


def test_demo_account_keeps_its_token_and_password_across_runs(tmp_path, django_user_model):
    path = tmp_path / "credentials.json"
    token = _demo_account(path)
    first = json.loads(path.read_text())
    assert first["token"] == token and first["username"] == "demo" and first["password"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    user = django_user_model.objects.get(username="demo")
    assert user.is_superuser and user.is_staff and user.check_password(first["password"])

    assert _demo_account(path) == token  # a restart on the same state folder
    ApiToken.objects.update(revoked_at=timezone.now())
    replaced = _demo_account(path)
    assert replaced != token and json.loads(path.read_text())["password"] == first["password"]
    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() == 1


def test_resume_verifications_releases_and_resends_the_unfinished_ones(owner_client, make_bundle, submit, broker):
    assert submit(owner_client, make_bundle(seed=0), name="left-running").status_code == 201
    assert submit(owner_client, make_bundle(seed=1), name="left-finished").status_code == 201
    running = Verification.objects.get(revision__ticket__name="left-running")
    Verification.objects.filter(pk=running.pk).update(status="running", worker="gone:1", heartbeat_at=timezone.now())
    Verification.objects.filter(revision__ticket__name="left-finished").update(status="verified")
    broker.clear()

    out = io.StringIO()
    call_command("resume_verifications", stdout=out)
    assert out.getvalue().strip() == "1"
    running.refresh_from_db()
    assert running.heartbeat_at is None
    assert broker.messages() == [{"task": RUN_TASK, "args": [running.pk], "kwargs": {}}]
