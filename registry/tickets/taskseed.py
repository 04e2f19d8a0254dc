"""Task rows from ``ticketclient.tasks`` (torch-free), the one registry of tasks.

Used by the data migration that seeds the table and by ``manage.py sync_tasks`` (run after upgrading
ticketclient). Existing rows are updated, none is deleted (tickets reference them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ticketclient import tasks

from registry.common.jsonable import jsonable


def task_row(info: tasks.TaskInfo) -> dict[str, Any]:
    """The Task model fields for one ``ticketclient.tasks.TaskInfo``."""
    return {
        "name": info.name,
        "description": info.description,
        "input_shape": list(info.input_shape),
        "num_classes": info.num_classes,
        "default_family": info.default_family,
        "dense_baseline_accuracy": info.dense_baseline_accuracy,
        "dense_baseline_family": info.default_family,
        "extra": {
            "title": info.title,
            "source": info.source,
            "split": info.split,
            "splits": info.sizes,  # {"train": n, "val": n, "test": n}
            "default_args": jsonable(info.default_args),
        },
    }


def sync_tasks(task_model: Any, infos: Iterable[tasks.TaskInfo] | None = None) -> list[str]:
    """Create or update one row per task; returns the names synced."""
    names = []
    for info in infos if infos is not None else tasks.all():
        row = task_row(info)
        task_model.objects.update_or_create(name=row.pop("name"), defaults=row)
        names.append(info.name)
    return names
