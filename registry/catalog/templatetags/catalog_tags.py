"""Template filters of the catalog: percentages, densities, sizes, query strings."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import QueryDict

from registry.badges.badge import format_percent

register = template.Library()


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.9823 -> '98.2%'``; '—' when unknown."""
    number = _number(value)
    return "—" if number is None else f"{number * 100:.{int(digits)}f}%"


@register.filter
def pp(value: Any, digits: int = 1) -> str:
    """A difference of fractions in percentage points: ``0.012 -> '1.2 pp'`` (signed when negative)."""
    number = _number(value)
    return "—" if number is None else f"{number * 100:.{int(digits)}f} pp"


@register.filter
def pp_signed(value: Any, digits: int = 1) -> str:
    """Like :func:`pp` with an explicit sign: ``+1.2 pp`` / ``-0.4 pp``."""
    number = _number(value)
    return "—" if number is None else f"{number * 100:+.{int(digits)}f} pp"


@register.filter
def minus(value: Any, other: Any) -> float | None:
    """``a|minus:b`` = a - b (None when either is unknown)."""
    a, b = _number(value), _number(other)
    return None if a is None or b is None else a - b


@register.filter
def density(value: Any) -> str:
    """Measured density as % of weights remaining: ``0.036 -> '3.6%'``, ``0.0012 -> '0.12%'``."""
    number = _number(value)
    return "—" if number is None else format_percent(number)


@register.filter
def intcomma_plain(value: Any) -> str:
    """``1234567 -> '1,234,567'`` (without django.contrib.humanize)."""
    number = _number(value)
    return "—" if number is None else f"{int(number):,}"


@register.simple_tag(takes_context=True)
def query_with(context: dict[str, Any], **changes: Any) -> str:
    """The current query string with ``changes`` applied (``None`` removes a key); page resets to 1
    unless it is the thing changed. For shareable sort links and pagination."""
    request = context["request"]
    query: QueryDict = request.GET.copy()
    if "page" not in changes:
        query.pop("page", None)
    for key, value in changes.items():
        if value is None or value == "":
            query.pop(key, None)
        else:
            query[key] = str(value)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"
