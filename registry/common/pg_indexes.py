"""Indexes that exist only on PostgreSQL (expression, operator-class and partial indexes the catalog's reads
need), created by a migration operation that does nothing on other databases (the SQLite local run).

They are not in any model's ``Meta.indexes``: Django's state never sees them, so ``makemigrations`` never
proposes to drop them, and SQLite migrates exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import migrations


def postgres_only_indexes(table: str, indexes: Mapping[str, str]) -> migrations.RunPython:
    """``CREATE INDEX IF NOT EXISTS name ON table definition`` for each of ``indexes`` (name -> definition,
    e.g. ``"USING gin (UPPER(name::text) gin_trgm_ops)"``) on PostgreSQL; unapplying drops them."""

    def create(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for name, definition in indexes.items():
                schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {definition}")

    def drop(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for name in indexes:
                schema_editor.execute(f"DROP INDEX IF EXISTS {name}")

    return migrations.RunPython(create, drop)
