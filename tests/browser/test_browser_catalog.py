"""Drive the real pages in headless Chromium: browse, filter, open a ticket, copy a snippet, watch a
verification progress live, sign up, log in, create and revoke a token."""

from __future__ import annotations

import re

import pytest
import requests
from catalog_rows import make_task, make_ticket
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hub(owner, other):
    """A small hub: two tasks, verified tickets on a frontier, one running, one rejected, one real bundle."""
    task = make_task("mnist1d", baseline=0.62)
    make_task("fashion-mnist", baseline=0.89, input_shape=[1, 28, 28])
    for i, (density, accuracy) in enumerate([(0.5, 0.63), (0.2, 0.645), (0.08, 0.64), (0.036, 0.61),
                                             (0.012, 0.55), (0.004, 0.41)]):
        make_ticket(f"lenet-mnist1d-{density * 100:g}pct", task=task, owner=owner if i % 2 else other,
                    density=density, accuracy=accuracy, claimed=accuracy - 0.005, downloads=10 * i,
                    winning=accuracy > 0.5)
    make_ticket("mlp-mnist1d-small", task=task, owner=owner, family="mlp", density=0.1, accuracy=0.58,
                claimed=0.58)
    make_ticket("running-ticket", task=task, owner=owner, status="verifying", density=0.05, accuracy=None,
                claimed=0.62)
    make_ticket("overclaimed-ticket", task=task, owner=owner, status="rejected", density=0.05, accuracy=0.4,
                claimed=0.7)
    return task


