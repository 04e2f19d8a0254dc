"""PostgreSQL-only indexes for the catalog's version reads (indexes only; see 0005 for the pattern).

* ``(updated_at, id) WHERE status = 'verified'``: the home page's newest verified tickets straight from the
  index (without planner statistics PostgreSQL otherwise scans the verified tickets and sorts them).
* ``(task_id, status, updated_at)``: a task's leaderboard plot version (its verified tickets' newest
  ``updated_at``) from one index entry.
"""

from django.db import migrations

from registry.common.pg_indexes import postgres_only_indexes

INDEXES = {
    "tickets_ticket_verified_updated": "(updated_at, id) WHERE status = 'verified'",
    "tickets_ticket_task_status_updated": "(task_id, status, updated_at)",
}


class Migration(migrations.Migration):
    dependencies = [("tickets", "0005_search_trigram_indexes")]

    operations = [postgres_only_indexes("tickets_ticket", INDEXES)]
