"""Sign-up and API tokens: create with password, list, revoke; keys are stored hashed."""

from __future__ import annotations

import base64

import pytest
from rest_framework.test import APIClient

from registry.accounts.models import ApiToken, hash_key

pytestmark = pytest.mark.django_db


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_sign_up_then_first_token_with_password_then_use_it(anon_client):
    r = anon_client.post("/api/v1/accounts/", {"username": "grace", "password": "lottery-winning-ticket"})
    assert r.status_code == 201, r.json()

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("grace", "lottery-winning-ticket"))
    r = client.post("/api/v1/tokens/", {"name": "laptop"})
    assert r.status_code == 201, r.json()
    key = r.json()["key"]
    assert key.startswith("tkh_") and r.json()["key_hint"] == key[:8]

    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    me = token_client.get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["username"] == "grace"
    # "Token <key>" works too (DRF's usual keyword).
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert token_client.get("/api/v1/me/").status_code == 200


def test_key_is_stored_hashed_and_shown_once(owner_client):
    r = owner_client.post("/api/v1/tokens/", {"name": "ci"})
    key = r.json()["key"]
    token = ApiToken.objects.get(pk=r.json()["id"])
    assert token.key_hash == hash_key(key) and key not in token.key_hash
    listed = owner_client.get("/api/v1/tokens/").json()
    assert {t["name"] for t in listed} == {"tests", "ci"}
    assert all("key" not in t for t in listed)


def test_wrong_password_and_bad_token_are_401_json(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION=basic("nobody", "nothing"))
    r = anon_client.post("/api/v1/tokens/", {"name": "x"})
    assert r.status_code == 401 and r.json()["error"] == "authentication_failed"
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer tkh_not-a-real-token")
    r = anon_client.get("/api/v1/me/")
    assert r.status_code == 401
    assert r.json() == {"error": "authentication_failed", "field": None, "detail": "Invalid or revoked token."}
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_stops_working(owner_client, owner, token_client_for):
    second = token_client_for(owner, "second")
    token_id = ApiToken.objects.get(user=owner, name="second").pk
    assert second.get("/api/v1/me/").status_code == 200
    r = owner_client.delete(f"/api/v1/tokens/{token_id}/")
    assert r.status_code == 204
    r = second.get("/api/v1/me/")
    assert r.status_code == 401 and r.json()["detail"] == "Invalid or revoked token."
    assert [t["name"] for t in owner_client.get("/api/v1/tokens/").json()] == ["tests"]


def test_a_token_can_revoke_itself(owner_client, owner):
    token_id = ApiToken.objects.get(user=owner, name="tests").pk
    assert owner_client.delete(f"/api/v1/tokens/{token_id}/").status_code == 204
    assert owner_client.get("/api/v1/tokens/").status_code == 401


def test_duplicate_active_token_name_is_409(owner_client):
    r = owner_client.post("/api/v1/tokens/", {"name": "tests"})
    assert r.status_code == 409 and r.json()["error"] == "token_name_taken" and r.json()["field"] == "name"


def test_sign_up_refusals_say_what_is_wrong(anon_client, owner):
    r = anon_client.post("/api/v1/accounts/", {"username": "olivia", "password": "lottery-winning-ticket"})
    assert r.status_code == 409 and r.json()["error"] == "username_taken"
    r = anon_client.post("/api/v1/accounts/", {"username": "newbie", "password": "password"})
    assert r.status_code == 400 and r.json()["field"] == "password"
    r = anon_client.post("/api/v1/accounts/", {"username": "no spaces allowed", "password": "lottery-winning-ticket"})
    assert r.status_code == 400 and r.json()["field"] == "username"
