"""Hostile input never causes a 5xx, is refused the same way on every database, and leaves nothing behind.

Every error under /api/ is the JSON ``{"error", "field", "detail"}`` (404, 405, 411, 500 too, also with DEBUG
on), and every 500 is logged with its traceback (issue 12, findings 1, 3 and 8).
"""

from __future__ import annotations

import json
import logging

import pytest

pytestmark = pytest.mark.django_db


def _bundle(make_bundle):
    return make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.2, seed=0)


def _edit_config(bundle, edit):
    cfg = json.loads(bundle.config)
    edit(cfg)
    return bundle.replace(config=json.dumps(cfg).encode())  # ensure_ascii: surrogates travel as escapes


def _assert_error(r, status: int, code: str | None = None, field: str | None = None):
    assert r.status_code == status, (r.status_code, r.content[:300])
    body = r.json()
    assert set(body) >= {"error", "field", "detail"}, body
    if code is not None:
        assert body["error"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.mark.parametrize("bad", ["\ud800", "\x00", "\x1b", "\x7f"])
@pytest.mark.parametrize("where", ["name", "description", "provenance.notes", "provenance.library",
                                   "provenance.rates"])
def test_control_characters_and_lone_surrogates_in_config_strings_are_400(owner_client, make_bundle, submit,
                                                                          assert_no_trace, where, bad):
    def edit(cfg):
        if where == "provenance.rates":
            cfg.setdefault("provenance", {})["rates"] = {f"layers{bad}": 0.2}
        elif where.startswith("provenance."):
            cfg.setdefault("provenance", {})[where.split(".")[1]] = f"x{bad}y"
        else:
            cfg[where] = f"ok-{bad}-name"

    r = submit(owner_client, _edit_config(_bundle(make_bundle), edit), name="mlp-hostile-1")
    _assert_error(r, 400, "bad_character")
    assert_no_trace()


def test_a_surrogate_name_suggestion_is_refused_before_any_write(owner_client, make_bundle, submit,
                                                                  assert_no_trace):
    r = submit(owner_client, _edit_config(_bundle(make_bundle), lambda c: c.update(name="abc\ud800")), name=None)
    _assert_error(r, 400, "bad_character", "name")
    assert_no_trace()


def test_huge_integer_literal_is_400(owner_client, make_bundle, submit, assert_no_trace):
    b = _bundle(make_bundle)
    text = b.config.decode().replace('"iterations":', '"iterations": ' + "9" * 5000 + ', "x":', 1)
    r = submit(owner_client, b.replace(config=text.encode()), name="mlp-hostile-2")
    _assert_error(r, 400, "config_not_json", "config.json")
    assert_no_trace()


def test_duplicate_json_keys_are_400(owner_client, make_bundle, submit, assert_no_trace):
    b = _bundle(make_bundle)
    text = b.config.decode().rstrip().rstrip("}") + ', "task": "cifar10"}'
    r = submit(owner_client, b.replace(config=text.encode()), name="mlp-hostile-3")
    _assert_error(r, 400, "duplicate_key", "task")
    assert_no_trace()


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "abc\n", "..abc"])
def test_path_traversal_and_control_characters_in_the_name_suggestion_are_400(owner_client, make_bundle, submit,
                                                                              assert_no_trace, name):
    r = submit(owner_client, _edit_config(_bundle(make_bundle), lambda c: c.update(name=name)), name=None)
    _assert_error(r, 400, field="name")
    assert_no_trace()


@pytest.mark.parametrize("message", ["a\x00b", "bell\x07"])
def test_control_characters_in_form_fields_are_400(owner_client, make_bundle, submit, assert_no_trace, message):
    r = submit(owner_client, _bundle(make_bundle), name="mlp-hostile-4", message=message)
    _assert_error(r, 400, field="message")
    assert_no_trace()


def test_two_parts_with_the_same_field_name_are_400(owner_client, make_bundle, assert_no_trace):
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    b = _bundle(make_bundle)
    body = encode_multipart(BOUNDARY, b.form(name="mlp-hostile-5"))
    extra = encode_multipart(BOUNDARY, {"init": b.form()["init"]})
    body = body[: body.rindex(b"--" + BOUNDARY.encode() + b"--")] + extra
    r = owner_client.generic("POST", "/api/v1/tickets/", body, content_type=MULTIPART_CONTENT)
    _assert_error(r, 400, "duplicate_field", "init")
    assert_no_trace()


