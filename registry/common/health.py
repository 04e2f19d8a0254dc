"""``GET /healthz``: liveness and readiness for load balancers and compose health checks.

The database decides readiness (the web serves every page from it): 200 when it answers, 503 when it does
not. The cache and the broker are reported as they are: while either is down the answer stays 200 (pages,
the API and submissions keep working: the cache degrades, submissions wait in PostgreSQL for the sweeper)
but says ``"status": "degraded"`` and names the failing part.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

#: Seconds each dependency may take to answer a health check.
CHECK_TIMEOUT_S = 0.5


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any database failure means "not ready"
        return f"unavailable: {exc}".strip()
    return "ok"


def _cache() -> str:
    from registry.common.cache import cache_health

    ok, detail = cache_health()
    return "ok" if ok and detail == "ok" else (detail if ok else f"unavailable: {detail}")


def _broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return url.split("://", 1)[0]  # the local run's filesystem transport: nothing to ping
    import redis

    client = redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"unavailable: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers (``degraded`` if the cache or broker does not), 503 when it does not."""
    checks = {"database": _database(), "cache": _cache(), "broker": _broker()}
    if checks["database"] != "ok":
        status, code = "unavailable", 503
    elif any(value.startswith("unavailable") for value in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    response = JsonResponse({"status": status, **checks}, status=code)
    response["Cache-Control"] = "no-store"
    return response