def test_browse_filter_open_a_ticket_and_copy_snippets(page, hub, shot, live_server):
    page.goto("/")
    expect(page.locator("h1")).to_have_text("The open lottery-ticket hub")
    expect(page.locator(".card", has_text="mnist1d").locator(".big")).to_contain_text("7")
    shot(page, "01-home")

    # search from the home page lands in the catalog with the query in the URL
    page.get_by_label("Search tickets").fill("lenet")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/tickets/\?q=lenet"))
    expect(page.locator("a.ticket-link")).to_have_count(8)  # names and the lenet-300-100 family

    # filters: task, verified only, density 1%..10%, sorted by accuracy; all in a shareable URL
    page.goto("/tickets/")
    page.select_option("select[name=task]", "mnist1d")
    page.check("input[name=verified]")
    page.fill("input[name=dmin]", "1")
    page.fill("input[name=dmax]", "10")
    page.select_option("select[name=sort]", "accuracy")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"verified=on"))
    url = page.url
    for part in ("task=mnist1d", "dmin=1", "dmax=10", "sort=accuracy"):
        assert part in url
    names = page.locator("a.ticket-link").all_inner_texts()
    assert names == ["lenet-mnist1d-8pct", "lenet-mnist1d-3.6pct", "mlp-mnist1d-small", "lenet-mnist1d-1.2pct"]
    shot(page, "02-catalog-filtered")

    # the same URL in a new tab shows the same list (shareable)
    other_tab = page.context.new_page()
    other_tab.goto(url)
    assert other_tab.locator("a.ticket-link").all_inner_texts() == names
    other_tab.close()

    # the rejected one is honest about it
    page.goto("/tickets/?status=rejected")
    expect(page.locator("a.ticket-link")).to_have_text(["overclaimed-ticket"])
    expect(page.locator("tbody .status")).to_have_text("rejected")

    # open a ticket
    page.goto(url)
    page.get_by_role("link", name="lenet-mnist1d-3.6pct").click()
    page.wait_for_url("**/tickets/lenet-mnist1d-3.6pct/")
    expect(page.locator(".ticket-head h1")).to_contain_text("lenet-mnist1d-3.6pct")
    expect(page.locator("section.result")).to_contain_text("61.0%")
    expect(page.locator("section.result")).to_contain_text("median of 3 seeds")
    expect(page.locator(".ticket-head .status")).to_have_text("winning ticket")
    expect(page.locator("#verdict")).to_contain_text("Winning ticket.")
    curves = page.locator("#curves-chart")
    curves.scroll_into_view_if_needed()
    expect(curves).to_have_attribute("data-ready", "1")
    assert curves.locator(".mark-line path").count() >= 4  # a line per run
    badge = page.locator("img.badge-preview")
    assert badge.evaluate("img => img.naturalWidth") > 50
    shot(page, "03-ticket")

    # copy the Python snippet and the badge Markdown to the clipboard
    page.locator("button.copy[data-copy-target=snippet-python]").click()
    expect(page.locator("button.copy[data-copy-target=snippet-python]")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert 'ticketclient.pull("lenet-mnist1d-3.6pct", revision="' in copied
    assert copied == page.locator("#snippet-python").inner_text()
    page.locator("button.copy[data-copy-target=snippet-badge]").click()
    badge_md = page.evaluate("navigator.clipboard.readText()")
    assert badge_md == (f"[![lottery ticket]({live_server.url}/badges/lenet-mnist1d-3.6pct.svg)]"
                        f"({live_server.url}/tickets/lenet-mnist1d-3.6pct/)")
    # the badge URL it copied serves the verified badge
    svg = requests.get(f"{live_server.url}/badges/lenet-mnist1d-3.6pct.svg", timeout=10)
    assert "winning ticket 61.0% @ 3.6%" in svg.text

    # the leaderboard with its plot
    page.get_by_role("link", name="mnist1d").first.click()
    page.wait_for_url("**/tasks/mnist1d/")
    chart = page.locator("#frontier-chart")
    expect(chart).to_have_attribute("data-ready", "1")
    assert chart.locator("svg").first.evaluate("svg => svg.getBoundingClientRect().width") > 600
    ranked = page.locator("table.leaderboard a.ticket-link").all_inner_texts()
    assert ranked[:3] == ["lenet-mnist1d-20pct", "lenet-mnist1d-8pct", "lenet-mnist1d-50pct"]
    assert "running-ticket" not in ranked and "overclaimed-ticket" not in ranked
    shot(page, "04-leaderboard")


def test_verification_progress_updates_live_and_the_verdict_appears(page, hub, shot):
    from registry.tickets.models import Ticket
    from registry.tickets.services import set_revision_status
    from registry.verifications.models import Verification

    page.goto("/tickets/running-ticket/")
    expect(page.locator("#progress-text")).to_contain_text("4 of 9 runs done")
    shot(page, "05-progress-before")
    ticket = Ticket.objects.get(name="running-ticket")
    Verification.objects.filter(revision=ticket.latest_revision).update(
        runs_done=7, current_run="reinit seed 2", current_iteration=3000)
    expect(page.locator("#progress-text")).to_contain_text("7 of 9 runs done · now: reinit seed 2 (iteration 3000")
    assert page.locator("#progress-bar").evaluate("bar => bar.value") == 7
    shot(page, "06-progress-live")
    set_revision_status(ticket.latest_revision, "verified", verified_accuracy=0.615)
    # the page reloads itself when the verdict is in
    expect(page.locator(".ticket-head .status")).to_have_text("verified", timeout=15_000)
    expect(page.locator("#progress")).to_have_count(0)
    shot(page, "07-progress-verified")


def test_sign_up_log_out_log_in_create_copy_use_and_revoke_a_token(page, hub, shot, live_server):
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.fill("input[name=username]", "grace")
    page.fill("input[name=password1]", "lottery-tickets-win")
    page.fill("input[name=password2]", "lottery-tickets-win")
    shot(page, "08-signup")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/me/tokens/")
    expect(page.get_by_text("Welcome, grace")).to_be_visible()

    page.get_by_role("button", name="Log out grace").click()
    page.wait_for_url(live_server.url + "/")
    page.get_by_role("link", name="Log in").click()
    page.fill("input[name=username]", "grace")
    page.fill("input[name=password]", "not-her-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errors")).to_contain_text("correct username and password")
    page.fill("input[name=password]", "lottery-tickets-win")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/me/tickets/")
    expect(page.locator("h1")).to_have_text("Your tickets")

    page.get_by_role("link", name="Tokens").click()
    page.fill("input[name=name]", "laptop")
    page.get_by_role("button", name="Create token").click()
    key_box = page.locator("#token-key")
    expect(key_box).to_have_text(re.compile(r"^tkh_\S{20,}$"))
    key = key_box.inner_text()
    page.locator("button.copy[data-copy-target=token-key]").click()
    assert page.evaluate("navigator.clipboard.readText()") == key
    shot(page, "09-token-created")

    me = requests.get(f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert me.status_code == 200 and me.json()["username"] == "grace"

    # the key is shown once: a reload lists the token by its hint only
    page.goto("/me/tokens/")
    expect(page.locator("table.tokens")).to_contain_text("laptop")
    assert key not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("ul.messages")).to_contain_text("Revoked the token 'laptop'")
    expect(page.locator("tr.revoked")).to_contain_text("revoked")
    shot(page, "10-token-revoked")
    gone = requests.get(f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert gone.status_code == 401


def test_my_tickets_shows_unpublished_ones_to_their_owner(page, hub, owner, shot):
    page.goto("/login/?next=/me/tickets/")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", "correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/me/tickets/")
    names = page.locator("a.ticket-link").all_inner_texts()
    assert "running-ticket" in names and "overclaimed-ticket" in names
    assert "lenet-mnist1d-50pct" not in names  # someone else's
    page.get_by_role("link", name="overclaimed-ticket").click()
    expect(page.locator("#verdict .reason")).to_contain_text("below the claim")
    expect(page.locator("#verdict")).to_contain_text("Rejected.")
    assert "winning ticket" not in page.content()
    assert page.locator("#snippet-python").count() == 0
    shot(page, "11-rejected-owner-view")


def test_a_real_submission_shows_its_architecture_and_serves_its_files(page, hub, owner, make_bundle, shot,
                                                                       live_server):
    """A bundle submitted through the real service: the table reads surviving neurons from its mask, and
    the file links download bytes whose sha256 is the one shown."""
    import hashlib

    from catalog_rows import make_verification

    from registry.tickets.services import BundleUpload, set_revision_status, submit_bundle

    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[64, 32], density=0.05, seed=3, accuracy=0.5)
    submission = submit_bundle(user=owner, upload=BundleUpload(config=bundle.config, init=bundle.init,
                                                               mask=bundle.mask), name="mlp-mnist1d-real")
    make_verification(submission.revision, status="verified", accuracy=0.52, claimed=0.5)
    set_revision_status(submission.revision, "verified", verified_accuracy=0.52)

    page.goto("/tickets/mlp-mnist1d-real/")
    layers = page.locator("table.layers")
    expect(layers).to_contain_text("64 × 40")
    survivors = layers.locator("tbody tr").nth(1).locator("td").nth(6).inner_text()
    assert re.fullmatch(r"\d+ / 64", survivors) and survivors != "? / 64"
    shot(page, "12-real-ticket")

    sha_shown = page.locator("table.files tr", has_text="mask.safetensors").locator("code.sha").inner_text()
    href = page.get_by_role("link", name="mask.safetensors").get_attribute("href")
    body = requests.get(live_server.url + href, timeout=10).content
    assert body == bundle.mask
    assert hashlib.sha256(body).hexdigest() == sha_shown
