"""The server-rendered pages: what they show, filters in the query string, who sees what."""

from __future__ import annotations

import re

import pytest
from catalog_rows import commit_for, make_task, make_ticket


def _names(html: str) -> list[str]:
    return re.findall(r'class="ticket-link" href="/tickets/([^/"]+)/"', html)


def test_home_shows_tasks_with_verified_counts_newest_verified_and_search(client, tickets, task):
    make_task("cifar10", baseline=0.9, input_shape=[3, 32, 32])
    html = client.get("/").content.decode()
    assert "The open lottery-ticket hub" in html
    assert 'action="/tickets/"' in html and 'name="q"' in html
    assert re.search(r"<h3>mnist1d</h3>\s*<p class=\"big\">1 <", html)  # one verified of four listed
    assert re.search(r"<h3>cifar10</h3>\s*<p class=\"big\">0 <", html)
    assert _names(html) == ["lenet-mnist1d-3.6pct"]  # newest verified only


def test_catalog_lists_non_withdrawn_tickets_with_honest_status(client, tickets):
    html = client.get("/tickets/").content.decode()
    assert set(_names(html)) == {t.name for t in tickets.values()}
    assert "status-rejected" in html and "status-verifying" in html
    # an unverified ticket shows no verified accuracy, only its claim
    row = html[html.index("rejected-ticket"):]
    row = row[: row.index("</tr>")]
    assert "40.0%" not in row and "90.0%" in row


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("verified=on", ["lenet-mnist1d-3.6pct", "mlp-ticket"]),
        ("status=pending", ["pending-ticket"]),
        ("status=rejected&verified=on", []),
        ("dmin=4&dmax=12", ["pending-ticket", "rejected-ticket", "mlp-ticket"]),
        ("dmin=4&dmax=12&verified=on&task=mnist1d", ["mlp-ticket"]),
        ("q=verifying", ["verifying-ticket"]),
        ("arch=mlp", ["mlp-ticket"]),
        ("task=cifar10", []),
        ("sort=density", ["lenet-mnist1d-3.6pct", "rejected-ticket", "mlp-ticket", "pending-ticket",
                          "verifying-ticket"]),
        ("sort=accuracy&verified=on", ["lenet-mnist1d-3.6pct", "mlp-ticket"]),
        ("sort=downloads", ["mlp-ticket"]),
    ],
)
def test_catalog_filters_and_sorts_from_the_query_string(client, tickets, task, owner, query, expected):
    make_task("cifar10", baseline=0.9, input_shape=[3, 32, 32])
    make_ticket("mlp-ticket", task=task, owner=owner, family="mlp", density=0.08, accuracy=0.7, downloads=50)
    names = _names(client.get(f"/tickets/?{query}").content.decode())
    if query.startswith("sort="):
        assert names[: len(expected)] == expected
    else:
        assert sorted(names) == sorted(expected)


def test_catalog_filters_winning_and_verified_not_winning_tickets(client, tickets, task, owner):
    make_ticket("close-ticket", task=task, owner=owner, density=0.1, accuracy=0.55, claimed=0.55, dense=0.62)
    assert _names(client.get("/tickets/?status=winning").content.decode()) == ["lenet-mnist1d-3.6pct"]
    assert _names(client.get("/tickets/?status=verified_not_winning").content.decode()) == ["close-ticket"]
    html = client.get("/tickets/?status=winning").content.decode()
    assert '<option value="winning" selected>winning ticket</option>' in html


def test_catalog_paginates_and_keeps_filters_in_page_links(client, task, owner):
    for i in range(30):
        make_ticket(f"ticket-{i:02d}", task=task, owner=owner, density=0.01 + i / 100, verification=False)
    first = client.get("/tickets/?sort=density&verified=on").content.decode()
    assert len(_names(first)) == 25
    assert "page 1 of 2" in first
    assert 'href="?sort=density&amp;verified=on&amp;page=2"' in first
    second = client.get("/tickets/?sort=density&verified=on&page=2").content.decode()
    assert _names(second) == [f"ticket-{i:02d}" for i in range(25, 30)]


def test_catalog_reports_an_empty_density_range(client, tickets):
    html = client.get("/tickets/?dmin=50&dmax=10").content.decode()
    assert "The density range is empty" in html
    assert _names(html) == []


