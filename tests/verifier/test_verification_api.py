"""The verification API: visibility of records, the policy with every result, transfer requests' refusals.

Records are written here with the ORM the way a worker writes them (no worker needed for these checks).
"""

from __future__ import annotations

import pytest

from registry.tickets import services
from registry.verifications.models import Verification, VerificationRun
from verifier.policy import current_policy

pytestmark = pytest.mark.django_db


def _submitted(client, make_bundle, name: str, seed: int = 0):
    r = client.post("/api/v1/tickets/", make_bundle(seed=seed).form(name=name), format="multipart")
    assert r.status_code == 201, r.content
    from registry.tickets.models import Revision

    return Revision.objects.get(commit=r.json()["revision"]["commit"])


def _record(revision, *, status: str, reason: str = "", kind: str = "own", task: str | None = None) -> Verification:
    # the submission made the own record (queued): what a worker would then write into it
    v, _ = Verification.objects.update_or_create(
        revision=revision, task=task or revision.ticket.task.name, kind=kind,
        defaults={"status": status, "reason": reason, "runs_total": 10, "runs_done": 1,
                  "policy": {"statistic": "median", "text": "stated in advance"}})
    VerificationRun.objects.create(verification=v, role="ticket", seed=0, final_test_accuracy=0.61,
                                   curve=[{"iteration": 0, "test_accuracy": 0.1}], iterations=200)
    return v


def test_rejected_reason_is_shown_to_the_owner_not_to_others(owner_client, other_client, anon_client, make_bundle):
    revision = _submitted(owner_client, make_bundle, "reasoned")
    services.set_revision_status(revision.pk, "rejected")
    _record(revision, status="rejected", reason="below the claim")
    url = f"/api/v1/revisions/{revision.commit}/verifications/"
    mine = owner_client.get(url).json()
    assert [r["reason"] for r in mine] == ["below the claim"]
    assert mine[0]["policy"] == {"statistic": "median", "text": "stated in advance"}
    assert mine[0]["summary"]["ticket"] == {"runs": 1, "accuracies": [0.61], "statistic": 0.61, "spread": 0.0}
    assert other_client.get(url).json() == [] and anon_client.get(url).json() == []


def test_verified_results_are_public_with_progress_and_runs(owner_client, anon_client, make_bundle):
    revision = _submitted(owner_client, make_bundle, "public-one")
    services.set_revision_status(revision.pk, "verified", verified_accuracy=0.61)
    v = _record(revision, status="verified")
    body = anon_client.get(f"/api/v1/verifications/{v.pk}/").json()
    assert body["status"] == "verified" and body["ticket"] == "public-one" and body["revision"] == revision.commit
    assert body["progress"]["runs_total"] == 10 and body["runs"][0]["role"] == "ticket"
    # the registry's revision endpoint embeds the same records
    records = anon_client.get(f"/api/v1/tickets/public-one/revisions/{revision.commit}/verification/").json()["records"]
    assert [r["id"] for r in records] == [v.pk]


def test_queued_record_shows_the_current_policy(owner_client, make_bundle):
    revision = _submitted(owner_client, make_bundle, "queued-one")
    v = Verification.objects.get(revision=revision, task="mnist1d", kind="own")  # made by the submission
    body = owner_client.get(f"/api/v1/verifications/{v.pk}/").json()
    tolerance = current_policy().tolerance_for("mnist1d")
    assert body["status"] == "queued" and body["policy"]["task"] == "mnist1d" and body["policy"]["tolerance"] == tolerance
    assert body["seeds"] is None  # drawn when it first runs, shown once it has finished


def test_policy_endpoint(anon_client):
    body = anon_client.get("/api/v1/verification-policy/").json()
    assert body["statistic"] == "median" and body["runs_per_role"] == 3 and "tolerance" not in body
    assert body["tolerances"]["mnist1d"]["tolerance"] == current_policy().tolerance_for("mnist1d")
    assert body["tolerances"]["mnist1d"]["sd"] > 0 and body["tolerance_formula"].startswith("max(floor")


def test_transfer_refusals(owner_client, admin_client_factory, make_bundle):
    revision = _submitted(owner_client, make_bundle, "transfer-refusals")
    url = f"/api/v1/revisions/{revision.commit}/verifications/transfer/"
    r = owner_client.post(url, {"task": "digits"})
    assert r.status_code == 409 and r.json()["error"] == "not_verified"
    services.set_revision_status(revision.pk, "verified", verified_accuracy=0.6)
    assert owner_client.post(url, {"task": "nope"}).json()["error"] == "unknown_task"
    assert owner_client.post(url, {"task": "mnist1d"}).json()["error"] == "same_task"
    r = admin_client_factory().post(url, {"task": "digits"})  # admins may ask; digits is 1x8x8, not 40
    assert r.status_code == 400 and r.json()["error"] == "shape_mismatch"
    assert not Verification.objects.filter(kind="transfer").exists()


@pytest.fixture
def admin_client_factory(django_user_model, token_client_for):
    def make():
        admin = django_user_model.objects.create_user(username="ada", password="x-correct-horse", is_staff=True)
        return token_client_for(admin)

    return make
