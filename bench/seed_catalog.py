"""Seed a PostgreSQL database with a catalog of tickets for bench_catalog.py (rows only: no bundles, no training).

    .venv/bin/python bench/seed_catalog.py [--tickets 10000] [--database lottery_hub_bench_catalog]

Drops and recreates ``--database`` on the server of ``DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432),
migrates it, and writes ``--tickets`` tickets for the task mnist1d with the rows submission and verification
write (Ticket, Revision, RevisionFile, Verification; the helpers of tests/catalog/catalog_rows.py), plus a few
tickets with full verifications (runs and curves) for the ticket page. No ``ANALYZE`` is run: the pages must not
depend on fresh planner statistics; ``--drop-statistics`` (or later ``--only-drop-statistics``) removes them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "lottery_hub_bench_catalog"


def database_url(name: str) -> str:
    base = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/lottery_hub")
    return urlunsplit(base._replace(path=f"/{name}"))


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(tickets: int) -> dict[str, str]:
    """Migrate and write the rows; returns names the bench requests (a full ticket, a page-1 ticket)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    sys.path.insert(0, str(ROOT / "tests" / "catalog"))
    from catalog_rows import bulk_tickets, make_task, make_ticket

    from registry.tickets import services

    owner = get_user_model().objects.create_user("bench", password="bench-password-1")
    task = make_task("mnist1d")
    full = [make_ticket(f"lenet-mnist1d-{d}pct", task=task, owner=owner, density=d / 100, accuracy=0.6 + d / 100)
            for d in (3.6, 7.0, 21.0)]
    bulk_tickets(tickets - len(full), task=task, owner=owner, prefix="bulk", seed=1)
    refresh = getattr(services, "refresh_served_revisions", None)
    if refresh is not None:  # rows written straight to the table: point tickets at their served revision
        refresh()
    return {"ticket": full[0].name}


TABLES = ("tickets_ticket", "tickets_revision", "tickets_revisionfile", "verifications_verification",
          "verifications_verificationrun")


def drop_statistics(name: str) -> None:
    """Forget the planner's statistics of the catalog's tables and keep autovacuum from gathering them again:
    the database a query must not depend on (a site whose statistics lag behind a bulk of new rows)."""
    import psycopg

    with psycopg.connect(database_url(name), autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            conn.execute("DELETE FROM pg_statistic WHERE starelid = %s::regclass", (table,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--drop-statistics", action="store_true",
                        help="no planner statistics on the catalog's tables (and autovacuum off for them)")
    parser.add_argument("--only-drop-statistics", action="store_true", help="just that, on the seeded database")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = database_url(args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    sys.path.insert(0, str(ROOT))
    if args.only_drop_statistics:
        drop_statistics(args.database)
        print(f"dropped the planner statistics of {', '.join(TABLES)} in {args.database}")
        return
    start = time.perf_counter()
    recreate_database(args.database)
    names = seed(args.tickets)
    if args.drop_statistics:
        drop_statistics(args.database)
    print(f"seeded {args.tickets} tickets into {args.database} in {time.perf_counter() - start:.1f} s: {names}")


if __name__ == "__main__":
    main()