def test_catalog_reports_invalid_fields_and_applies_the_valid_ones(client, tickets):
    html = client.get("/tickets/?dmin=abc&sort=bogus&status=pending").content.decode()
    assert "Enter a number." in html and "Select a valid choice" in html
    assert _names(html) == ["pending-ticket"]
    assert client.get("/tickets/?page=999").status_code == 200


def test_withdrawn_tickets_leave_the_catalog_but_keep_their_page(client, tickets):
    from registry.tickets.services import withdraw_ticket

    withdraw_ticket(tickets["verified"], reason="a bug in the mask")
    assert "lenet-mnist1d-3.6pct" not in _names(client.get("/tickets/").content.decode())
    page = client.get("/tickets/lenet-mnist1d-3.6pct/")
    assert page.status_code == 200
    assert "a bug in the mask" in page.content.decode()


def test_leaderboard_ranks_verified_tickets_with_controls_dense_and_chart(client, tickets, task, owner):
    make_ticket("better-ticket", task=task, owner=owner, density=0.1, accuracy=0.99, claimed=0.99, dense=0.97)
    make_ticket("loser-ticket", task=task, owner=owner, density=0.1, accuracy=0.5, claimed=0.5, winning=False,
                dense=0.6)
    html = client.get("/tasks/mnist1d/").content.decode()
    assert _names(html) == ["better-ticket", "lenet-mnist1d-3.6pct", "loser-ticket"]
    assert "verified, not winning" in html and "winning ticket" in html
    # vs dense is against each ticket's measured dense parent, not the task's recorded baseline
    assert "+2.0 pp" in html and "-10.0 pp" in html and "-0.5 pp" in html
    assert "+36.2 pp" not in html
    assert 'data-spec="/tasks/mnist1d/frontier.vl.json?v=' in html
    assert '<noscript>' in html and '<picture>' in html and 'frontier.svg?size=narrow&amp;v=' in html
    plot = client.get("/tasks/mnist1d/frontier.svg")
    assert plot["Content-Type"].startswith("image/svg+xml")
    svg = plot.content.decode()
    assert "mnist1d: verified tickets (3)" in svg and "dense 97.0%" in svg  # median of the 3 dense parents


def test_frontier_chart_spec_has_every_ticket_linked_with_controls_and_dense(client, tickets, task, owner):
    make_ticket("loser-ticket", task=task, owner=owner, density=0.1, accuracy=0.5, claimed=0.5, winning=False,
                dense=0.6)
    response = client.get("/tasks/mnist1d/frontier.vl.json?v=1")
    assert response["Content-Type"] == "application/json" and "max-age=86400" in response["Cache-Control"]
    spec = response.json()
    assert spec["$schema"].endswith("vega-lite/v5.json")
    points = next(layer for layer in spec["layer"] if layer.get("mark", {}).get("type") == "point")
    rows = points["data"]["values"]
    kinds = {(r["ticket"], r["kind"]) for r in rows}
    assert ("lenet-mnist1d-3.6pct", "winning ticket") in kinds
    assert ("loser-ticket", "verified, not winning") in kinds
    assert ("loser-ticket", "dense parent") in kinds
    assert ("loser-ticket", "control: same mask, re-initialised") in kinds
    assert {r["url"] for r in rows} == {"/tickets/lenet-mnist1d-3.6pct/", "/tickets/loser-ticket/"}
    assert points["encoding"]["href"] == {"field": "url"}
    assert [t["field"] for t in points["encoding"]["tooltip"]][:4] == ["ticket", "kind", "density", "accuracy"]
    x = points["encoding"]["x"]
    assert x["scale"]["type"] == "log" and x["scale"]["reverse"] is True
    assert x["axis"]["values"][:6] == [100.0, 51.2, 21.0, 7.0, 3.6, 1.9]
    dense_rule = spec["layer"][0]["layer"][0]
    assert dense_rule["mark"]["type"] == "rule"


def test_leaderboard_plot_is_redrawn_when_its_data_changes(client, tickets, task, owner):
    first = client.get("/tasks/mnist1d/frontier.svg").content.decode()
    assert "verified tickets (1)" in first
    make_ticket("another", task=task, owner=owner, density=0.3, accuracy=0.7)
    assert "verified tickets (2)" in client.get("/tasks/mnist1d/frontier.svg").content.decode()


