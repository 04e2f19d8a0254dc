"""Submitting a valid bundle stores it, measures density from the mask, lists it under its task, serves
the same bytes back, and enqueues its verification after commit."""

from __future__ import annotations

import hashlib

import pytest

from registry.celery_client import RUN_TASK
from registry.tickets import blobs
from registry.tickets.models import Revision, RevisionFile, Status, Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_valid_bundle_is_stored_measured_listed_and_served_back(owner_client, anon_client, make_bundle, submit,
                                                               broker):
    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.2, seed=0)
    r = submit(owner_client, bundle, name="mlp-mnist1d-20pct", message="first try")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["name"] == "mlp-mnist1d-20pct" and body["status"] == "pending" and body["created"] is True
    assert r["Location"] == body["url"] == "http://testserver/api/v1/tickets/mlp-mnist1d-20pct/"
    assert body["published"] is False and body["task"] == "mnist1d" and body["architecture"] == "mlp"

    # Density is measured from the mask (the factory keeps a known number of weights per layer).
    assert body["density"] == pytest.approx(bundle.expected_density, abs=1e-9)
    assert body["layer_densities"] == pytest.approx(bundle.expected_layer_densities)
    revision = Revision.objects.get()
    assert revision.density == pytest.approx(bundle.expected_density)
    assert len(revision.commit) == 40 and all(c in "0123456789abcdef" for c in revision.commit)
    assert body["revision"]["commit"] == revision.commit and body["revision"]["number"] == 1
    assert body["revision"]["message"] == "first try" and body["revision"]["claimed_accuracy"] == 0.6
    assert revision.num_parameters > 0

    # Stored content-addressed: rows and blobs agree with the uploaded bytes.
    files = {f.path: f for f in RevisionFile.objects.filter(revision=revision)}
    for path, data in bundle.by_path().items():
        assert files[path].sha256 == sha(data) and files[path].size == len(data)
    assert blobs.list_blobs() == sorted({sha(d) for d in bundle.by_path().values()})

    # Listed under its task (and not under another).
    listed = anon_client.get("/api/v1/tickets/", {"task": "mnist1d"}).json()
    assert [t["name"] for t in listed["results"]] == ["mlp-mnist1d-20pct"]
    assert anon_client.get("/api/v1/tickets/", {"task": "digits"}).json()["count"] == 0

    # Fetching the files returns the same bytes, with the sha256 in the headers.
    for f in body["files"]:
        got = anon_client.get(f["url"])
        assert got.status_code == 200
        content = b"".join(got.streaming_content)
        assert sha(content) == f["sha256"] == sha(bundle.by_path()[f["path"]])
        assert got["ETag"] == f'"{f["sha256"]}"' and got["X-Checksum-Sha256"] == f["sha256"]
        assert int(got["Content-Length"]) == len(content)

    # And the verification was enqueued, once, for this revision's own verification record.
    verification = revision.verifications.get()
    assert broker.messages() == [{"task": RUN_TASK, "args": [verification.pk], "kwargs": {}}]


def test_new_revision_of_own_ticket(owner_client, make_bundle, submit, broker):
    first = submit(owner_client, make_bundle(density=0.2, seed=0), name="evolving-ticket").json()
    r = submit(owner_client, make_bundle(density=0.1, seed=1), name="evolving-ticket", message="sparser")
    assert r.status_code == 201, r.json()
    second = r.json()
    assert second["created"] is False
    assert second["revision"]["number"] == 2 and second["revision"]["parent"] == first["revision"]["commit"]
    assert second["revision"]["commit"] != first["revision"]["commit"]
    assert second["density"] < first["density"]
    ticket = Ticket.objects.get(name="evolving-ticket")
    assert ticket.latest_revision.number == 2 and ticket.revisions.count() == 2
    revisions = owner_client.get("/api/v1/tickets/evolving-ticket/revisions/").json()["results"]
    assert [r["number"] for r in revisions] == [2, 1]
    # Both revisions stay downloadable by commit id.
    old = owner_client.get(f"/api/v1/tickets/evolving-ticket/revisions/{first['revision']['commit']}/")
    assert old.status_code == 200 and old.json()["density"] == first["density"]
    assert [m["args"] for m in broker.messages()] == [[r.verifications.get().pk]
                                                      for r in ticket.revisions.order_by("number")]


