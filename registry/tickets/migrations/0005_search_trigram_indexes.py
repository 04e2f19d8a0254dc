"""PostgreSQL-only indexes for the catalog's reads (indexes only: no table or model state changes).

* ``pg_trgm`` GIN indexes on ``UPPER(name)`` and ``UPPER(family)``: the catalog search's ``icontains``
  (``UPPER(col::text) LIKE UPPER('%word%')``) becomes a bitmap index scan instead of a scan of every ticket.
* b-trees in the order of the lists' sorts: the home page's newest verified tickets ``(updated_at, id)``,
  the catalog's and the API's default ``newest`` ``(created_at, id)``, ``sort=accuracy``, and a task's
  leaderboard: a page of 25-50 rows is read from the index instead of sorting every ticket.

The extension comes from ``TrigramExtension`` (a no-op on other databases; kept when unapplied); the indexes are created only on
PostgreSQL, so the SQLite database of the one-command local run migrates as before. They are not in the
models' state (``Meta.indexes``): Django never sees or drops them.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from registry.common.pg_indexes import postgres_only_indexes

INDEXES = {
    "tickets_ticket_name_upper_trgm": "USING gin (UPPER(name::text) gin_trgm_ops)",
    "tickets_ticket_family_upper_trgm": "USING gin (UPPER(family::text) gin_trgm_ops)",
    "tickets_ticket_updated_id": "(updated_at, id)",
    "tickets_ticket_created_id": "(created_at, id)",
    "tickets_ticket_accuracy_sort": "(verified_accuracy DESC NULLS LAST, claimed_accuracy DESC NULLS LAST, created_at DESC)",
    "tickets_ticket_task_accuracy_sort": "(task_id, verified_accuracy DESC NULLS LAST, claimed_accuracy DESC NULLS LAST, "
                                         "created_at DESC)",
    "tickets_ticket_leaderboard": "(task_id, status, verified_accuracy DESC, density, created_at, id)",
}


class CreateTrigramExtension(TrigramExtension):
    """``CREATE EXTENSION IF NOT EXISTS pg_trgm`` on PostgreSQL (TrigramExtension skips other databases);
    unapplying keeps the extension (other objects may use it) and, unlike Django's, never asks SQLite."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        return


class Migration(migrations.Migration):
    dependencies = [("tickets", "0004_ticket_served_revision")]

    operations = [
        CreateTrigramExtension(),
        postgres_only_indexes("tickets_ticket", INDEXES),
    ]