def test_plots_are_drawn_when_a_verification_finishes_not_on_a_visit(client, task, owner,
                                                                     django_capture_on_commit_callbacks):
    from django.core.cache import cache
    from django.core.files.storage import default_storage

    ticket = make_ticket("fresh-ticket", task=task, owner=owner, status="verifying", accuracy=None, claimed=0.6)
    verification = ticket.latest_revision.verifications.get()
    assert not default_storage.exists("plots") or not default_storage.listdir("plots")[1]
    from registry.tickets.services import set_revision_status

    with django_capture_on_commit_callbacks(execute=True):
        verification.status = "verified"
        verification.save()
        set_revision_status(ticket.latest_revision, "verified", verified_accuracy=0.61)
    stored = default_storage.listdir("plots")[1]
    assert len([f for f in stored if "frontier" in f and f.endswith(".svg")]) == 2  # wide and narrow
    assert len([f for f in stored if "frontier" in f and f.endswith(".json")]) == 1  # the chart's spec
    assert any("curves" in f for f in stored)
    cache.clear()  # a visitor on another process: the image comes from the storage, as it was drawn
    wide = next(f for f in stored if "frontier" in f and "wide" in f)
    spec = next(f for f in stored if "frontier" in f and f.endswith(".json"))
    assert client.get("/tasks/mnist1d/frontier.vl.json").content == default_storage.open(f"plots/{spec}").read()
    assert client.get("/tasks/mnist1d/frontier.svg").content == default_storage.open(f"plots/{wide}").read()


def test_unknown_pages_are_404_and_say_what_was_not_found(client, tickets):
    for url, words in [("/tasks/nope/", "There is no task named “nope”"),
                       ("/tickets/no-such-ticket/", "There is no ticket named “no-such-ticket”"),
                       ("/tickets/pending-ticket/?revision=xyz", "“xyz” is not a revision of pending-ticket"),
                       ("/no/such/page/", "There is no page at <code>/no/such/page/</code>")]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert words in response.content.decode(), url


def test_ticket_page_claim_measured_dense_controls_files_snippets(client, tickets):
    ticket = tickets["verified"]
    html = client.get(f"/tickets/{ticket.name}/").content.decode()
    assert "98.0%" in html  # claimed
    assert "98.2%" in html and "median of 3 seeds" in html  # measured
    assert "± 0.30 pp (sd)" in html and "spread 0.60 pp" in html
    assert "winning ticket" in html and "same mask, fresh random init" in html
    assert "Dense parent" in html and "98.7%" in html and "-0.50 pp" in html and "matching" in html
    assert 'class="verdict verdict-winning"' in html
    assert f'/tickets/{ticket.name}/curves/' in html
    for path in ("config.json", "init.safetensors", "mask.safetensors", "verification.json", "README.md"):
        assert f">{path}</a>" in html  # the files the Hub protocol serves, linked
    assert "1.0\xa0MB" in html  # sizes, human readable
    commit = commit_for(ticket.name, 1)
    assert (f'ticketclient.pull("{ticket.name}", revision="{commit}", endpoint="http://testserver")') in html
    assert f"ticket pull {ticket.name} --revision {commit} --endpoint http://testserver" in html
    assert 'hf_hub_download("lenet-mnist1d-3.6pct", "mask.safetensors"' in html and 'endpoint="http://testserver"' in html
    assert 'pip install &quot;./client[torch]&quot;' in html
    assert f"[![lottery ticket](http://testserver/badges/{ticket.name}.svg)](http://testserver/tickets/{ticket.name}/)" in html
    assert "imp" in html and "layerwise" in html  # provenance
    assert "20% per round (output layer 10%)" in html and "{&#x27;default&#x27;" not in html  # rates in words
    assert "layers.1" in html  # architecture table


def test_the_files_table_lists_what_the_hub_protocol_serves(client, tickets):
    ticket = tickets["verified"]
    html = client.get(f"/tickets/{ticket.name}/").content.decode()
    tree = client.get(f"/api/models/{ticket.name}/tree/main").json()
    for entry in tree:
        assert f">{entry['path']}</a>" in html and entry["oid"] in html