def test_a_chunked_upload_without_content_length_gets_411(owner_client):
    r = owner_client.generic("POST", "/api/v1/tickets/", b"", content_type="multipart/form-data; boundary=x",
                             HTTP_TRANSFER_ENCODING="chunked")
    _assert_error(r, 411, "length_required")


@pytest.mark.parametrize("url", ["/api/v1/tickets/%00/", "/api/v1/tickets/abc/revisions/latest/files/%00",
                                 "/api/v1/tickets/a%00b/revisions/", "/api/models/%00", "/api/v1/tasks/%00/"])
def test_nul_in_url_paths_is_json_404(anon_client, url):
    _assert_error(anon_client.get(url), 404, "not_found")


@pytest.mark.parametrize("url", ["/api/v1/tickets/?search=%00", "/api/models?search=%00",
                                 "/api/v1/tickets/?task=a%00", "/api/v1/tickets/?%00=1"])
def test_nul_in_queries_is_json_400(anon_client, url):
    _assert_error(anon_client.get(url), 400, "bad_character")


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD", "GET"])
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/", "/api/schema/"])
def test_docs_and_schema_answer_every_method_without_5xx(anon_client, method, url):
    r = anon_client.generic(method, url)
    assert r.status_code < 500


def test_method_not_allowed_is_json(anon_client):
    _assert_error(anon_client.delete("/api/v1/tasks/"), 405, "method_not_allowed")
    _assert_error(anon_client.post("/api/docs/"), 405)


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_urls_are_json_404_also_with_debug(anon_client, settings, debug):
    settings.DEBUG = debug
    _assert_error(anon_client.get("/api/v1/nope/"), 404, "not_found")
    _assert_error(anon_client.get("/api/nope"), 404, "not_found")
    _assert_error(anon_client.get("/api/v1/tickets/no-such-ticket/"), 404)


@pytest.fixture
def broken_ticket_list(monkeypatch):
    """A bug in a selector (the one stand-in of this file: a fault no input can trigger on purpose)."""
    from registry.tickets import selectors

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(selectors, "ticket_list", boom)


@pytest.mark.parametrize("debug", [False, True])
def test_a_500_is_json_and_logged_with_its_traceback(broken_ticket_list, settings, debug, caplog):
    from rest_framework.test import APIClient

    settings.DEBUG = debug
    client = APIClient(raise_request_exception=False)
    with caplog.at_level(logging.ERROR):
        r = client.get("/api/v1/tickets/")
    body = _assert_error(r, 500, "server_error")
    assert "simulated bug" not in body["detail"]  # no internals to strangers
    logged = [rec for rec in caplog.records if rec.exc_info and "simulated bug" in str(rec.exc_info[1])]
    assert logged, "the 500 was not logged with its traceback"


def test_django_request_errors_reach_a_handler():
    from django.conf import settings

    assert settings.LOGGING["loggers"]["django.request"]["handlers"]


@pytest.mark.parametrize("body", [
    '{"name": "a", "name": "b"}',
    '{"name": "t' + "\\u0000" + '"}',
    '{"name": "t' + "\\ud800" + '"}',
    '{"name": ' + "9" * 5000 + "}",
    '{"name": NaN}',
    "[" * 100_000 + "]" * 100_000,
])
def test_json_bodies_are_parsed_strictly(owner_client, body):
    r = owner_client.generic("POST", "/api/v1/tokens/", body, content_type="application/json")
    _assert_error(r, 400, "parse_error")


def test_a_newline_is_never_stored_in_a_username_or_a_token_name(anon_client, owner_client):
    r = anon_client.post("/api/v1/accounts/", {"username": "newline\n", "password": "correct-horse-battery-9"})
    assert r.status_code == 201 and r.json()["username"] == "newline"  # surrounding whitespace is trimmed
    r = anon_client.post("/api/v1/accounts/", {"username": "new\nline", "password": "correct-horse-battery-9"})
    _assert_error(r, 400, field="username")
    _assert_error(owner_client.post("/api/v1/tokens/", {"name": "lap\ntop"}), 400, field="name")


def test_the_submit_service_refuses_control_characters_in_the_message(owner, make_bundle):
    from registry.common.errors import ApiError
    from registry.tickets import services

    b = _bundle(make_bundle)
    upload = services.BundleUpload(config=b.config, init=b.init, mask=b.mask)
    with pytest.raises(ApiError) as err:
        services.submit_bundle(user=owner, upload=upload, name="svc-ticket", message="esc\x1b[2J")
    assert err.value.code == "bad_character" and err.value.field == "message"
