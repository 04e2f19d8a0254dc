"""Abuse limits: per-IP and per-account rates on sign-up (API and web), token creation and submission; caps
on active tokens and on queued verifications per account; bounded page sizes. Each limit is hit here."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    """``rates(signup="2/hour", ...)``: override throttle rates (DRF reads them into a class attribute)."""
    from rest_framework.throttling import SimpleRateThrottle

    old = SimpleRateThrottle.THROTTLE_RATES

    def _set(**overrides: str) -> None:
        merged = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **overrides}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}
        SimpleRateThrottle.THROTTLE_RATES = merged

    yield _set
    SimpleRateThrottle.THROTTLE_RATES = old


def _client(ip: str) -> APIClient:
    return APIClient(REMOTE_ADDR=ip)


def _throttled(r) -> None:
    assert r.status_code == 429, (r.status_code, r.content[:200])
    body = r.json()
    assert body["error"] == "throttled" and "seconds" in body["detail"]
    assert int(r["Retry-After"]) > 0


def test_api_sign_up_is_limited_per_ip(rates):
    rates(signup="100/hour", signup_ip="2/hour")
    a = _client("10.0.0.1")
    codes = [a.post("/api/v1/accounts/", {"username": f"user{i}", "password": "correct-horse-battery-9"}).status_code
             for i in range(2)]
    assert codes == [201, 201]
    _throttled(a.post("/api/v1/accounts/", {"username": "user9", "password": "correct-horse-battery-9"}))
    other_ip = _client("10.0.0.2").post("/api/v1/accounts/", {"username": "user8", "password": "correct-horse-battery-9"})
    assert other_ip.status_code == 201


def test_web_sign_up_is_limited_per_ip(rates, client):
    from django.contrib.auth import get_user_model

    rates(signup="100/hour", signup_ip="1/hour")
    form = {"username": "webuser1", "password1": "correct-horse-battery-9", "password2": "correct-horse-battery-9"}
    first = client.post("/signup/", form, REMOTE_ADDR="10.0.1.1")
    assert first.status_code in (200, 302)
    client.logout()
    r = client.post("/signup/", {**form, "username": "webuser2"}, REMOTE_ADDR="10.0.1.1")
    assert r.status_code == 429 and b"Too many sign-ups" in r.content
    assert not get_user_model().objects.filter(username="webuser2").exists()


def test_token_creation_is_limited_per_account_and_per_ip(rates, owner, other, token_client_for):
    rates(tokens="2/hour", tokens_ip="4/hour")  # every attempt counts against the address, refused ones too
    a, b = token_client_for(owner), token_client_for(other)
    assert [a.post("/api/v1/tokens/", {"name": f"a{i}"}).status_code for i in range(2)] == [201, 201]
    _throttled(a.post("/api/v1/tokens/", {"name": "a9"}))  # the account's rate
    assert b.post("/api/v1/tokens/", {"name": "b0"}).status_code == 201
    _throttled(b.post("/api/v1/tokens/", {"name": "b1"}))  # the address's rate: a second account does not help


def test_submission_is_limited_per_ip_across_accounts(rates, django_user_model, token_client_for):
    rates(submit="100/hour", submit_ip="2/hour")
    clients = [token_client_for(django_user_model.objects.create_user(username=f"sub{i}", password="x" * 12))
               for i in range(3)]
    codes = [c.post("/api/v1/tickets/", {}, format="multipart").status_code for c in clients[:2]]
    assert codes == [400, 400]  # refused submissions count too
    _throttled(clients[2].post("/api/v1/tickets/", {}, format="multipart"))
    assert clients[2].get("/api/v1/tickets/").status_code == 200  # reads are not the submit scope


def test_active_tokens_per_account_are_capped(owner_client, settings):
    settings.TICKETHUB_MAX_TOKENS_PER_USER = 3  # the fixture's own token is one
    assert [owner_client.post("/api/v1/tokens/", {"name": f"t{i}"}).status_code for i in range(2)] == [201, 201]
    r = owner_client.post("/api/v1/tokens/", {"name": "t9"})
    assert r.status_code == 409 and r.json()["error"] == "too_many_tokens" and "revoke" in r.json()["detail"]
    token_id = owner_client.get("/api/v1/tokens/").json()[0]["id"]
    assert owner_client.delete(f"/api/v1/tokens/{token_id}/").status_code == 204
    assert owner_client.post("/api/v1/tokens/", {"name": "t9"}).status_code == 201


def test_queued_verifications_per_account_are_capped(owner_client, make_bundle, settings, assert_no_trace):
    from registry.tickets.models import Revision, Status
    from registry.tickets.services import set_revision_status

    settings.TICKETHUB_MAX_QUEUED_PER_USER = 2
    for i in range(2):
        b = make_bundle(task="mnist1d", family="mlp", hidden=[8], density=0.5, seed=i)
        assert owner_client.post("/api/v1/tickets/", b.form(name=f"queued-{i}"), format="multipart").status_code == 201
    b = make_bundle(task="mnist1d", family="mlp", hidden=[8], density=0.5, seed=7)
    r = owner_client.post("/api/v1/tickets/", b.form(name="queued-x"), format="multipart")
    assert r.status_code == 429 and r.json()["error"] == "too_many_queued" and "2" in r.json()["detail"]
    assert_no_trace(tickets=2, revisions=2, blobs_expected=len({*map(str, Revision.objects.values_list("files__sha256", flat=True))}))
    set_revision_status(Revision.objects.first(), Status.VERIFIED, verified_accuracy=0.5)
    r = owner_client.post("/api/v1/tickets/", b.form(name="queued-x"), format="multipart")
    assert r.status_code == 201, r.json()


@pytest.mark.parametrize("url", ["/api/v1/tickets/?page_size=101", "/api/v1/tickets/?page_size=0",
                                 "/api/v1/tickets/?page=0", "/api/v1/tickets/?page_size=99999999999999999999"])
def test_page_sizes_are_bounded(anon_client, url):
    r = anon_client.get(url)
    assert r.status_code == 400 and r.json()["field"] in ("page_size", "page")


def test_revision_pages_are_bounded(owner_client, make_bundle):
    b = make_bundle(task="mnist1d", family="mlp", hidden=[8], density=0.5, seed=0)
    assert owner_client.post("/api/v1/tickets/", b.form(name="paged-ticket"), format="multipart").status_code == 201
    r = owner_client.get("/api/v1/tickets/paged-ticket/revisions/?page_size=100000")
    assert r.status_code == 200 and set(r.json()) == {"count", "next", "previous", "results"}
    assert owner_client.get("/api/v1/tickets/paged-ticket/revisions/?page=999").status_code == 404
