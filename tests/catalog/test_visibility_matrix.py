"""Who may see an unpublished revision (registry.tickets.selectors: the one rule), on every page, REST API
and Hub-protocol route that shows a revision: the ticket's owner and staff see it, another user and an
anonymous visitor do not; a published revision is shown to all four."""

from __future__ import annotations

import pytest
from catalog_rows import make_ticket

WHO = ("owner", "staff", "other", "anonymous")
HUB = {"HTTP_X_TICKET_INCLUDE_UNPUBLISHED": "1"}


def _routes(ticket):
    revision = ticket.latest_revision
    verification = revision.verifications.get()
    name, commit = ticket.name, revision.commit
    return {
        "page": (f"/tickets/{name}/?rev={commit}", {}),
        "progress": (f"/tickets/{name}/progress.json?rev={commit}", {}),
        "curves": (f"/tickets/{name}/curves/{verification.pk}.svg", {}),
        "curves-chart": (f"/tickets/{name}/curves/{verification.pk}.vl.json", {}),
        "api-revision": (f"/api/v1/tickets/{name}/revisions/{commit}/", {}),
        "api-verification": (f"/api/v1/verifications/{verification.pk}/", {}),
        "api-revision-verifications": (f"/api/v1/revisions/{commit}/verifications/", {}),
        "hub-info": (f"/api/models/{name}/revision/{commit}", HUB),
        "hub-tree": (f"/api/models/{name}/tree/{commit}", HUB),
        "hub-resolve": (f"/{name}/resolve/{commit}/verification.json", HUB),
    }



def _codes(clients, ticket):
    return {route: {who: clients[who].get(url, **headers).status_code for who in WHO}
            for route, (url, headers) in _routes(ticket).items()}


#: Status codes on an unpublished (rejected) revision. The page, its progress and the REST revision are the
#: ticket's public record (status and verdict, as the ticket page says); what the rule guards is the
#: verification's details (runs, seeds, curves) and the files (the Hub protocol: 401 asks to log in).
UNPUBLISHED = {
    "page": {"owner": 200, "staff": 200, "other": 200, "anonymous": 200},
    "progress": {"owner": 200, "staff": 200, "other": 200, "anonymous": 200},
    "curves": {"owner": 200, "staff": 200, "other": 404, "anonymous": 404},
    "curves-chart": {"owner": 200, "staff": 200, "other": 404, "anonymous": 404},
    "api-revision": {"owner": 200, "staff": 200, "other": 200, "anonymous": 200},
    "api-verification": {"owner": 200, "staff": 200, "other": 404, "anonymous": 404},
    "api-revision-verifications": {"owner": 200, "staff": 200, "other": 200, "anonymous": 200},
    "hub-info": {"owner": 200, "staff": 200, "other": 403, "anonymous": 401},
    "hub-tree": {"owner": 200, "staff": 200, "other": 403, "anonymous": 401},
    "hub-resolve": {"owner": 200, "staff": 200, "other": 403, "anonymous": 401},
}


def test_an_unpublished_revision_is_shown_to_its_owner_and_staff_only(clients, task, owner):
    rejected = make_ticket("rejected-ticket", task=task, owner=owner, status="rejected", accuracy=0.4)
    assert _codes(clients, rejected) == UNPUBLISHED
    url = f"/api/v1/revisions/{rejected.latest_revision.commit}/verifications/"
    listed = {who: len(clients[who].get(url).json()) for who in WHO}
    assert listed == {"owner": 1, "staff": 1, "other": 0, "anonymous": 0}


def test_a_published_revision_is_shown_to_everyone(clients, task, owner):
    published = make_ticket("published-ticket", task=task, owner=owner, status="verified")
    assert _codes(clients, published) == {route: dict.fromkeys(WHO, 200) for route in UNPUBLISHED}


@pytest.mark.parametrize("who", WHO)
def test_the_rule_itself(who, clients, task, owner):
    from registry.tickets.selectors import can_see_revision, visible_revisions

    rejected = make_ticket("rejected-ticket", task=task, owner=owner, status="rejected", accuracy=0.4)
    from django.contrib.auth.models import AnonymousUser

    user = getattr(clients[who], "user", None) or AnonymousUser()
    expected = who in ("owner", "staff")
    assert can_see_revision(user, rejected.latest_revision) is expected
    assert visible_revisions(user).filter(pk=rejected.latest_revision.pk).exists() is expected
