"""The pages of issue 14 in headless Chromium: the frontier chart's hover and links (and its no-JavaScript
image), honest rejected and withdrawn tickets, the browser upload after sign-up, and a phone's width.
Screenshots go to test-artifacts/browser/ (names 2x-...)."""

from __future__ import annotations

import re

import pytest
import requests
from catalog_rows import make_task, make_ticket
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def hub(owner, other):
    task = make_task("mnist1d", baseline=0.62)
    for i, (density, accuracy, dense) in enumerate([(0.512, 0.63, 0.625), (0.21, 0.645, 0.63), (0.07, 0.64, 0.628),
                                                    (0.036, 0.61, 0.62), (0.019, 0.55, 0.622),
                                                    (0.006, 0.41, 0.618)]):
        make_ticket(f"lenet-mnist1d-{density * 100:g}pct", task=task, owner=owner if i % 2 else other,
                    density=density, accuracy=accuracy, claimed=accuracy - 0.005, downloads=10 * i, dense=dense)
    make_ticket("overclaimed-ticket", task=task, owner=owner, status="rejected", density=0.05, accuracy=0.4,
                claimed=0.7)
    return task


def _point(page, ticket: str, kind: str):
    """The chart's SVG mark of one data point (Vega labels each mark with its data for screen readers)."""
    return page.locator(f'#frontier-chart .mark-symbol path[aria-label*="ticket: {ticket};"]'
                        f'[aria-label*="kind: {kind};"]')


def test_the_frontier_chart_labels_every_point_on_hover_and_links_it(page, hub, shot):
    page.goto("/tasks/mnist1d/")
    chart = page.locator("#frontier-chart")
    expect(chart).to_have_attribute("data-ready", "1")
    # the x axis is ticked at the papers' densities
    labels = chart.locator("svg text").evaluate_all("els => els.map(e => e.textContent)")
    for tick in ("100%", "51.2%", "21%", "7%", "3.6%", "1.9%"):
        assert tick in labels, (tick, labels)
    assert any(t.startswith("dense 62.") for t in labels)  # the dense line says what it is
    point = _point(page, "lenet-mnist1d-3.6pct", "winning ticket")
    point.hover()
    tooltip = page.locator("#vg-tooltip-element")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("lenet-mnist1d-3.6pct")
    expect(tooltip).to_contain_text("winning ticket")
    shot(page, "20-frontier-hover")
    # a control point names its ticket too
    _point(page, "lenet-mnist1d-3.6pct", "dense parent").hover(force=True)  # parents overlap at 100%
    expect(tooltip).to_contain_text("dense parent")
    _point(page, "lenet-mnist1d-3.6pct", "control: same mask, re-initialised").hover(force=True)
    expect(tooltip).to_contain_text("control: same mask, re-initialised")
    point.click()
    page.wait_for_url("**/tickets/lenet-mnist1d-3.6pct/")
    expect(page.locator(".ticket-head h1")).to_contain_text("lenet-mnist1d-3.6pct")


def test_without_javascript_the_leaderboard_shows_the_static_chart(browser, live_server, hub, shot):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False,
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/tasks/mnist1d/")
    image = page.locator("noscript img, picture img").first
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 600
    shot(page, "21-leaderboard-no-js")
    context.close()


def test_the_catalog_filter_bar_is_one_aligned_row_at_1280(page, hub, shot):
    page.goto("/tickets/")
    groups = page.locator("form.filters > .group")
    boxes = [g.bounding_box() for g in groups.all()]
    assert len(boxes) >= 8
    bottoms = {round(b["y"] + b["height"]) for b in boxes}
    assert max(bottoms) - min(bottoms) <= 2, bottoms  # one row, bottoms aligned
    controls = page.locator("form.filters select, form.filters input[type=search], form.filters button")
    heights = {round(c.bounding_box()["height"]) for c in controls.all()}
    assert max(heights) - min(heights) <= 2, heights
    shot(page, "30-catalog-filter-bar")


def test_rejected_and_withdrawn_tickets_are_honest_to_anonymous_visitors(page, hub, shot, live_server):
    page.goto("/tickets/overclaimed-ticket/")
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("Rejected.")
    expect(verdict).to_contain_text("measured 40.00%")
    expect(verdict).to_contain_text("threshold 68.00%")
    expect(page.locator(".ticket-head .status")).to_have_text("rejected")
    assert page.locator("#verdict").evaluate("el => getComputedStyle(el).borderLeftColor") == "rgb(192, 57, 43)"
    assert page.locator("#snippet-python, #snippet-badge, img.badge-preview").count() == 0
    assert "winning ticket" not in page.content()
    shot(page, "22-rejected-anonymous")

    from registry.tickets.models import Ticket
    from registry.tickets.services import withdraw_ticket

    withdraw_ticket(Ticket.objects.get(name="lenet-mnist1d-3.6pct"), reason="the mask was built on test data")
    page.goto("/tickets/lenet-mnist1d-3.6pct/")
    expect(page.locator(".notice.warn")).to_contain_text("the mask was built on test data")
    expect(page.locator(".ticket-head .status")).to_have_text("withdrawn")
    expect(page.locator("#use")).to_contain_text("nothing to pull or embed")
    assert page.locator("#snippet-python").count() == 0
    shot(page, "23-withdrawn")
    badge = requests.get(f"{live_server.url}/badges/lenet-mnist1d-3.6pct.json", timeout=10).json()
    assert badge["message"] == "withdrawn"