@pytest.mark.parametrize("status", ["rejected", "pending", "verifying"])
def test_unpublished_tickets_offer_no_pull_or_badge_snippet(client, tickets, status, owner):
    ticket = tickets[status]
    for viewer in (None, owner):
        if viewer is not None:
            client.force_login(viewer)
        html = client.get(f"/tickets/{ticket.name}/").content.decode()
        assert 'id="snippet-python"' not in html and 'id="snippet-badge"' not in html
        assert 'class="badge-preview"' not in html
        assert "Only verified revisions can be pulled" in html


def test_withdrawn_ticket_offers_no_snippet_and_says_so(client, tickets):
    from registry.tickets.services import withdraw_ticket

    withdraw_ticket(tickets["verified"], reason="a bug in the mask")
    html = client.get(f"/tickets/{tickets['verified'].name}/").content.decode()
    assert "a bug in the mask" in html and 'id="snippet-python"' not in html
    assert "nothing to pull or embed" in html
    assert 'data-outcome="withdrawn"' in html


def test_verified_not_winning_is_blue_and_says_why(client, task, owner):
    make_ticket("close-ticket", task=task, owner=owner, density=0.1, accuracy=0.55, claimed=0.55, dense=0.6)
    html = client.get("/tickets/close-ticket/").content.decode()
    assert 'class="verdict verdict-verified_not_winning"' in html
    assert "Verified, not winning." in html and "does not match its dense parent" in html
    assert 'status-verified_not_winning' in html and "status-rejected" not in html
    assert 'class="no"' not in html  # no red "not winning"


def test_a_failed_verification_is_grey_and_not_a_verdict(client, task, owner):
    ticket = make_ticket("unlucky-ticket", task=task, owner=owner, status="verifying", accuracy=None, claimed=0.6,
                         verification=False)
    from catalog_rows import make_verification

    make_verification(ticket.latest_revision, status="failed", accuracy=None, claimed=0.6)
    html = client.get("/tickets/unlucky-ticket/").content.decode()
    assert 'data-outcome="failed"' in html and "verification failed" in html
    assert "This is not a verdict on the ticket." in html and 'id="progress"' not in html
    assert client.get("/tickets/unlucky-ticket/progress.json").json()["finished"] is True


def test_old_records_without_a_dense_parent_still_render(client, task, owner):
    make_ticket("legacy-ticket", task=task, owner=owner, density=0.1, accuracy=0.6, claimed=0.6, legacy=True)
    html = client.get("/tickets/legacy-ticket/").content.decode()
    assert "predates the measured dense parent" in html and "winning ticket" in html
    assert client.get("/tasks/mnist1d/").status_code == 200
    assert client.get("/tasks/mnist1d/frontier.vl.json").status_code == 200


def test_curves_plot_of_a_verification(client, tickets):
    ticket = tickets["verified"]
    verification = ticket.latest_revision.verifications.get()
    svg = client.get(f"/tickets/{ticket.name}/curves/{verification.pk}.svg")
    assert svg.status_code == 200
    assert "ticket (own init + mask)" in svg.content.decode()
    assert client.get(f"/tickets/pending-ticket/curves/{verification.pk}.svg").status_code == 404


def test_curves_chart_spec_of_a_verification(client, tickets):
    ticket = tickets["verified"]
    verification = ticket.latest_revision.verifications.get()
    spec = client.get(f"/tickets/{ticket.name}/curves/{verification.pk}.vl.json").json()
    roles = spec["encoding"]["color"]["scale"]["domain"]
    assert roles[:2] == ["ticket (own init + mask)", "dense parent (own init, all weights)"]
    assert {r["run"] for r in spec["data"]["values"]} == {0, 1, 2}
    rejected = tickets["rejected"].latest_revision.verifications.get()
    assert client.get(f"/tickets/rejected-ticket/curves/{rejected.pk}.vl.json").status_code == 404


def test_anyone_sees_why_a_ticket_was_rejected_runs_stay_with_the_owner(client, tickets, owner, other):
    ticket = tickets["rejected"]
    verification = ticket.latest_revision.verifications.get()
    for viewer in (None, other, owner):
        if viewer is not None:
            client.force_login(viewer)
        html = client.get(f"/tickets/{ticket.name}/").content.decode()
        # measured vs threshold, in words, for every visitor; never "winning ticket"
        assert "Rejected." in html and "measured 40.00%" in html and "threshold 88.00%" in html
        assert "below the claim" in html and 'class="verdict verdict-rejected"' in html
        assert "winning ticket" not in html and "status-winning" not in html
    client.logout()
    assert client.get(f"/tickets/{ticket.name}/curves/{verification.pk}.svg").status_code == 404
    client.force_login(owner)
    assert client.get(f"/tickets/{ticket.name}/curves/{verification.pk}.svg").status_code == 200


