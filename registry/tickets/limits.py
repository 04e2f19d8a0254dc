"""Bundle limits from ``ticketclient.validation.Limits.from_env()`` (the one definition of the limits)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def get_limits() -> Any:
    from ticketclient import validation

    return validation.Limits.from_env()


def clear_limits_cache() -> None:
    """Re-read the limits from the environment at the next use (tests that change them call this)."""
    get_limits.cache_clear()
