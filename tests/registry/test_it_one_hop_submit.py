"""One submit path, one broker hop: the submit transaction writes the revision's own verification record
(``queued``, with its time limits), and only once it commits is exactly one message sent, for
``verifier.run_verification(verification_id)``. A broker outage does not fail the submission: the record
stays queued with no message stamped, for the sweeper."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from registry.celery_client import RUN_TASK
from registry.tickets import services
from registry.tickets.models import Revision
from registry.verifications.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)


def _upload(bundle) -> services.BundleUpload:
    return services.BundleUpload(config=bundle.config, init=bundle.init, mask=bundle.mask)


def test_a_submission_sends_exactly_one_message_for_run_verification_after_commit(owner, make_bundle, broker):
    with transaction.atomic():
        submission = services.submit_bundle(user=owner, upload=_upload(make_bundle()), name="one-hop-ticket")
        # inside the transaction: the record exists, nothing is sent yet
        record = Verification.objects.get(revision=submission.revision)
        assert record.status == Verification.Status.QUEUED and record.kind == Verification.Kind.OWN
        assert record.enqueued_at is None
        assert broker.messages() == []
    assert broker.messages() == [{"task": RUN_TASK, "args": [record.pk], "kwargs": {}}]
    record.refresh_from_db()
    assert record.enqueued_at is not None
    assert 0 < record.soft_time_limit_s < record.time_limit_s
    headers = json.loads(broker.client.lrange(broker.key, 0, -1)[0])["headers"]
    assert headers["timelimit"] == [record.time_limit_s, record.soft_time_limit_s]


def test_a_rolled_back_submission_sends_nothing_and_leaves_no_record(owner, make_bundle, broker):

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.submit_bundle(user=owner, upload=_upload(make_bundle()), name="rolled-back-ticket")
        raise Boom
    assert broker.messages() == []
    assert not Revision.objects.exists() and not Verification.objects.exists()


def test_with_the_broker_down_the_submission_succeeds_and_the_record_waits_for_the_sweeper(
        owner_client, make_bundle, submit, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_ENQUEUE_TIMEOUT_S = 0.5
    r = submit(owner_client, make_bundle(), name="outage-ticket")
    assert r.status_code == 201, r.json()
    record = Verification.objects.get(revision__ticket__name="outage-ticket")
    assert record.status == Verification.Status.QUEUED
    assert record.enqueued_at is None  # no message went out: the sweeper sends one on its next pass