def test_identical_resubmission_is_refused(owner_client, make_bundle, submit):
    bundle = make_bundle()
    assert submit(owner_client, bundle, name="same-files").status_code == 201
    r = submit(owner_client, bundle, name="same-files")
    assert r.status_code == 409 and r.json()["error"] == "unchanged"
    assert Revision.objects.count() == 1


def test_same_files_under_two_names_share_blobs(owner_client, make_bundle, submit):
    bundle = make_bundle()
    a = submit(owner_client, bundle, name="twin-a").json()
    b = submit(owner_client, bundle, name="twin-b").json()
    assert a["revision"]["commit"] != b["revision"]["commit"]
    assert len(blobs.list_blobs()) == 3


def test_status_follows_latest_revision_and_published_means_verified(owner_client, anon_client, make_bundle,
                                                                      submit):
    from registry.tickets import services

    submit(owner_client, make_bundle(seed=0), name="follow-me")
    rev1 = Revision.objects.get(ticket__name="follow-me")
    services.set_revision_status(rev1, Status.VERIFYING)
    assert anon_client.get("/api/v1/tickets/follow-me/").json()["status"] == "verifying"
    services.set_revision_status(rev1.pk, Status.VERIFIED, verified_accuracy=0.61)
    detail = anon_client.get("/api/v1/tickets/follow-me/").json()
    assert detail["status"] == "verified" and detail["published"] is True and detail["verified_accuracy"] == 0.61

    submit(owner_client, make_bundle(seed=1), name="follow-me")
    detail = anon_client.get("/api/v1/tickets/follow-me/").json()
    assert detail["status"] == "pending" and detail["published"] is False
    assert detail["verified_accuracy"] == 0.61  # of the last verified revision, still downloadable
    verified = anon_client.get("/api/v1/tickets/follow-me/revisions/verified/").json()
    assert verified["commit"] == rev1.commit


def test_verification_endpoint_shows_the_revision_outcome(owner_client, anon_client, make_bundle, submit):
    from registry.tickets import services

    body = submit(owner_client, make_bundle(), name="check-me").json()
    url = body["revision"]["verification_url"]
    r = anon_client.get(url)
    assert r.status_code == 200
    assert r.json()["status"] == "pending" and r.json()["commit"] == body["revision"]["commit"]
    services.set_revision_status(Revision.objects.get().pk, Status.REJECTED)
    assert anon_client.get(url).json()["status"] == "rejected"
    assert anon_client.post(url, {}).status_code == 405  # results are written by workers, never by the API


def test_config_download_counts(owner_client, anon_client, make_bundle, submit):
    body = submit(owner_client, make_bundle(), name="popular").json()
    urls = {f["path"]: f["url"] for f in body["files"]}
    for _ in range(3):
        b"".join(anon_client.get(urls["config.json"]).streaming_content)
    b"".join(anon_client.get(urls["init.safetensors"]).streaming_content)
    anon_client.head(urls["config.json"])
    assert anon_client.get("/api/v1/tickets/popular/").json()["downloads"] == 3


def test_revision_lookup_errors_are_specific(owner_client, anon_client, make_bundle, submit):
    submit(owner_client, make_bundle(), name="lookup")
    r = anon_client.get("/api/v1/tickets/lookup/revisions/" + "0" * 40 + "/")
    assert r.status_code == 404 and r.json()["error"] == "revision_not_found"
    r = anon_client.get("/api/v1/tickets/lookup/revisions/main-branch/")
    assert r.status_code == 404 and r.json()["error"] == "invalid_revision"
    r = anon_client.get("/api/v1/tickets/lookup/revisions/latest/files/weights.bin")
    assert r.status_code == 404 and r.json()["error"] == "file_not_found"
    r = anon_client.get("/api/v1/tickets/no-such-ticket/")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
