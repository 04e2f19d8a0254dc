"""Listing: filters (task, architecture, density range, status, owner, search), sorting, pagination."""

from __future__ import annotations

import pytest

from registry.tickets import services
from registry.tickets.models import Revision, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(owner_client, other_client, make_bundle, submit):
    """Five tickets: (name, client, bundle kwargs, final status, verified accuracy, downloads)."""
    rows = [
        ("mlp-a-50pct", owner_client, {"density": 0.5, "seed": 1}, Status.VERIFIED, 0.60, 5),
        ("mlp-b-10pct", owner_client, {"density": 0.1, "seed": 2}, Status.VERIFIED, 0.66, 1),
        ("mlp-c-30pct", other_client, {"density": 0.3, "seed": 3}, Status.REJECTED, None, 9),
        ("wide-d-20pct", other_client, {"density": 0.2, "seed": 4, "hidden": [64]}, Status.PENDING, None, 0),
        ("gone-e-40pct", owner_client, {"density": 0.4, "seed": 5}, Status.VERIFIED, 0.70, 2),
    ]
    for name, client, kwargs, status, accuracy, downloads in rows:
        r = submit(client, make_bundle(**kwargs), name=name)
        assert r.status_code == 201, r.json()
        revision = Revision.objects.get(ticket__name=name)
        if status != Status.PENDING:
            services.set_revision_status(revision, status, verified_accuracy=accuracy)
        for _ in range(downloads):
            services.record_download(revision)
    services.withdraw_ticket(Revision.objects.get(ticket__name="gone-e-40pct").ticket)
    return rows


def names(client, **params) -> list[str]:
    r = client.get("/api/v1/tickets/", params)
    assert r.status_code == 200, r.json()
    return [t["name"] for t in r.json()["results"]]


def test_default_lists_everything_but_withdrawn_newest_first(anon_client, catalogue):
    assert names(anon_client) == ["wide-d-20pct", "mlp-c-30pct", "mlp-b-10pct", "mlp-a-50pct"]


def test_filters(anon_client, catalogue):
    assert names(anon_client, task="mnist1d", sort="density") == [
        "mlp-b-10pct", "wide-d-20pct", "mlp-c-30pct", "mlp-a-50pct"]
    assert names(anon_client, task="digits") == []
    assert names(anon_client, architecture="mlp", density_min=0.15, density_max=0.35, sort="density") == [
        "wide-d-20pct", "mlp-c-30pct"]
    assert names(anon_client, status="verified", sort="density") == ["mlp-b-10pct", "mlp-a-50pct"]
    assert names(anon_client, status="verified,withdrawn", sort="density") == [
        "mlp-b-10pct", "gone-e-40pct", "mlp-a-50pct"]
    assert names(anon_client, owner="oscar", sort="density") == ["wide-d-20pct", "mlp-c-30pct"]
    assert names(anon_client, search="wide") == ["wide-d-20pct"]
    assert names(anon_client, search="mlp 10pct") == ["mlp-b-10pct"]


def test_sorting(anon_client, catalogue):
    assert names(anon_client, sort="accuracy")[:2] == ["mlp-b-10pct", "mlp-a-50pct"]  # verified, best first
    assert names(anon_client, sort="-density") == ["mlp-a-50pct", "mlp-c-30pct", "wide-d-20pct", "mlp-b-10pct"]
    assert names(anon_client, sort="downloads") == ["mlp-c-30pct", "mlp-a-50pct", "mlp-b-10pct", "wide-d-20pct"]
    assert names(anon_client, sort="-newest") == ["mlp-a-50pct", "mlp-b-10pct", "mlp-c-30pct", "wide-d-20pct"]


def test_pagination(anon_client, catalogue):
    page1 = anon_client.get("/api/v1/tickets/", {"page_size": 3, "sort": "density"}).json()
    assert page1["count"] == 4 and len(page1["results"]) == 3 and page1["previous"] is None
    page2 = anon_client.get(page1["next"]).json()
    assert [t["name"] for t in page2["results"]] == ["mlp-a-50pct"] and page2["next"] is None
    r = anon_client.get("/api/v1/tickets/", {"page": 9})
    assert r.status_code == 404 and r.json()["error"] == "not_found"


@pytest.mark.parametrize(("params", "field"), [
    ({"sort": "popularity"}, "sort"),
    ({"density_min": "lots"}, "density_min"),
    ({"density_min": 1.5}, "density_min"),
    ({"density_min": 0.5, "density_max": 0.1}, "density_min"),
    ({"status": "published"}, "status"),
    ({"page_size": 1000}, "page_size"),
])
def test_bad_list_parameters_are_400_naming_the_parameter(anon_client, params, field):
    r = anon_client.get("/api/v1/tickets/", params)
    assert r.status_code == 400
    assert r.json()["field"] == field and r.json()["detail"]


def test_list_items_carry_what_a_catalogue_needs(anon_client, catalogue):
    item = anon_client.get("/api/v1/tickets/", {"search": "mlp-b"}).json()["results"][0]
    assert item["status"] == "verified" and item["published"] is True
    assert item["verified_accuracy"] == 0.66 and item["claimed_accuracy"] == 0.6
    assert item["density"] == pytest.approx(0.1, abs=0.01) and item["task"] == "mnist1d"
    assert item["owner"] == "olivia" and item["downloads"] == 1 and len(item["latest_revision"]["commit"]) == 40


def test_tasks_endpoint(anon_client):
    tasks = anon_client.get("/api/v1/tasks/").json()
    mnist1d = next(t for t in tasks if t["name"] == "mnist1d")
    assert mnist1d["input_shape"] == [40] and mnist1d["num_classes"] == 10
    assert anon_client.get("/api/v1/tasks/mnist1d/").json()["name"] == "mnist1d"
    r = anon_client.get("/api/v1/tasks/imagenet/")
    assert r.status_code == 404 and r.json()["error"] == "task_not_found"
