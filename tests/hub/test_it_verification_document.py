"""verification.json is built once per finished verification and stored (registry.hub.documents): written
when the verification finishes (registry.catalog.signals), built on the first request for a record that
finished before that, never rebuilt per request; its sha256 and size come from the cache or the stored bytes."""

from __future__ import annotations

import hashlib
import json

import pytest
from catalog_rows import make_ticket
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.hub.documents import document_key
from registry.verifications.models import Verification, VerificationRun

NAME = "lenet-mnist1d-3.6pct"
URL = f"/{NAME}/resolve/main/verification.json"


def _own(ticket) -> Verification:
    return Verification.objects.select_related("revision__ticket").get(revision=ticket.served_revision)


def _sibling(client, path: str = "verification.json") -> dict:
    return next(s for s in client.get(f"/api/models/{NAME}").json()["siblings"] if s["rfilename"] == path)


def test_it_stores_the_document_when_the_verification_finishes(task, owner, client,
                                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(NAME, task=task, owner=owner)
    verification = _own(ticket)
    key = document_key(verification.revision, verification)
    assert default_storage.exists(key)
    stored = default_storage.open(key, "rb").read()
    response = client.get(URL)
    assert response.status_code == 200 and response.content == stored
    assert response["ETag"] == f'"{hashlib.sha256(stored).hexdigest()}"'
    assert _sibling(client) == {"rfilename": "verification.json", "size": len(stored),
                                "lfs": {"sha256": hashlib.sha256(stored).hexdigest(), "size": len(stored),
                                        "pointerSize": 134}}
    document = json.loads(stored)
    assert document["ticket"] == NAME and document["commit"] == ticket.served_revision.commit
    assert len(document["runs"]) == 13 and document["outcome"] == "winning"


def test_a_record_that_finished_before_gets_its_document_on_the_first_request(task, owner, client):
    ticket = make_ticket(NAME, task=task, owner=owner)  # no on-commit hook ran: nothing stored yet
    verification = _own(ticket)
    key = document_key(verification.revision, verification)
    assert not default_storage.exists(key)
    first = client.get(URL)
    assert first.status_code == 200 and default_storage.exists(key)
    assert default_storage.open(key, "rb").read() == first.content


def test_it_is_never_rebuilt_per_request(task, owner, client):
    ticket = make_ticket(NAME, task=task, owner=owner)
    first = client.get(URL).content
    sibling = _sibling(client)
    # The runs are gone from the database: a document rebuilt now would differ. Served bytes, the sha256 in
    # the listing and model info stay those stored, with the cache and without it.
    VerificationRun.objects.filter(verification=_own(ticket)).delete()
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            again = client.get(URL)
        assert again.content == first
        assert not [q for q in queries.captured_queries if "verificationrun" in q["sql"]]
        assert _sibling(client) == sibling
        assert next(s for s in client.get("/api/models").json()[0]["siblings"]
                    if s["rfilename"] == "verification.json") == sibling
        cache.clear()  # second round: sha256 and size read back from the stored bytes


def test_saving_the_finished_record_again_stores_a_new_document(task, owner, client,
                                                                django_capture_on_commit_callbacks):
    ticket = make_ticket(NAME, task=task, owner=owner)
    before = _sibling(client)
    verification = _own(ticket)
    verification.reason = "Reviewed by a moderator."
    with django_capture_on_commit_callbacks(execute=True):
        verification.save()
    after = _sibling(client)
    content = client.get(URL).content
    assert json.loads(content)["reason"] == "Reviewed by a moderator."
    assert after["lfs"]["sha256"] == hashlib.sha256(content).hexdigest() != before["lfs"]["sha256"]


def test_a_lost_stored_document_is_built_again(task, owner, client):
    ticket = make_ticket(NAME, task=task, owner=owner)
    first = client.get(URL).content
    verification = _own(ticket)
    default_storage.delete(document_key(verification.revision, verification))
    again = client.get(URL)
    assert again.status_code == 200 and again.content == first


@pytest.mark.parametrize("status", ["rejected", "verified"])
def test_the_model_card_is_listed_with_the_bytes_it_serves(status, task, owner, token_client_for):
    make_ticket(NAME, task=task, owner=owner, status=status, accuracy=0.4 if status == "rejected" else 0.6)
    headers = {"HTTP_X_TICKET_INCLUDE_UNPUBLISHED": "1"}  # a rejected revision: its owner, who asks for it
    client = token_client_for(owner)
    info = client.get(f"/api/models/{NAME}", **headers).json()
    card = next(s for s in info["siblings"] if s["rfilename"] == "README.md")
    body = client.get(f"/{NAME}/resolve/main/README.md", **headers)
    assert body.status_code == 200 and len(body.content) == card["size"]
    assert hashlib.sha256(body.content).hexdigest() == card["lfs"]["sha256"] == body["ETag"].strip('"')
    head = client.head(f"/{NAME}/resolve/main/README.md", **headers)
    assert head["ETag"] == body["ETag"] and head["Content-Length"] == str(card["size"])


def test_the_process_memo_never_lists_bytes_it_does_not_serve(task, owner, client, settings,
                                                              django_capture_on_commit_callbacks):
    """With the memo on, a finished record saved again gets a new stored document; whatever a process still
    remembers names the old one, which is still stored, so listed sha256 and served bytes always agree."""
    settings.TICKETHUB_HUB_MEMO_SECONDS = 60
    ticket = make_ticket(NAME, task=task, owner=owner)
    old = _sibling(client)
    verification = _own(ticket)
    old_key = document_key(verification.revision, verification)
    verification.reason = "Reviewed by a moderator."
    with django_capture_on_commit_callbacks(execute=True):
        verification.save()  # the hook drops this process's entry: the next answer is the new document
    new = _sibling(client)
    content = client.get(URL).content
    assert new["lfs"]["sha256"] == hashlib.sha256(content).hexdigest() != old["lfs"]["sha256"]
    new_key = document_key(verification.revision, Verification.objects.get(pk=verification.pk))
    assert new_key != old_key and default_storage.exists(new_key)
    stored_old = default_storage.open(old_key, "rb").read()  # still there for whoever remembers it
    assert hashlib.sha256(stored_old).hexdigest() == old["lfs"]["sha256"]
