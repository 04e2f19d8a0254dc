"""An oversized request is refused from its Content-Length with a 413 JSON, before the body is read."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


class UnreadableBody:
    """A wsgi.input that fails the test if anything reads it."""

    def read(self, *args, **kwargs):
        raise AssertionError("the request body was read")

    readline = read


def test_oversized_content_length_is_413_without_reading_the_body(owner_client, settings):
    settings.TICKETHUB_MAX_UPLOAD_BYTES = 1000
    r = owner_client.generic(
        "POST", "/api/v1/tickets/", b"",
        content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH="5000000", **{"wsgi.input": UnreadableBody()},
    )
    assert r.status_code == 413
    body = r.json()
    assert body["error"] == "upload_too_large"
    assert "5000000 bytes" in body["detail"] and "1000 bytes" in body["detail"]


def test_content_length_that_is_not_a_number_is_400(anon_client):
    r = anon_client.generic("POST", "/api/v1/tickets/", b"", CONTENT_LENGTH="lots",
                            **{"wsgi.input": UnreadableBody()})
    assert r.status_code == 400 and r.json()["error"] == "bad_content_length"


def test_a_large_text_field_is_413_json(owner_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    r = owner_client.post("/api/v1/tickets/", {"name": "abc", "message": "x" * 5000}, format="multipart")
    assert r.status_code == 413 and r.json()["error"] == "upload_too_large"
