"""The catalog's PostgreSQL-only indexes (migrations tickets 0005 and 0006: pg_trgm for the search, b-trees in
the lists' sort orders and for the version reads) exist on PostgreSQL, the SQLite database of the local run migrates forwards and back,
and the search still finds tickets by name, architecture, task and owner (with the indexed conditions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from catalog_rows import make_task, make_ticket
from django.db import connection

from registry.tickets.selectors import TicketFilters, ticket_list

ROOT = Path(__file__).resolve().parents[2]
INDEXES = {"tickets_ticket_name_upper_trgm", "tickets_ticket_family_upper_trgm", "tickets_ticket_updated_id",
           "tickets_ticket_created_id", "tickets_ticket_accuracy_sort", "tickets_ticket_task_accuracy_sort",
           "tickets_ticket_leaderboard", "tickets_ticket_verified_updated", "tickets_ticket_task_status_updated"}


@pytest.mark.django_db
def test_the_indexes_and_the_extension_exist_on_postgresql():
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'tickets_ticket'")
        names = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone() is not None
    assert names >= INDEXES


def test_sqlite_migrates_forwards_and_back(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_VERSION")}
    env.update(TICKETHUB_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="registry.settings")
    for args in (["migrate"], ["migrate", "tickets", "0004"], ["migrate"]):
        done = subprocess.run([sys.executable, "manage.py", *args, "--no-input", "-v", "0"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "hub.sqlite3").exists()
    done = subprocess.run([sys.executable, "-c", SQLITE_READS], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["winning", "0.52", "1", "sqlite-ticket", "1"], done.stdout


#: The catalog's reads on SQLite: the verification columns (one JSON subquery), the frontier's points, the
#: search and the capped count.
SQLITE_READS = """
import sys
import django
django.setup()
sys.path.insert(0, "tests/catalog")
from django.contrib.auth.models import User
from catalog_rows import make_task, make_ticket
from registry.catalog import selectors
from registry.tickets.selectors import TicketFilters, ticket_list
owner = User.objects.create_user("sqlite-owner")
task = make_task("mnist1d")
make_ticket("sqlite-ticket", task=task, owner=owner, status="verified")
row = selectors.tickets_of(owner)[0]
points = selectors.frontier_points(task)
print(row.v_outcome, points[0].controls["reinit"], len(points))
print(*ticket_list(TicketFilters(search="sqlite", sort="downloads")).values_list("name", flat=True))
print(selectors.catalog_page(TicketFilters(), 1).paginator.count)
"""


def test_the_search_matches_name_family_task_and_owner(task, owner, other):
    make_task("fashion-mnist")
    from registry.tickets.models import Task

    fashion = Task.objects.get(name="fashion-mnist")
    make_ticket("alpha-lenet", task=task, owner=owner, family="lenet-300-100", downloads=5, accuracy=0.8)
    make_ticket("beta", task=task, owner=other, family="conv-2", downloads=9, accuracy=0.7)
    make_ticket("gamma", task=fashion, owner=owner, family="mlp", downloads=1, accuracy=0.9)
    make_ticket("delta-withdrawn", task=task, owner=owner, family="mlp", status="withdrawn")

    def found(search: str, **kw) -> list[str]:
        return sorted(ticket_list(TicketFilters(search=search, **kw)).values_list("name", flat=True))

    assert found("ALPHA") == ["alpha-lenet"]
    assert found("lenet") == ["alpha-lenet"]                      # name and family
    assert found("conv") == ["beta"]                              # family
    assert found("fashion") == ["gamma"]                          # task name
    assert found(other.username) == ["beta"]                      # owner, exactly
    assert found(other.username[:-1]) == []
    assert found("mlp") == ["gamma"]                              # withdrawn ones stay out
    assert found("mlp", statuses=("withdrawn",)) == ["delta-withdrawn"]
    assert found("gamma fashion") == ["gamma"] and found("gamma lenet") == []   # every word must match
    def ordered(sort: str) -> list[str]:  # a search's first sort key is an unindexed expression: same order
        return list(ticket_list(TicketFilters(search="a", sort=sort)).values_list("name", flat=True))

    assert ordered("downloads") == ["beta", "alpha-lenet", "gamma"]
    assert ordered("-downloads") == ["gamma", "alpha-lenet", "beta"]
    assert ordered("accuracy") == ["gamma", "alpha-lenet", "beta"]
    assert ordered("-accuracy") == ["beta", "alpha-lenet", "gamma"]
    assert ordered("newest") == ["gamma", "beta", "alpha-lenet"]
    assert found("", task="fashion-mnist") == ["gamma"] and found("", task="no-such-task") == []
