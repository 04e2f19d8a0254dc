"""Permission matrix: owner, another user and anonymous against every write endpoint."""

from __future__ import annotations

import pytest

from registry.accounts.models import ApiToken
from registry.tickets.models import Status, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner_client, other_client, anon_client, make_bundle, submit):
    r = submit(owner_client, make_bundle(seed=0), name="owned-ticket")
    assert r.status_code == 201, r.json()
    return {
        "clients": {"owner": owner_client, "other": other_client, "anonymous": anon_client},
        "owner_token_id": ApiToken.objects.get(user=owner_client.user).pk,
        "make_bundle": make_bundle,
    }


def _submit_new_revision(client, world):
    b = world["make_bundle"](seed=7)
    return client.post("/api/v1/tickets/", b.form(name="owned-ticket"), format="multipart")


def _submit_new_ticket(client, world):
    b = world["make_bundle"](seed=8)
    return client.post("/api/v1/tickets/", b.form(name="brand-new-ticket"), format="multipart")


def _withdraw(client, world):
    return client.post("/api/v1/tickets/owned-ticket/withdraw/", {"reason": "test"}, format="json")


def _create_token(client, world):
    return client.post("/api/v1/tokens/", {"name": "another"}, format="json")


def _revoke_owner_token(client, world):
    return client.delete(f"/api/v1/tokens/{world['owner_token_id']}/")


def _delete_ticket(client, world):
    return client.delete("/api/v1/tickets/owned-ticket/")


def _edit_ticket(client, world):
    return client.patch("/api/v1/tickets/owned-ticket/", {"name": "renamed"}, format="json")


def _write_verification(client, world):
    return client.post("/api/v1/tickets/owned-ticket/revisions/latest/verification/", {"status": "verified"},
                       format="json")


# (endpoint, who) -> (status, error code). Anonymous writes are 401; another user's writes are refused
# with 403 (not the owner), 409 (the name is someone else's) or 404 (someone else's token does not exist
# for you); endpoints that do not exist for writing are 405 for everyone.
MATRIX = {
    "submit_new_revision": (_submit_new_revision, {"owner": (201, None), "other": (409, "name_taken"),
                                                    "anonymous": (401, "not_authenticated")}),
    "submit_new_ticket": (_submit_new_ticket, {"owner": (201, None), "other": (201, None),
                                                "anonymous": (401, "not_authenticated")}),
    "withdraw": (_withdraw, {"owner": (200, None), "other": (403, "not_owner"),
                             "anonymous": (401, "not_authenticated")}),
    "create_token": (_create_token, {"owner": (201, None), "other": (201, None),
                                     "anonymous": (401, "not_authenticated")}),
    "revoke_owner_token": (_revoke_owner_token, {"owner": (204, None), "other": (404, "not_found"),
                                                  "anonymous": (401, "not_authenticated")}),
    "delete_ticket": (_delete_ticket, {"owner": (405, "method_not_allowed"), "other": (405, "method_not_allowed"),
                                       "anonymous": (405, "method_not_allowed")}),
    "edit_ticket": (_edit_ticket, {"owner": (405, "method_not_allowed"), "other": (405, "method_not_allowed"),
                                   "anonymous": (405, "method_not_allowed")}),
    "write_verification": (_write_verification, {"owner": (405, "method_not_allowed"),
                                                  "other": (405, "method_not_allowed"),
                                                  "anonymous": (405, "method_not_allowed")}),
}

CELLS = [(endpoint, who) for endpoint, (_, expected) in MATRIX.items() for who in expected]


@pytest.mark.parametrize(("endpoint", "who"), CELLS, ids=[f"{e}-{w}" for e, w in CELLS])
def test_permission_matrix(endpoint, who, world):
    action, expected = MATRIX[endpoint]
    status, code = expected[who]
    r = action(world["clients"][who], world)
    assert r.status_code == status, (r.status_code, r.content[:300])
    if code is not None:
        assert r.json()["error"] == code
    ticket = Ticket.objects.get(name="owned-ticket")
    if endpoint == "withdraw":
        assert (ticket.status == Status.WITHDRAWN) == (who == "owner")
    if endpoint == "submit_new_revision":
        assert ticket.revisions.count() == (2 if who == "owner" else 1)
    if endpoint == "revoke_owner_token":
        assert ApiToken.objects.get(pk=world["owner_token_id"]).is_active == (who != "owner")


def test_staff_may_withdraw_any_ticket(world, admin_user, token_client_for):
    staff = token_client_for(admin_user)
    assert _withdraw(staff, world).status_code == 200
    assert Ticket.objects.get(name="owned-ticket").status == Status.WITHDRAWN


def test_withdrawn_ticket_leaves_listings_refuses_revisions_and_stops_serving_files(world):
    owner, anon = world["clients"]["owner"], world["clients"]["anonymous"]
    detail = anon.get("/api/v1/tickets/owned-ticket/").json()
    file_url = detail["files"][0]["url"]
    assert _withdraw(owner, world).status_code == 200
    assert anon.get("/api/v1/tickets/").json()["count"] == 0
    assert anon.get("/api/v1/tickets/", {"status": "withdrawn"}).json()["count"] == 1
    assert anon.get("/api/v1/tickets/owned-ticket/").json()["status"] == "withdrawn"
    r = anon.get(file_url)
    assert r.status_code == 410 and r.json()["error"] == "withdrawn"
    assert owner.get(file_url).status_code == 200  # the owner keeps access to their files
    r = _submit_new_revision(owner, world)
    assert r.status_code == 409 and r.json()["error"] == "ticket_withdrawn"
