"""Admin: tasks, tickets, revisions, tokens and users pages load; moderation withdraws, restores, requeues."""

from __future__ import annotations

import pytest

from registry.celery_client import RUN_TASK
from registry.tickets import services
from registry.tickets.models import Revision, Status, Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ticket(owner_client, make_bundle, submit, broker):
    assert submit(owner_client, make_bundle(), name="moderated").status_code == 201
    broker.clear()
    return Ticket.objects.get(name="moderated")


def test_admin_pages_load(admin_client, ticket):
    revision = ticket.latest_revision
    for url in ["/admin/", "/admin/tickets/task/", "/admin/tickets/ticket/", f"/admin/tickets/ticket/{ticket.pk}/change/",
                "/admin/tickets/revision/", f"/admin/tickets/revision/{revision.pk}/change/",
                "/admin/accounts/apitoken/", "/admin/auth/user/"]:
        r = admin_client.get(url)
        assert r.status_code == 200, url


def test_non_staff_cannot_use_admin(client, owner, ticket):
    client.force_login(owner)
    r = client.get("/admin/tickets/ticket/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_withdraw_and_restore_actions(admin_client, ticket):
    r = admin_client.post("/admin/tickets/ticket/", {"action": "withdraw", "_selected_action": [ticket.pk]})
    assert r.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.WITHDRAWN and "moderator" in ticket.withdrawn_reason
    admin_client.post("/admin/tickets/ticket/", {"action": "restore", "_selected_action": [ticket.pk]})
    ticket.refresh_from_db()
    assert ticket.status == Status.PENDING and ticket.withdrawn_at is None


def test_requeue_action_resets_status_and_enqueues_after_commit(admin_client, ticket, broker):
    revision = ticket.latest_revision
    services.set_revision_status(revision, Status.REJECTED)
    r = admin_client.post("/admin/tickets/revision/", {"action": "requeue", "_selected_action": [revision.pk]})
    assert r.status_code == 302
    revision.refresh_from_db()
    ticket.refresh_from_db()
    assert revision.status == Status.PENDING and ticket.status == Status.PENDING
    verification = revision.verifications.get()
    assert verification.status == "queued"
    assert broker.messages() == [{"task": RUN_TASK, "args": [verification.pk], "kwargs": {}}]


def test_tickets_and_revisions_cannot_be_deleted_in_admin(admin_client, ticket):
    assert admin_client.get(f"/admin/tickets/ticket/{ticket.pk}/delete/").status_code == 403
    assert admin_client.get(f"/admin/tickets/revision/{ticket.latest_revision_id}/delete/").status_code == 403


def test_revisions_are_immutable(ticket):
    from django.core.exceptions import ValidationError

    revision = Revision.objects.get(pk=ticket.latest_revision_id)
    revision.density = 0.01
    with pytest.raises(ValidationError, match="immutable"):
        revision.save()
    with pytest.raises(ValidationError, match="immutable"):
        revision.save(update_fields=["density"])
    file = revision.files.first()
    with pytest.raises(ValidationError, match="immutable"):
        file.save()
