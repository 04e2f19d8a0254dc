"""With 10,000 tickets in PostgreSQL the catalog, home and leaderboard pages run the same number of queries
as with 10 (no per-row queries), and their render time is measured and printed (no timing assertion)."""

from __future__ import annotations

import time

import pytest
from catalog_rows import bulk_tickets
from django.db import connection
from django.test.utils import CaptureQueriesContext

PAGES = [
    "/",
    "/tickets/",
    "/tickets/?verified=on&sort=accuracy&dmin=1&dmax=20&arch=mlp",
    "/tickets/?q=small-00004&sort=downloads",
    "/tickets/?sort=density&page=3",
    "/tasks/",
    "/tasks/mnist1d/",
    "/tasks/mnist1d/?page=2",
    "/tasks/mnist1d/frontier.svg",
    "/tasks/mnist1d/frontier.vl.json",
]


def _measure(client, url: str) -> tuple[int, float, int]:
    from django.core.cache import cache

    client.get(url)  # a plot is drawn once per change of its data (when a verification finishes) ...
    cache.clear()  # ... then served from the storage: measure that path with a cold cache
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - start
    assert response.status_code == 200, url
    return len(queries), elapsed, len(response.content)


@pytest.fixture
def measured(client, task, owner):
    """Query counts and timings of every page at 10 tickets, then at 10,000."""
    results = {}
    bulk_tickets(10, task=task, owner=owner, prefix="small")
    results[10] = {url: _measure(client, url) for url in PAGES}
    bulk_tickets(9_990, task=task, owner=owner, prefix="bulk", seed=1)
    for url in PAGES:  # warm PostgreSQL's caches and the plan cache once, as a running site has them
        client.get(url)
    results[10_000] = {url: _measure(client, url) for url in PAGES}
    return results


def test_pages_run_a_constant_number_of_queries_at_10_and_10000_tickets(measured):
    from registry.tickets.models import Ticket

    assert Ticket.objects.count() == 10_000
    print("\npage                                                           queries   10 tickets  10,000 tickets")
    for url in PAGES:
        q_small, t_small, _ = measured[10][url]
        q_large, t_large, size = measured[10_000][url]
        print(f"{url:<62} {q_small:>3} / {q_large:<3} {t_small * 1000:8.1f} ms {t_large * 1000:10.1f} ms  {size:>8} B")
        assert q_small == q_large, f"{url}: {q_small} queries at 10 tickets, {q_large} at 10,000"
        assert q_large <= 8, f"{url}: {q_large} queries"


def test_the_catalog_shows_the_right_rows_at_scale(client, task, owner):
    bulk_tickets(2_000, task=task, owner=owner, prefix="bulk", seed=2)
    html = client.get("/tickets/?sort=density&verified=on").content.decode()
    assert "page 1 of" in html
    from registry.tickets.models import Ticket

    sparsest = Ticket.objects.filter(status="verified").order_by("density").first()
    assert html.index(sparsest.name) < html.index("</tbody>")
