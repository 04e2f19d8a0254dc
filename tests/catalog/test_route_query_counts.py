"""Every catalog, API and Hub route runs a fixed number of SQL queries: the same bound holds with 1 row and
with 50 rows on the page (an N+1 shows as one more query per row). Query counts only, no timings."""

from __future__ import annotations

import pytest
from catalog_rows import make_ticket

FIRST = "lenet-mnist1d-3.6pct"
#: route -> the most queries it may run (at 1 and at 50 rows alike).
ROUTES = {
    "/api/v1/tickets/?task=mnist1d&sort=accuracy&page_size=50": 3,
    "/api/v1/tickets/?winning=true&sort=density&page_size=50": 3,
    f"/api/v1/tickets/{FIRST}/": 4,
    "/tickets/": 5,
    "/tickets/?q=lenet&sort=downloads": 5,  # matches the first row too (an empty page skips its rows query)
    "/tickets/?verified=on&sort=accuracy&dmin=1&dmax=20": 5,
    "/": 3,
    "/tasks/mnist1d/": 5,
    f"/tickets/{FIRST}/": 10,
    "/api/models?filter=task:mnist1d": 5,
    "/api/models?sort=downloads&limit=50": 5,
    f"/api/models/{FIRST}": 5,
    f"/api/models/{FIRST}/tree/main": 5,
    f"/badges/{FIRST}.svg": 2,
}


def _add_tickets(task, owner, start: int, stop: int) -> None:
    for i in range(start, stop):
        make_ticket(FIRST if i == 0 else f"ticket-{i:03d}", task=task, owner=owner, density=0.01 + i / 100,
                    accuracy=0.5 + i / 1000, claimed=0.5, downloads=i)


@pytest.mark.parametrize("url", ROUTES)
def test_it_runs_the_same_few_queries_at_1_and_at_50_rows(url, client, task, owner, django_assert_max_num_queries):
    most = ROUTES[url]
    _add_tickets(task, owner, 0, 1)
    client.get(url)  # caches that fill once (plots, layer tables) are not per-row work
    with django_assert_max_num_queries(most) as one:
        assert client.get(url).status_code == 200
    _add_tickets(task, owner, 1, 50)
    client.get(url)
    with django_assert_max_num_queries(most) as fifty:
        response = client.get(url)
    assert response.status_code == 200
    assert len(fifty.captured_queries) == len(one.captured_queries), url


def test_it_lists_50_rows_on_one_api_page(client, task, owner):
    _add_tickets(task, owner, 0, 50)
    assert len(client.get("/api/v1/tickets/?page_size=50").json()["results"]) == 50
    assert len(client.get("/api/models?limit=100").json()) == 50


def test_the_hub_resolve_head_runs_a_fixed_number_of_queries(client, task, owner, django_assert_max_num_queries):
    _add_tickets(task, owner, 0, 50)
    with django_assert_max_num_queries(5):
        assert client.head(f"/{FIRST}/resolve/main/config.json").status_code == 200


def test_the_hub_listing_runs_the_same_queries_when_no_model_card_is_cached(client, task, owner,
                                                                          django_assert_max_num_queries):
    from django.core.cache import cache

    _add_tickets(task, owner, 0, 50)
    cache.clear()  # every card is built on this request: from what the listing loaded, no query per row
    with django_assert_max_num_queries(5):
        assert len(client.get("/api/models?limit=100").json()) == 50
