"""Every API error is JSON ``{"error", "field", "detail"}``: unknown URLs, throttling, bad JSON bodies."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_unknown_api_url_is_json_404(anon_client):
    r = anon_client.get("/api/v1/no-such-endpoint/")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "field": None, "detail": "No such resource: /api/v1/no-such-endpoint/"}


def test_throttled_requests_get_429_json(owner_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "tokens": "2/hour"},
    }
    from rest_framework.throttling import SimpleRateThrottle

    # DRF reads the rates when the throttle class is imported; point it at the overridden ones.
    old = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    try:
        codes = [owner_client.post("/api/v1/tokens/", {"name": f"t{i}"}).status_code for i in range(3)]
        r = owner_client.post("/api/v1/tokens/", {"name": "t9"})
    finally:
        SimpleRateThrottle.THROTTLE_RATES = old
    assert codes == [201, 201, 429]
    assert r.status_code == 429 and r.json()["error"] == "throttled" and "seconds" in r.json()["detail"]
    assert int(r["Retry-After"]) > 0
    # Reads are not limited by the token-creation scope.
    assert owner_client.get("/api/v1/tokens/").status_code == 200


def test_malformed_json_body_is_400_json(owner_client):
    r = owner_client.generic("POST", "/api/v1/tokens/", "{not json", content_type="application/json")
    assert r.status_code == 400 and r.json()["error"] == "parse_error"


def test_unsupported_media_type_is_415_json(owner_client):
    r = owner_client.generic("POST", "/api/v1/tokens/", "name=x", content_type="text/plain")
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"


def test_submit_without_any_body_says_what_is_missing(owner_client):
    r = owner_client.post("/api/v1/tickets/", {}, format="multipart")
    assert r.status_code == 400
    assert r.json()["error"] == "missing_file" and r.json()["field"] == "config"
