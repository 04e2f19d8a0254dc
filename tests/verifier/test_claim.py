"""Claiming a verification: one live worker at a time, every delivery counted, failed after max attempts."""

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
    Verification.objects.filter(revision=revision, task="mnist1d", kind="own").update(time_limit_s=600)
    return Verification.objects.get(revision=revision, task="mnist1d", kind="own")  # made by the submission


def test_first_claim_runs_and_marks_the_revision_verifying(verification):
    v = job.claim(verification.pk, SETTINGS, POLICY)
    assert v.status == "running" and v.attempts == 1 and v.worker == job.worker_identity()
    assert v.deadline_at > timezone.now() and v.policy["task"] == "mnist1d"
    v.revision.refresh_from_db()
    assert v.revision.status == "verifying"
    # the same worker again (a long-lived worker retrying a failing job) is one more attempt
    assert job.claim(verification.pk, SETTINGS, POLICY).attempts == 2


def test_one_long_lived_worker_runs_out_of_attempts(verification):
    for attempt in range(1, SETTINGS.max_attempts + 1):
        assert job.claim(verification.pk, SETTINGS, POLICY).attempts == attempt
    assert job.claim(verification.pk, SETTINGS, POLICY) is None
    v = Verification.objects.get(pk=verification.pk)
    assert v.status == "failed" and v.error_code == "worker_lost" and v.finished_at is not None
    assert "not a problem with your ticket" in v.reason and "gave up after 3 attempts" in v.error_detail


def test_transient_retries_are_not_held_against_the_attempts(verification):
    for retry in range(6):
        v = job.claim(verification.pk, SETTINGS, POLICY, transient_retries=retry)
        assert v is not None and v.attempts == retry + 1


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
    assert v.status == "failed" and v.error_code == "worker_lost"
    assert "gave up after 3 attempts" in v.error_detail and "MemoryError" in v.error_detail
    assert "MemoryError" not in v.reason  # the operator's details are not the submitter's sentence
    v.revision.refresh_from_db()
    assert v.revision.status == "pending"  # not the ticket's fault: neither published nor rejected
    assert job.claim(verification.pk, SETTINGS, POLICY) is None  # finished: nothing left to do


def test_a_diverged_curve_is_stored_with_nulls():
    import math

    import numpy as np

    point = {"iteration": 100, "val_loss": math.inf, "test_loss": float("nan"), "val_accuracy": np.float32(0.1),
             "test_accuracy": 0.1}
    clean = job._jsonable(point)
    assert clean == {"iteration": 100, "val_loss": None, "test_loss": None, "val_accuracy": pytest.approx(0.1),
                     "test_accuracy": 0.1}
    assert job._last([point], "test_loss") is None