def test_running_verification_shows_live_progress(client, tickets, owner):
    from registry.tickets.services import set_revision_status

    ticket = tickets["verifying"]
    html = client.get(f"/tickets/{ticket.name}/").content.decode()
    assert 'id="progress"' in html and "4 of 9 runs done" in html and "random_mask seed 1" in html
    progress = client.get(f"/tickets/{ticket.name}/progress.json").json()
    assert progress["status"] == "verifying" and progress["finished"] is False
    assert progress["runs_done"] == 4 and progress["runs_total"] == 9
    assert progress["current_iteration"] == 1200
    assert progress["current_accuracy"] is None  # a partial result: for the owner only
    client.force_login(owner)
    assert client.get(f"/tickets/{ticket.name}/progress.json").json()["current_accuracy"] == 0.41
    set_revision_status(ticket.latest_revision, "verified", verified_accuracy=0.9)
    assert client.get(f"/tickets/{ticket.name}/progress.json").json()["finished"] is True
    assert 'id="progress"' not in client.get(f"/tickets/{ticket.name}/").content.decode()


def test_older_revision_is_reachable_by_commit(client, tickets, owner, task):
    from catalog_rows import _revision

    ticket = tickets["verified"]
    newer = _revision(ticket, number=2, task=task, family="lenet-300-100", density=0.02, claimed=0.97,
                      status="pending", accuracy=None, owner=owner)
    newer.parent = ticket.latest_revision
    newer.save()
    ticket.latest_revision = newer
    ticket.status = "pending"
    ticket.save()
    latest = client.get(f"/tickets/{ticket.name}/").content.decode()
    assert "revision 2" in latest and commit_for(ticket.name, 2)[:12] in latest
    assert "The last verified revision is" in latest and f"?revision={commit_for(ticket.name, 1)}" in latest
    # no snippet for a pending revision: the page links the last verified one, which has them
    assert 'id="snippet-python"' not in latest and "the last verified one is" in latest
    client.force_login(owner)
    assert "--include-unpublished" in client.get(f"/tickets/{ticket.name}/").content.decode()
    old = client.get(f"/tickets/{ticket.name}/?revision={commit_for(ticket.name, 1)}").content.decode()
    assert "an older revision" in old and "98.2%" in old
    assert "The last verified revision is" not in old


def test_signup_login_logout(client, django_user_model):
    response = client.post("/signup/", {"username": "newbie", "password1": "a-long-passphrase-42",
                                        "password2": "a-long-passphrase-42"})
    assert response.status_code == 302 and response["Location"] == "/me/tokens/"
    assert django_user_model.objects.filter(username="newbie").exists()
    assert "Log out newbie" in client.get("/me/tokens/").content.decode()
    client.post("/logout/")
    assert client.get("/me/tokens/")["Location"].startswith("/login/")
    response = client.post("/login/", {"username": "newbie", "password": "a-long-passphrase-42"})
    assert response.status_code == 302 and response["Location"] == "/me/tickets/"


def test_signup_refuses_a_taken_name_and_weak_passwords(client, owner):
    taken = client.post("/signup/", {"username": "olivia", "password1": "a-long-passphrase-42",
                                     "password2": "a-long-passphrase-42"}).content.decode()
    assert "is taken" in taken
    weak = client.post("/signup/", {"username": "weakling", "password1": "123", "password2": "123"})
    assert weak.status_code == 200 and "too short" in weak.content.decode()