def test_a_verified_but_not_winning_ticket_is_blue_not_red(page, hub, owner, shot):
    make_ticket("close-ticket", task=hub, owner=owner, density=0.1, accuracy=0.55, claimed=0.55, dense=0.62)
    page.goto("/tickets/close-ticket/")
    pill = page.locator(".ticket-head .status")
    expect(pill).to_have_text("verified, not winning")
    assert pill.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(31, 111, 178)"
    expect(page.locator("#verdict")).to_contain_text("does not match its dense parent")
    assert page.locator("#verdict").evaluate("el => getComputedStyle(el).color") != "rgb(192, 57, 43)"
    shot(page, "24-verified-not-winning")


def test_sign_up_create_a_token_and_upload_a_bundle_from_the_browser(page, hub, make_bundle, tmp_path, shot,
                                                                     live_server):
    page.goto("/signup/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password1]", "lottery-tickets-win")
    page.fill("input[name=password2]", "lottery-tickets-win")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/me/tokens/")
    page.fill("input[name=name]", "laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#token-key")).to_have_text(re.compile(r"^tkh_\S{20,}$"))

    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[16], density=0.25, seed=2, accuracy=0.3)
    folder = tmp_path / "bundle"
    folder.mkdir()
    for name, data in (("config.json", bundle.config), ("init.safetensors", bundle.init),
                       ("mask.safetensors", bundle.mask)):
        (folder / name).write_bytes(data)
    page.get_by_role("link", name="Submit").first.click()
    page.wait_for_url("**/submit/")
    expect(page.locator("#upload-form")).to_be_visible()
    # first a wrong file: the API's own message, on the form
    page.set_input_files("input[name=config]", str(folder / "config.json"))
    page.set_input_files("input[name=init]", str(folder / "init.safetensors"))
    page.set_input_files("input[name=mask]", str(folder / "init.safetensors"))
    page.fill("input[name=name]", "ada-first-ticket")
    page.get_by_role("button", name="Submit for verification").click()
    expect(page.locator("#upload-form .errors, #upload-form .error").first).to_be_visible()
    shot(page, "25-upload-error")
    page.set_input_files("input[name=config]", str(folder / "config.json"))
    page.set_input_files("input[name=init]", str(folder / "init.safetensors"))
    page.set_input_files("input[name=mask]", str(folder / "mask.safetensors"))
    page.fill("input[name=name]", "ada-first-ticket")
    page.get_by_role("button", name="Submit for verification").click()
    page.wait_for_url(re.compile(r"/tickets/ada-first-ticket/\?revision=[0-9a-f]{40}$"))
    expect(page.locator("ul.messages")).to_contain_text("Submitted ada-first-ticket revision 1")
    expect(page.locator("#progress")).to_be_visible()
    assert page.locator("#snippet-python").count() == 0  # not published yet: nothing to pull
    shot(page, "26-uploaded")


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url}: the page is {width} px wide on a {PHONE['width']} px screen"


def test_a_phone_sees_key_columns_and_a_readable_chart_without_sideways_scroll(browser, live_server, hub, shot):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto("/tickets/")
    _no_sideways_scroll(page)
    header = page.locator("table.tickets thead th:visible").all_inner_texts()
    assert [h.strip().lower() for h in header] == ["ticket", "density", "verified accuracy", "status"]
    row = page.locator("table.tickets tbody tr", has_text="lenet-mnist1d-3.6pct")
    for cell in row.locator("td:visible").all():
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1
    shot(page, "27-phone-catalog")

    page.goto("/tasks/mnist1d/")
    expect(page.locator("#frontier-chart")).to_have_attribute("data-ready", "1")
    _no_sideways_scroll(page)
    chart = page.locator("#frontier-chart svg").first.bounding_box()
    assert chart["width"] <= PHONE["width"]
    sizes = page.locator("#frontier-chart svg text").evaluate_all(
        "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert min(sizes) >= 11  # readable on a phone, not a shrunk desktop image
    header = page.locator("table.leaderboard thead th:visible").all_inner_texts()
    assert [h.strip().lower() for h in header] == ["ticket", "density", "verified accuracy", "vs dense", "status"]
    shot(page, "28-phone-leaderboard")

    page.goto("/tickets/lenet-mnist1d-3.6pct/")
    _no_sideways_scroll(page)
    shot(page, "29-phone-ticket")
    context.close()
