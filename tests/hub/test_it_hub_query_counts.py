"""The Hub-protocol routes run a fixed number of SQL queries, the same at 1 and at 50 published tickets, warm
(manifests and cards cached: the listing's two page queries, one for a named route) and cold (the cache
empty: files, verifications and runs read once for the whole page, never per row). Query counts only."""

from __future__ import annotations

import pytest
from catalog_rows import make_ticket
from django.core.cache import cache

FIRST = "lenet-mnist1d-3.6pct"
#: route -> (most queries warm, most queries with an empty cache), at 1 and at 50 rows alike.
ROUTES = {
    "/api/models?filter=task:mnist1d": (2, 5),
    "/api/models?sort=downloads&limit=50": (2, 5),
    f"/api/models/{FIRST}": (1, 4),
    f"/api/models/{FIRST}/revision/main": (1, 4),
    f"/api/models/{FIRST}/tree/main": (1, 4),
}
#: resolve: (method, path) -> most queries warm (the file with its revision and ticket; for a generated file that
#: lookup's miss, then the ticket; a GET of verification.json reads the stored bytes, README.md the cached card
#: after reading its verification). These rows have no blobs in storage: uploaded files are HEAD only here.
RESOLVE = {
    ("head", "config.json"): 1,
    ("head", "verification.json"): 2,
    ("get", "verification.json"): 2,
    ("head", "README.md"): 2,
    ("get", "README.md"): 3,  # + the verification the card is made from
}


def _add_tickets(task, owner, start: int, stop: int) -> None:
    for i in range(start, stop):
        make_ticket(FIRST if i == 0 else f"ticket-{i:03d}", task=task, owner=owner, density=0.01 + i / 100,
                    accuracy=0.5 + i / 1000, claimed=0.5, downloads=i)


def _counts(client, url: str, django_assert_max_num_queries, warm: int, cold: int) -> tuple[int, int]:
    client.get(url)
    with django_assert_max_num_queries(warm) as hot:
        assert client.get(url).status_code == 200
    cache.clear()
    with django_assert_max_num_queries(cold) as empty:
        assert client.get(url).status_code == 200
    return len(hot.captured_queries), len(empty.captured_queries)


@pytest.mark.parametrize("url", ROUTES)
def test_it_runs_the_same_few_queries_at_1_and_at_50_tickets(url, client, task, owner,
                                                             django_assert_max_num_queries):
    _add_tickets(task, owner, 0, 1)
    one = _counts(client, url, django_assert_max_num_queries, *ROUTES[url])
    _add_tickets(task, owner, 1, 50)
    fifty = _counts(client, url, django_assert_max_num_queries, *ROUTES[url])
    assert one == fifty, url


@pytest.mark.parametrize(("method", "path"), RESOLVE)
def test_resolve_runs_a_fixed_number_of_queries(method, path, client, task, owner, django_assert_max_num_queries):
    _add_tickets(task, owner, 0, 50)
    url = f"/{FIRST}/resolve/main/{path}"
    getattr(client, method)(url)
    with django_assert_max_num_queries(RESOLVE[(method, path)]):
        assert getattr(client, method)(url).status_code == 200
