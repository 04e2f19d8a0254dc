"""Task rows from ``ticketclient.tasks`` (torch-free), the one registry of tasks.

Used by the data migration that seeds the table and by ``manage.py sync_tasks`` (run after upgrading
ticketclient). Existing rows are updated, none is deleted (tickets reference them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

_KNOWN_FIELDS = {"name", "description", "input_shape", "num_classes", "default_family"}


def _task_infos() -> list[Any]:
    from ticketclient import tasks

    for attr in ("all_tasks", "all", "list_tasks"):
        fn = getattr(tasks, attr, None)
        if callable(fn):
            return list(fn())
    for attr in ("TASKS", "REGISTRY"):
        table = getattr(tasks, attr, None)
        if isinstance(table, dict):
            return list(table.values())
    raise RuntimeError("ticketclient.tasks exposes no task list (expected all_tasks()/TASKS)")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def task_row(info: Any) -> dict[str, Any]:
    """The Task model fields for one ``ticketclient.tasks.TaskInfo``."""
    data = _jsonable(info) if dataclasses.is_dataclass(info) else dict(vars(info))
    baseline = None
    for key in ("dense_baseline_accuracy", "dense_accuracy", "dense_baseline", "baseline_accuracy"):
        if isinstance(data.get(key), int | float):
            baseline = float(data[key])
            break
    return {
        "name": str(data["name"]),
        "description": str(data.get("description") or ""),
        "input_shape": [int(d) for d in data["input_shape"]],
        "num_classes": int(data["num_classes"]),
        "default_family": str(data.get("default_family") or ""),
        "dense_baseline_accuracy": baseline,
        "dense_baseline_family": str(data.get("default_family") or ""),
        "extra": _extra(data),
    }


def _extra(data: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in data.items() if k not in _KNOWN_FIELDS}
    sizes = {split: data.get(f"{split}_size") for split in ("train", "val", "test")}
    if all(isinstance(n, int) for n in sizes.values()):
        extra["splits"] = sizes  # {"train": n, "val": n, "test": n}
    return extra


def sync_tasks(task_model: Any, infos: Iterable[Any] | None = None) -> list[str]:
    """Create or update one row per task; returns the names synced."""
    names = []
    for info in infos if infos is not None else _task_infos():
        row = task_row(info)
        task_model.objects.update_or_create(name=row.pop("name"), defaults=row)
        names.append(getattr(info, "name", None) or info["name"])
    return names
