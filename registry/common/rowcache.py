"""List rows cached in Django's cache (Redis in production) under a key made of the values they show.

A row's key is a digest of every value its output reads (the ticket's pk and ``updated_at``, its status,
accuracies, downloads, its verification's verdict...) and of anything else it depends on: a changed value is
another key, so a cached row can never show a stale status, accuracy or verdict, whatever wrote the change
(services, the admin, an ``UPDATE``). Old keys are never read again and expire. A page asks for all its rows
at once (one round trip) and builds and stores only the missing ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

from django.core.cache import cache

#: Seconds a cached row lives; a changed row has another key, so this bounds only the cache's memory.
ROW_CACHE_SECONDS = 24 * 3600

T = TypeVar("T")


def row_values(row: object, paths: Sequence[str]) -> tuple[Any, ...]:
    """The values at ``paths`` (``"owner.username"``) of ``row``; a missing annotation reads as None."""
    return tuple(_get(row, path) for path in paths)


def _get(row: object, path: str) -> Any:
    try:
        return attrgetter(path)(row)
    except AttributeError:
        return None


def row_key(kind: str, values: object) -> str:
    """The cache key of a row of ``kind`` showing ``values`` (anything with a stable ``repr``)."""
    return f"row:{kind}:{hashlib.sha256(repr(values).encode()).hexdigest()}"


def cached_rows(keys: Sequence[str], build: Callable[[int], T]) -> list[T]:
    """For each ``keys[i]``: the cached value, or ``build(i)`` (then stored); one ``get_many``, at most one
    ``set_many``."""
    found = cache.get_many(list(keys))
    missing: dict[str, T] = {}
    out: list[T] = []
    for i, key in enumerate(keys):
        if key in found:
            out.append(found[key])
        else:
            missing[key] = value = build(i)
            out.append(value)
    if missing:
        cache.set_many(missing, ROW_CACHE_SECONDS)
    return out
