"""A Redis cache that degrades instead of failing: a cache outage must never turn a page into a 500.

The cache holds only what can be recomputed or forgotten (throttle counters, cached fragments). When Redis
is unreachable, reads miss, writes are dropped and the error is logged (once per outage); after an error
the cache is skipped for ``RETRY_AFTER_S`` so that requests do not each wait for a connect timeout.
``is_healthy()`` tells ``/healthz`` the truth.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger("registry.cache")

#: Seconds the cache is bypassed after an error, before Redis is tried again.
RETRY_AFTER_S = 5.0

_DEGRADED = object()


class ResilientRedisCache(RedisCache):
    """Django's RedisCache whose every operation falls back to a miss / no-op while Redis is down."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._last_error = ""

    # --- state --------------------------------------------------------------------------------------

    def is_healthy(self) -> tuple[bool, str]:
        """(True, "ok") when Redis answers a ping now, else (False, the error)."""
        try:
            self._cache.get_client(write=False).ping()
        except Exception as err:  # noqa: BLE001 - any failure is "unavailable"
            self._failed(err)
            return False, f"{type(err).__name__}: {err}"
        self._recovered()
        return True, "ok"

    def _failed(self, err: BaseException) -> None:
        with self._lock:
            first = time.monotonic() >= self._down_until and not self._last_error
            self._down_until = time.monotonic() + RETRY_AFTER_S
            self._last_error = f"{type(err).__name__}: {err}"
        if first:
            logger.error("cache unavailable, degrading to no cache: %s", self._last_error)

    def _recovered(self) -> None:
        with self._lock:
            was_down = bool(self._last_error)
            self._last_error = ""
            self._down_until = 0.0
        if was_down:
            logger.warning("cache available again")

    def _call(self, name: str, fallback: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._down_until:
            return fallback
        try:
            result = getattr(super(), name)(*args, **kwargs)
        except (RedisError, OSError) as err:  # unreachable, timed out, refused, loading...
            self._failed(err)
            return fallback
        if self._last_error:
            self._recovered()
        return result

    # --- the cache API ------------------------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._call("get", default, key, default, version)

    def set(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> None:
        self._call("set", None, key, value, timeout, version)

    def add(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> bool:
        return self._call("add", False, key, value, timeout, version)

    def touch(self, key: Any, timeout: Any = None, version: int | None = None) -> bool:
        return self._call("touch", False, key, timeout, version)

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._call("delete", False, key, version)

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return self._call("get_many", {}, keys, version)

    def set_many(self, data: Any, timeout: Any = None, version: int | None = None) -> list[Any]:
        return self._call("set_many", [], data, timeout, version)

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._call("delete_many", None, keys, version)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._call("has_key", False, key, version)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        result = self._call("incr", _DEGRADED, key, delta, version)
        if result is _DEGRADED:
            return delta
        return result

    def clear(self) -> None:
        self._call("clear", None)


def cache_health() -> tuple[bool, str]:
    """The default cache's state for ``/healthz``: (True, "ok"), (True, "local memory") or (False, why)."""
    from django.core.cache import caches

    backend = caches["default"]
    if isinstance(backend, ResilientRedisCache):
        return backend.is_healthy()
    return True, type(backend).__name__
