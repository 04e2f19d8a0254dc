"""Badges: what they say per status, the SVG (anybadge) and shields.io JSON, cache headers, 404s."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from catalog_rows import commit_for

from registry.badges.badge import badge_for, format_percent, render_svg, shields_endpoint


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(0.982, "98.2%"), (0.036, "3.6%"), (0.0012, "0.12%"), (1.0, "100%"), (0.99991, "99.99%"), (0.0, "0.0%")],
)
def test_format_percent(fraction, text):
    assert format_percent(fraction) == text


def test_verified_badges_say_winning_or_not_with_accuracy_and_density():
    spec = badge_for("verified", accuracy=0.982, density=0.036, outcome="winning")
    assert spec.message == "winning ticket 98.2% @ 3.6%"
    assert spec.shields_color == "brightgreen"
    svg = render_svg(spec)
    root = ET.fromstring(svg.encode())  # well-formed XML
    assert root.tag.endswith("svg")
    assert "winning ticket 98.2% @ 3.6%" in svg
    assert shields_endpoint(spec) == {"schemaVersion": 1, "label": "lottery ticket",
                                      "message": "winning ticket 98.2% @ 3.6%", "color": "brightgreen",
                                      "cacheSeconds": 300}
    plain = badge_for("verified", accuracy=0.55, density=0.1, outcome="verified_not_winning")
    assert plain.message == "verified, not winning 55.0% @ 10.0%"
    assert plain.shields_color == "blue"  # verified is not a failure: never red
    # a record from before the dense parent: its winning flag decides
    assert badge_for("verified", accuracy=0.5, density=0.1, winning=False).message.startswith("verified, not winning")
    assert badge_for("verified", accuracy=0.5, density=0.1, winning=True).message.startswith("winning ticket")


def test_a_rejected_badge_is_red_and_never_winning():
    spec = badge_for("rejected", accuracy=0.4, density=0.05, winning=True, outcome="rejected")
    assert spec.message == "rejected" and spec.shields_color == "red"


def test_a_failed_verification_is_grey():
    spec = badge_for("verifying", verification_status="failed")
    assert spec.message == "verification failed" and spec.shields_color == "lightgrey"


@pytest.mark.parametrize("status", ["pending", "verifying", "rejected", "withdrawn"])
def test_other_statuses_say_only_the_status(status):
    spec = badge_for(status, accuracy=0.5, density=0.1)
    assert spec.message == status
    assert status in render_svg(spec)


def test_unknown_status_is_not_found():
    assert badge_for(None).message == "not found"
    assert badge_for("bogus").message == "not found"


def test_changing_states_are_cached_briefly_and_pinned_final_ones_longer():
    assert badge_for("pending").max_age < badge_for("verified", accuracy=0.9, density=0.1).max_age
    assert badge_for("verified", accuracy=0.9, density=0.1).max_age < badge_for(
        "verified", accuracy=0.9, density=0.1, pinned=True).max_age
    assert badge_for("verifying", pinned=True).max_age == badge_for("verifying").max_age


EXPECTED = {
    "verified": "winning ticket 98.2% @ 3.6%",
    "pending": "pending",
    "verifying": "verifying",
    "rejected": "rejected",
}


@pytest.mark.parametrize("status", list(EXPECTED))
def test_latest_badge_endpoints_for_each_status(client, tickets, status):
    name = tickets[status].name
    svg = client.get(f"/badges/{name}.svg")
    assert svg.status_code == 200
    assert svg["Content-Type"].startswith("image/svg+xml")
    assert EXPECTED[status] in svg.content.decode()
    ET.fromstring(svg.content)
    cache_control = svg["Cache-Control"]
    assert "public" in cache_control and "max-age=" in cache_control
    assert svg["ETag"]

    endpoint = client.get(f"/badges/{name}.json")
    assert endpoint.status_code == 200
    body = json.loads(endpoint.content)
    assert body["schemaVersion"] == 1
    assert body["message"] == EXPECTED[status]
    assert body["label"] == "lottery ticket"
    assert endpoint["Access-Control-Allow-Origin"] == "*"


def test_badge_revalidates_with_etag(client, tickets):
    first = client.get("/badges/lenet-mnist1d-3.6pct.svg")
    again = client.get("/badges/lenet-mnist1d-3.6pct.svg", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again.content == b""


def test_badge_changes_when_the_status_changes(client, tickets):
    from registry.tickets.services import set_revision_status

    ticket = tickets["verifying"]
    before = client.get(f"/badges/{ticket.name}.svg")
    set_revision_status(ticket.latest_revision, "verified", verified_accuracy=0.91)
    after = client.get(f"/badges/{ticket.name}.svg", HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert "91.0% @ 20.0%" in after.content.decode()


def test_pinned_badge_follows_its_revision_and_withdrawal(client, tickets):
    from registry.tickets.services import withdraw_ticket

    ticket = tickets["verified"]
    commit = commit_for(ticket.name, 1)
    pinned = client.get(f"/badges/{ticket.name}/{commit}.svg")
    assert pinned.status_code == 200
    assert "winning ticket 98.2% @ 3.6%" in pinned.content.decode()
    assert "max-age=3600" in pinned["Cache-Control"]
    assert json.loads(client.get(f"/badges/{ticket.name}/{commit}.json").content)["message"] == (
        "winning ticket 98.2% @ 3.6%")

    withdraw_ticket(ticket)
    assert "withdrawn" in client.get(f"/badges/{ticket.name}/{commit}.svg").content.decode()
    assert json.loads(client.get(f"/badges/{ticket.name}.json").content)["message"] == "withdrawn"


@pytest.mark.parametrize(
    "url",
    ["/badges/no-such-ticket.svg", "/badges/no-such-ticket.json",
     f"/badges/lenet-mnist1d-3.6pct/{'0' * 40}.svg", f"/badges/pending-ticket/{commit_for('lenet-mnist1d-3.6pct', 1)}.json"],
)
def test_unknown_ticket_or_revision_is_a_404_not_found_badge(client, tickets, url):
    response = client.get(url)
    assert response.status_code == 404
    assert "not found" in response.content.decode()
    assert "max-age=60" in response["Cache-Control"]
    assert "ETag" not in response


def test_badge_of_a_verified_ticket_that_is_not_winning(client, task, owner):
    from catalog_rows import make_ticket

    make_ticket("close-ticket", task=task, owner=owner, density=0.1, accuracy=0.55, claimed=0.55, dense=0.6)
    body = json.loads(client.get("/badges/close-ticket.json").content)
    assert body["message"] == "verified, not winning 55.0% @ 10.0%" and body["color"] == "blue"
    assert "verified, not winning" in client.get("/badges/close-ticket.svg").content.decode()
