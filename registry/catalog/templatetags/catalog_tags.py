"""Template filters of the catalog: percentages, densities, sizes, query strings."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import QueryDict
from django.utils.html import format_html
from django.utils.safestring import SafeString

from registry.badges.badge import format_percent, outcome_key, outcome_label
from registry.catalog.rows import render_rows

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


def _pill(key: str) -> str:
    label = outcome_label(key)
    return format_html('<span class="status status-{}" data-outcome="{}">{}</span>', key, key, label)


@register.simple_tag
def outcome_pill(status: str | None, winning: bool | None = None, outcome: str | None = None,
                 verification_status: str | None = None) -> str:
    """The one status pill: ``winning ticket`` (green), ``verified, not winning`` (blue), ``rejected``
    (red), ``verifying``/``pending``/``verification failed``/``withdrawn`` (grey)."""
    return _pill(outcome_key(status, winning=winning, outcome=outcome, verification_status=verification_status))


@register.simple_tag
def ticket_outcome(ticket: Any) -> str:
    """:func:`outcome_pill` of a list row annotated by ``selectors.with_verification_columns``."""
    return _pill(outcome_key(ticket.status, winning=getattr(ticket, "winning", None),
                             outcome=getattr(ticket, "v_outcome", None),
                             verification_status=getattr(ticket, "v_status", None)))


@register.simple_tag
def list_rows(rows: Any, template_name: str, first_rank: int | None = None) -> SafeString:
    """Each row rendered with ``template_name``, from the cache when its values were rendered before
    (registry/catalog/rows.py: the key is made of what the row shows)."""
    return render_rows(rows, template_name, first_rank=first_rank)


@register.filter
def rates_text(value: Any) -> str:
    """Provenance pruning rates as words: ``{"default": 0.2, "output": 0.1}`` -> ``20% per round (output
    layer 10%)``; a number -> ``20% per round``; anything else as text."""
    def one(rate: Any) -> str:
        number = _number(rate)
        return f"{number * 100:g}%" if number is not None else str(rate)

    if isinstance(value, dict):
        default = value.get("default")
        rest = [f"{'output layer' if k == 'output' else k} {one(v)}" for k, v in value.items() if k != "default"]
        head = f"{one(default)} per round" if default is not None else ""
        if rest:
            return f"{head} ({', '.join(rest)})" if head else ", ".join(rest)
        return head or "—"
    if _number(value) is not None:
        return f"{one(value)} per round"
    return "—" if value is None else str(value)


@register.filter
def plain(value: Any) -> str:
    """A config value as text a person reads: lists joined by commas, dicts as ``key value`` pairs."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{k} {plain(v)}" for k, v in value.items()) if value else "none"
    return str(value)
