"""Claiming a verification: one live worker at a time, lost workers counted, given up after max attempts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registry.verifications.models import Verification
from verifier import job
from verifier.config import VerifierSettings
from verifier.policy import VerificationPolicy

pytestmark = pytest.mark.django_db

SETTINGS = VerifierSettings(heartbeat_stale_s=60, max_attempts=3)
POLICY = VerificationPolicy()


@pytest.fixture
def verification(owner_client, make_bundle):
    r = owner_client.post("/api/v1/tickets/", make_bundle().form(name="claimed"), format="multipart")
    assert r.status_code == 201, r.content
    from registry.tickets.models import Revision

    revision = Revision.objects.get(commit=r.json()["revision"]["commit"])
    return Verification.objects.create(revision=revision, task="mnist1d", kind="own", time_limit_s=600)


def test_first_claim_runs_and_marks_the_revision_verifying(verification):
    v = job.claim(verification.pk, SETTINGS, POLICY)
    assert v.status == "running" and v.attempts == 1 and v.worker == job.worker_identity()
    assert v.deadline_at > timezone.now() and v.policy["task"] == "mnist1d"
    v.revision.refresh_from_db()
    assert v.revision.status == "verifying"
    assert job.claim(verification.pk, SETTINGS, POLICY).attempts == 1  # the same worker again: a retry


def test_a_live_worker_keeps_the_job(verification):
    Verification.objects.filter(pk=verification.pk).update(status="running", worker="elsewhere:1", attempts=1,
                                                          heartbeat_at=timezone.now() - timedelta(seconds=10))
    with pytest.raises(job.AnotherWorkerIsRunning) as busy:
        job.claim(verification.pk, SETTINGS, POLICY)
    assert 45 <= busy.value.retry_in_s <= 52


def test_a_lost_worker_is_replaced_and_counted(verification):
    Verification.objects.filter(pk=verification.pk).update(status="running", worker="elsewhere:1", attempts=1,
                                                          heartbeat_at=timezone.now() - timedelta(seconds=61))
    v = job.claim(verification.pk, SETTINGS, POLICY)
    assert v.attempts == 2 and v.worker == job.worker_identity()


def test_given_up_after_max_attempts_with_the_last_error(verification):
    Verification.objects.filter(pk=verification.pk).update(
        status="running", worker="elsewhere:1", attempts=3, reason="Attempt 3 failed with MemoryError: ",
        heartbeat_at=timezone.now() - timedelta(hours=1))
    assert job.claim(verification.pk, SETTINGS, POLICY) is None
    v = Verification.objects.get(pk=verification.pk)
    assert v.status == "rejected" and v.error_code == "worker_lost"
    assert "giving up after 3 attempts" in v.reason and "MemoryError" in v.reason
    v.revision.refresh_from_db()
    assert v.revision.status == "rejected"
    assert job.claim(verification.pk, SETTINGS, POLICY) is None  # finished: nothing left to do