def test_tokens_create_show_once_use_and_revoke(client, owner):
    from registry.accounts.models import ApiToken

    client.force_login(owner)
    created = client.post("/me/tokens/", {"name": "laptop"})
    assert created.status_code == 201
    assert "no-store" in created["Cache-Control"]  # the key must not be cached anywhere
    html = created.content.decode()
    key = re.search(r'<code id="token-key">(tkh_[^<]+)</code>', html).group(1)
    assert "shown only once" in html
    # the key works against the API
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/me/").json()["username"] == "olivia"
    # listed afterwards without the key
    listing = client.get("/me/tokens/").content.decode()
    assert "laptop" in listing and key not in listing
    duplicate = client.post("/me/tokens/", {"name": "laptop"}).content.decode()
    assert "already have an active token" in duplicate
    token = ApiToken.objects.get(user=owner, name="laptop")
    assert client.post(f"/me/tokens/{token.pk}/revoke/").status_code == 302
    assert api.get("/api/v1/me/").status_code == 401


def test_someone_elses_token_cannot_be_revoked(client, owner, other):
    from registry.accounts.services import create_token

    issued = create_token(user=owner, name="mine")
    client.force_login(other)
    assert client.post(f"/me/tokens/{issued.token.pk}/revoke/").status_code == 404
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_my_tickets_lists_every_status_of_mine_only(client, tickets, owner, other, task):
    make_ticket("not-mine", task=task, owner=other)
    client.force_login(owner)
    names = _names(client.get("/me/tickets/").content.decode())
    assert sorted(names) == sorted(t.name for t in tickets.values())


def test_how_to_submit_page(client, task):
    html = client.get("/submit/").content.decode()
    assert "ticket submit" in html and "ticket login" in html and "mnist1d" in html


def test_how_to_submit_page_states_the_policy_in_force(client, task):
    from django.utils.html import escape

    from registry.verifications.config import current_policy

    assert escape(current_policy().text()) in client.get("/submit/").content.decode()


def test_architecture_table_of_a_real_submission_has_shapes_survivors_and_macs(client, owner, task, make_bundle):
    """A bundle submitted through the real service (validation, blobs): the table reads its mask."""
    from registry.tickets.services import BundleUpload, submit_bundle

    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.2, seed=0)
    submit_bundle(user=owner, upload=BundleUpload(config=bundle.config, init=bundle.init, mask=bundle.mask),
                  name="real-mlp-ticket")
    html = client.get("/tickets/real-mlp-ticket/").content.decode()
    layers = html[html.index("<h2>Architecture</h2>"):html.index("<h2>Files")]
    assert "32 × 40" in layers and "16 × 32" in layers and "10 × 16" in layers  # weight shapes
    assert re.search(r"\b\d+ / 32<", layers) and re.search(r"\b\d+ / 16<", layers)  # surviving neurons
    assert "1,280" in layers  # dense multiply-adds of the first layer (40 x 32)
    assert "stored layer list" not in layers
    assert "pending" in html and 'id="progress"' in html
    assert "queued: waiting for a verifier worker" in html


def test_transfer_verifications_are_shown_apart_from_the_own_result(client, tickets):
    from registry.verifications.models import Verification

    revision = tickets["verified"].latest_revision
    Verification.objects.create(
        revision=revision, task="digits", kind="transfer", status="verified", winning=True,
        decision={"ticket_statistic": 0.91, "control_statistics": {"reinit": 0.8, "random_mask": 0.78},
                  "spreads": {}, "winning": True},
    )
    html = client.get(f"/tickets/{tickets['verified'].name}/").content.decode()
    section = html[html.index("Transfer to other tasks"):html.index("<h2>Use it</h2>")]
    assert "digits" in section and "91.0%" in section and "reinit 80.0%" in section
    assert "never changes the ticket's own status" in section


def test_ticket_page_queries_do_not_grow_with_revisions_and_runs(client, tickets, owner, task,
                                                                 django_assert_max_num_queries):
    from catalog_rows import _revision, make_verification

    ticket = tickets["verified"]
    with django_assert_max_num_queries(14) as few:
        client.get(f"/tickets/{ticket.name}/")
    baseline = len(few.captured_queries)
    parent = ticket.latest_revision
    for number in range(2, 12):
        revision = _revision(ticket, number=number, task=task, family="lenet-300-100", density=0.03,
                             claimed=0.98, status="verified", accuracy=0.981, owner=owner)
        revision.parent = parent
        revision.save()
        make_verification(revision, status="verified", accuracy=0.981, claimed=0.98)
        parent = revision
    ticket.latest_revision = parent
    ticket.save()
    with django_assert_max_num_queries(baseline):
        response = client.get(f"/tickets/{ticket.name}/")
    assert "revision 11" in response.content.decode()
