"""Cached list rows (registry/common/rowcache.py): a page reads its rows from the cache, and a row never shows
a stale status, accuracy, verdict or download count after a change, whoever made it (the services, a
verification record, a plain UPDATE). Real cache (Redis when CACHE_URL is set), real database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from catalog_rows import make_ticket
from django.core.cache import cache

from registry.catalog import rows, selectors
from registry.tickets import services
from registry.tickets.models import Status, Ticket
from registry.tickets.selectors import TicketFilters
from registry.verifications.models import Verification

TEMPLATES = Path(rows.__file__).parent / "templates" / "catalog"
ROW_TEMPLATES = ("_ticket_row.html", "_leaderboard_row.html")
#: Attributes the status pill reads (templatetags.catalog_tags.ticket_outcome).
PILL = {"status", "winning", "v_outcome", "v_status"}


def _row_html(page_html: str, name: str) -> str:
    match = re.search(rf'<tr>\s*(?:<td class="num opt">\d+</td>\s*)?<td><a class="ticket-link" href="[^"]*">{re.escape(name)}</a>.*?</tr>',
                      page_html, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


@pytest.mark.parametrize("template", ROW_TEMPLATES)
def test_every_value_a_row_template_reads_is_in_its_cache_key(template):
    source = (TEMPLATES / template).read_text()
    read = set(re.findall(r"\bt\.([a-z_]+(?:\.[a-z_]+)?)", source))
    if "ticket_outcome t" in source:
        read |= PILL
    assert read, template
    assert read <= set(rows.LIST_ROW_VALUES), read - set(rows.LIST_ROW_VALUES)


def test_the_catalog_reads_its_rows_from_the_cache_under_their_values(client, task, owner):
    make_ticket("cached-ticket", task=task, owner=owner)
    row = selectors.catalog_page(TicketFilters(), 1).object_list[0]
    template = "catalog/_ticket_row.html"
    key = rows.row_key(f"html:{template}",
                       (rows._template_digest(template), None, rows.row_values(row, rows.LIST_ROW_VALUES)))
    cache.set(key, "<tr><td>from the cache</td></tr>")
    assert "from the cache" in client.get("/tickets/").content.decode()


def test_a_row_follows_every_change_of_status_accuracy_verdict_and_downloads(client, task, owner):
    ticket = make_ticket("changing-ticket", task=task, owner=owner, status="verifying", accuracy=None,
                         claimed=0.9)
    revision = ticket.latest_revision
    assert "verifying" in _row_html(client.get("/tickets/").content.decode(), ticket.name)
    assert "verifying" in _row_html(client.get("/tickets/").content.decode(), ticket.name)  # from the cache

    services.set_revision_status(revision, Status.VERIFIED, verified_accuracy=0.912)
    Verification.objects.filter(revision=revision).update(
        status="verified", winning=True, decision={"outcome": "winning", "dense_statistic": 0.91})
    row = _row_html(client.get("/tickets/").content.decode(), ticket.name)
    assert "91.2%" in row and 'data-outcome="winning"' in row and "+0.2 pp" in row

    # The verdict changes without any write to the ticket row (an admin fixing a record): a new row.
    updated_at = Ticket.objects.get(pk=ticket.pk).updated_at
    Verification.objects.filter(revision=revision).update(winning=False, decision={"outcome": "verified_not_winning"})
    assert Ticket.objects.get(pk=ticket.pk).updated_at == updated_at
    row = _row_html(client.get("/tickets/").content.decode(), ticket.name)
    assert 'data-outcome="verified_not_winning"' in row

    services.record_download(revision)  # an UPDATE that leaves updated_at alone
    services.record_download(revision)
    assert re.search(r'<td class="num opt">2</td>\s*</tr>', _row_html(client.get("/tickets/").content.decode(),
                                                                     ticket.name))

    services.set_revision_status(revision, Status.REJECTED)
    row = _row_html(client.get("/tickets/").content.decode(), ticket.name)
    assert 'data-outcome="rejected"' in row and "91.2%" not in row


def test_the_leaderboard_and_home_rows_follow_a_change(client, task, owner):
    ticket = make_ticket("board-ticket", task=task, owner=owner, status="verified", accuracy=0.95)
    for url in (f"/tasks/{task.name}/", "/"):
        assert "95.0%" in _row_html(client.get(url).content.decode(), ticket.name)
    services.set_revision_status(ticket.latest_revision, Status.VERIFIED, verified_accuracy=0.931)
    for url in (f"/tasks/{task.name}/", "/"):
        row = _row_html(client.get(url).content.decode(), ticket.name)
        assert "93.1%" in row and "95.0%" not in row


def test_leaderboard_ranks_are_part_of_the_row(client, task, owner):
    for i in range(3):
        make_ticket(f"ranked-{i}", task=task, owner=owner, status="verified", accuracy=0.9 + i / 100)
    html = client.get(f"/tasks/{task.name}/").content.decode()
    ranks = {name: re.search(r'<td class="num opt">(\d+)</td>', _row_html(html, name)).group(1)
             for name in ("ranked-0", "ranked-1", "ranked-2")}
    assert ranks == {"ranked-2": "1", "ranked-1": "2", "ranked-0": "3"}
    services.set_revision_status(Ticket.objects.get(name="ranked-0").latest_revision, Status.VERIFIED,
                                 verified_accuracy=0.99)
    html = client.get(f"/tasks/{task.name}/").content.decode()
    assert re.search(r'<td class="num opt">1</td>', _row_html(html, "ranked-0"))
    assert re.search(r'<td class="num opt">3</td>', _row_html(html, "ranked-1"))


def test_the_api_list_rows_follow_a_change(anon_client, task, owner):
    ticket = make_ticket("api-ticket", task=task, owner=owner, status="verifying", accuracy=None)

    def row():
        results = anon_client.get("/api/v1/tickets/", {"task": task.name}).json()["results"]
        return next(r for r in results if r["name"] == ticket.name)

    assert row()["status"] == "verifying" and row()["published"] is False
    services.set_revision_status(ticket.latest_revision, Status.VERIFIED, verified_accuracy=0.9)
    services.record_download(ticket.latest_revision)
    now = row()
    assert (now["status"], now["published"], now["verified_accuracy"], now["downloads"]) == ("verified", True, 0.9, 1)
    assert now["latest_revision"]["status"] == "verified"


def test_api_rows_name_the_host_they_were_asked_on(task, owner, client):
    make_ticket("host-ticket", task=task, owner=owner)
    urls = {host: client.get("/api/v1/tickets/", HTTP_HOST=host).json()["results"][0]["url"]
            for host in ("localhost", "testserver")}
    assert urls == {"localhost": "http://localhost/api/v1/tickets/host-ticket/",
                    "testserver": "http://testserver/api/v1/tickets/host-ticket/"}


def test_every_api_row_field_is_in_its_cache_key():
    from registry.tickets.api import TICKET_ROW_VALUES, RevisionSummaryOutput, TicketOutput

    reads = {"url": "name", "owner": "owner.username", "task": "task.name", "architecture": "family",
             "published": "status"}
    for field in TicketOutput.Meta.fields:
        if field == "latest_revision":
            for sub in RevisionSummaryOutput.Meta.fields:
                assert f"latest_revision.{'commit' if sub == 'url' else sub}" in TICKET_ROW_VALUES, sub
        else:
            assert reads.get(field, field) in TICKET_ROW_VALUES, field


def test_the_task_summaries_follow_every_status_and_accuracy_change(client, task, owner):
    ticket = make_ticket("summary-ticket", task=task, owner=owner, status="verifying", accuracy=None)

    def card() -> str:
        html = client.get("/").content.decode()
        return re.search(rf'<a class="card" href="/tasks/{task.name}/">.*?</a>', html, re.S).group(0)

    assert "0 <span" in card() and card() == card()  # the second from the cache
    services.set_revision_status(ticket.latest_revision, Status.VERIFIED, verified_accuracy=0.9)
    assert "1 <span" in card() and "best 90.0%" in card()
    services.set_revision_status(ticket.latest_revision, Status.VERIFIED, verified_accuracy=0.8)
    assert "best 80.0%" in card()
    make_ticket("summary-ticket-2", task=task, owner=owner, status="verified", accuracy=0.95)
    assert "2 <span" in card() and "best 95.0%" in card()
    services.withdraw_ticket(Ticket.objects.get(name="summary-ticket-2"))
    assert "1 <span" in card() and "best 80.0%" in card()
