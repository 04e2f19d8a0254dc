"""The catalog counts matching tickets exactly up to selectors.COUNT_CAP and says "more than" beyond; the
pages past the cap are still served (next/previous follow the rows), and a small result is counted exactly."""

from __future__ import annotations

import re

from catalog_rows import bulk_tickets, make_ticket
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.catalog.selectors import CATALOG_PAGE_SIZE, COUNT_CAP


def test_a_small_result_is_counted_exactly(client, task, owner):
    for i in range(3):
        make_ticket(f"small-{i}", task=task, owner=owner)
    html = client.get("/tickets/").content.decode()
    assert "3 tickets, showing 1–3" in html and "More than" not in html


def test_beyond_the_cap_the_count_says_more_than_and_every_page_is_served(client, task, owner):
    total = bulk_tickets(COUNT_CAP + 2 * CATALOG_PAGE_SIZE + 7, task=task, owner=owner)
    with CaptureQueriesContext(connection) as queries:
        html = client.get("/tickets/").content.decode()
    assert f"More than {COUNT_CAP:,} tickets, showing 1–{CATALOG_PAGE_SIZE}" in html
    assert f"page 1 of {-(-(COUNT_CAP + 1) // CATALOG_PAGE_SIZE)}+<" in html  # at least that many pages
    count_sql = next(q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"])
    assert f"LIMIT {COUNT_CAP + 1}" in count_sql
    last = -(-total // CATALOG_PAGE_SIZE)  # past the cap's pages: the catalog's real last page
    html = client.get(f"/tickets/?page={last}").content.decode()
    first = (last - 1) * CATALOG_PAGE_SIZE + 1
    assert f"showing {first}–{total}" in html and 'rel="prev"' in html and 'rel="next"' not in html
    assert f"page {last}<" in html
    html = client.get(f"/tickets/?page={last - 1}").content.decode()
    assert 'rel="next"' in html and len(re.findall(r'class="ticket-link"', html)) == CATALOG_PAGE_SIZE
    html = client.get(f"/tickets/?page={last + 5}").content.decode()
    assert "No tickets match." in html and 'rel="prev"' in html
    assert client.get("/tickets/?page=abc").status_code == 200
