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


class CountingBody:
    """A wsgi.input over ``data`` that counts how many bytes were read."""

    def __init__(self, data: bytes) -> None:
        import io

        self._io = io.BytesIO(data)
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._io.read(size)
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        chunk = self._io.readline(size)
        self.read_bytes += len(chunk)
        return chunk


@pytest.fixture
def small_part_limits(monkeypatch, settings):
    from registry.tickets.limits import clear_limits_cache

    settings.TICKETHUB_MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # the request limit is not what refuses here

    monkeypatch.setenv("TICKETHUB_MAX_FILE_BYTES", str(2 * 1024 * 1024))
    monkeypatch.setenv("TICKETHUB_MAX_CONFIG_BYTES", str(64 * 1024))
    clear_limits_cache()
    yield
    clear_limits_cache()


@pytest.mark.parametrize(("part", "size"), [("init", 40 * 1024 * 1024), ("config", 20 * 1024 * 1024)])
def test_an_oversized_file_part_is_refused_while_it_streams(owner_client, make_bundle, assert_no_trace,
                                                             small_part_limits, part, size):
    """Over the per-file limit but under the request limit: 413 after reading about the limit, not the body."""
    import io

    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[8], density=0.5, seed=0)
    form = bundle.form(name="big-part-ticket")
    big = io.BytesIO(b"\0" * size)
    big.name = "blob.bin"
    form[part] = big
    payload = encode_multipart(BOUNDARY, form)
    body = CountingBody(payload)
    r = owner_client.generic("POST", "/api/v1/tickets/", b"", content_type=MULTIPART_CONTENT,
                             CONTENT_LENGTH=str(len(payload)), **{"wsgi.input": body})
    assert r.status_code == 413, r.content[:300]
    assert r.json()["error"] == "file_too_large" and r.json()["field"] == part
    assert body.read_bytes < 4 * 1024 * 1024, f"read {body.read_bytes:,} of {len(payload):,} bytes"
    assert_no_trace()


def test_an_oversized_part_on_the_web_submit_form_is_413_not_500(owner, client, small_part_limits):
    import io

    client.force_login(owner)
    big = io.BytesIO(b"\0" * (3 * 1024 * 1024))
    big.name = "init.safetensors"
    r = client.post("/submit/", {"name": "web-big", "init": big})
    assert r.status_code == 413 and b"over the limit" in r.content
