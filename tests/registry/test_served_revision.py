"""Ticket.served_revision is the revision a ticket serves as published (its latest verified one): kept by the
services whenever a revision's status changes, and what the Hub listing and the ``winning`` filter read (one
join, no per-ticket subquery, so no query depends on the planner's statistics)."""

from __future__ import annotations

import pytest

from registry.tickets import services
from registry.tickets.models import Revision, Status, Ticket

pytestmark = pytest.mark.django_db


def _submit(owner, make_bundle, seed: int) -> Revision:
    b = make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.2, seed=seed)
    upload = services.BundleUpload(config=b.config, init=b.init, mask=b.mask)
    return services.submit_bundle(user=owner, upload=upload, name="served-ticket").revision


def _listed(anon_client) -> list[tuple[str, str]]:
    return [(m["id"], m["sha"]) for m in anon_client.get("/api/models").json()]


def test_it_serves_the_latest_verified_revision_while_a_newer_one_waits(owner, anon_client, make_bundle):
    rev1 = _submit(owner, make_bundle, seed=0)
    assert Ticket.objects.get().served_revision is None and _listed(anon_client) == []
    services.set_revision_status(rev1.pk, Status.VERIFIED, verified_accuracy=0.6)
    assert Ticket.objects.get().served_revision_id == rev1.pk
    assert _listed(anon_client) == [("served-ticket", rev1.commit)]

    rev2 = _submit(owner, make_bundle, seed=1)  # pending: the ticket still serves rev1
    assert Ticket.objects.get().served_revision_id == rev1.pk
    assert _listed(anon_client) == [("served-ticket", rev1.commit)]
    services.set_revision_status(rev2.pk, Status.VERIFIED, verified_accuracy=0.62)
    assert Ticket.objects.get().served_revision_id == rev2.pk
    assert _listed(anon_client) == [("served-ticket", rev2.commit)]

    services.requeue_revision(rev2)  # back to pending: rev1 is the latest verified one again
    assert Ticket.objects.get().served_revision_id == rev1.pk
    services.set_revision_status(rev2.pk, Status.REJECTED)
    assert Ticket.objects.get().served_revision_id == rev1.pk
    assert _listed(anon_client) == [("served-ticket", rev1.commit)]


def test_a_withdrawn_ticket_leaves_the_listing_and_returns_when_restored(owner, anon_client, make_bundle):
    rev1 = _submit(owner, make_bundle, seed=0)
    services.set_revision_status(rev1.pk, Status.VERIFIED, verified_accuracy=0.6)
    ticket = services.withdraw_ticket(Ticket.objects.get(), reason="bad data")
    assert _listed(anon_client) == []
    services.restore_ticket(ticket)
    assert Ticket.objects.get().served_revision_id == rev1.pk
    assert _listed(anon_client) == [("served-ticket", rev1.commit)]


def test_refresh_served_revisions_points_rows_written_around_the_services(owner, make_bundle):
    rev1 = _submit(owner, make_bundle, seed=0)
    Revision.objects.filter(pk=rev1.pk).update(status=Status.VERIFIED)  # a bulk load, not set_revision_status
    assert Ticket.objects.get().served_revision is None
    assert services.refresh_served_revisions() == 1
    assert Ticket.objects.get().served_revision_id == rev1.pk
