"""Abuse limits: DRF throttles (counters in Django's cache: Redis in production, local memory locally).

Every limited action has two rates: per account (DRF's ``ScopedRateThrottle``, scope ``<scope>``, keyed by
the user, or the IP for anonymous requests) and per client IP (:class:`ScopedIPRateThrottle`, scope
``<scope>_ip``), so signing up more accounts does not multiply what one machine may do. Scopes: ``signup``,
``tokens`` (token creation), ``submit``. The web sign-up form uses the same counters
(:func:`web_throttle_wait`).
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import ScopedRateThrottle


class ScopedIPRateThrottle(ScopedRateThrottle):
    """The view's ``throttle_scope`` + ``_ip``, counted per client address whoever is signed in.

    The address is ``REMOTE_ADDR``, or the ``X-Forwarded-For`` entry ``NUM_PROXIES`` from the end when the
    deployment sits behind that many proxies (DRF's rule; 0 by default, so the header cannot be spoofed).
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        scope = getattr(view, self.scope_attr, None)
        if not scope:
            return True
        self.scope = f"{scope}_ip"
        if self.scope not in self.THROTTLE_RATES:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super(ScopedRateThrottle, self).allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class _ScopedView:
    def __init__(self, scope: str) -> None:
        self.throttle_scope = scope


def web_throttle_wait(request: Any, scope: str) -> float | None:
    """For plain Django views: count one ``scope`` action of ``request`` against both rates. Returns None
    when allowed, else the seconds to wait (a refused attempt is not counted)."""
    from rest_framework.request import Request

    drf_request = Request(request)
    drf_request._user = getattr(request, "user", None)  # type: ignore[attr-defined]  # noqa: SLF001 - the session user, no DRF auth run
    view = _ScopedView(scope)
    waits = []
    for throttle in (ScopedRateThrottle(), ScopedIPRateThrottle()):
        if not throttle.allow_request(drf_request, view):  # type: ignore[arg-type]  # only its throttle_scope is read
            waits.append(throttle.wait() or 1.0)
    return max(waits) if waits else None
