"""A requeue sends ``verifier.run_verification`` on the real Redis broker after commit, only then; the send
never fails its caller."""

from __future__ import annotations

import pytest
from django.db import transaction

from registry.celery_client import RUN_TASK, try_send_run_verification
from registry.tickets import services
from registry.tickets.models import Revision, Status, Task, Ticket
from registry.verifications.models import Verification

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def _orm_revision(user) -> Revision:
    """A stored revision made directly with the ORM (the submission path is tested in test_submit.py)."""
    task, _ = Task.objects.get_or_create(name="enqueue-task", defaults={"input_shape": [4], "num_classes": 2})
    ticket = Ticket.objects.create(name="enqueue-ticket", owner=user, task=task)
    return Revision.objects.create(
        ticket=ticket, number=1, commit="a" * 40, created_by=user, config={}, architecture=[], density=0.5,
        num_parameters=10, status=Status.VERIFIED,
    )


def test_enqueue_sends_the_task_to_the_verify_queue(broker):
    assert try_send_run_verification(42, soft_time_limit_s=60, time_limit_s=90) is True
    assert broker.messages() == [{"task": RUN_TASK, "args": [42], "kwargs": {}}]


def test_requeue_enqueues_after_commit_and_not_before(owner, broker):
    revision = _orm_revision(owner)
    with transaction.atomic():
        services.requeue_revision(revision)
        assert broker.messages() == []  # still inside the transaction: nothing sent
    verification = Verification.objects.get(revision=revision)
    assert broker.messages() == [{"task": RUN_TASK, "args": [verification.pk], "kwargs": {}}]
    assert verification.status == Verification.Status.QUEUED and verification.enqueued_at is not None
    revision.refresh_from_db()
    assert revision.status == Status.PENDING


def test_rolled_back_requeue_sends_nothing(owner, broker):
    revision = _orm_revision(owner)
    with pytest.raises(Boom), transaction.atomic():
        services.requeue_revision(revision)
        raise Boom
    assert broker.messages() == []
    revision.refresh_from_db()
    assert revision.status == Status.VERIFIED


def test_unreachable_broker_does_not_fail_the_caller(settings, caplog):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_ENQUEUE_TIMEOUT_S = 0.5
    assert try_send_run_verification(7, soft_time_limit_s=60, time_limit_s=90) is False
    assert "could not enqueue verification 7" in caplog.text


def test_local_run_default_filesystem_broker_holds_the_message(settings, tmp_path):
    """The one-command local run has no Redis: kombu's filesystem transport under var/broker."""
    queue = tmp_path / "queue"
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(queue), "data_folder_out": str(queue),
        "processed_folder": str(tmp_path / "processed"), "store_processed": False,
        "control_folder": str(tmp_path / "control"),
    }
    assert try_send_run_verification(11, soft_time_limit_s=60, time_limit_s=90) is True
    messages = list(queue.iterdir())
    assert len(messages) == 1
    assert RUN_TASK in messages[0].read_text() and f".{settings.VERIFIER_QUEUE}.msg" in messages[0].name
