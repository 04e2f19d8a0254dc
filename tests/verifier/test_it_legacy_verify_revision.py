"""A ``verifier.verify_revision(revision_id)`` message left in the broker by a registry older than the one-hop
submit path is still honoured: the worker takes (or creates) the revision's own record and runs it in that
same task, sending no second message."""

from __future__ import annotations

import pytest
import redis
from test_it_verification import assert_complete_runs, own_record, submit, tiny_config, wait_until_finished
from verifier_workers import REDIS_URL, purge_prefix

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


def test_a_legacy_verify_revision_message_runs_the_own_verification_in_one_task(
        owner_client, make_bundle, start_worker, broker_prefix, settings):
    from registry.celery_client import celery_app
    from registry.tickets.models import Revision
    from registry.verifications.models import Verification

    commit = submit(owner_client, make_bundle(config=tiny_config(accuracy=0.25), seed=11), "legacy-mlp")[
        "revision"]["commit"]
    revision = Revision.objects.get(commit=commit)
    # what an older registry left behind: a pending revision with no record, and its verify_revision message
    purge_prefix(broker_prefix)
    Verification.objects.filter(revision=revision).delete()
    app = celery_app()
    with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        app.send_task("verifier.verify_revision", args=[revision.pk], queue=settings.VERIFIER_QUEUE,
                      connection=connection)

    worker = start_worker()
    body = wait_until_finished(owner_client, "legacy-mlp", commit, [worker])
    assert body["status"] == "verified"
    record = own_record(body)
    assert_complete_runs(record)
    assert Verification.objects.filter(revision=revision).count() == 1
    # one task ran it: no run_verification message was sent, none is left
    assert "Task verifier.verify_revision[" in worker.log and "Task verifier.run_verification[" not in worker.log
    assert redis.Redis.from_url(REDIS_URL).llen(f"{broker_prefix}{settings.VERIFIER_QUEUE}") == 0
