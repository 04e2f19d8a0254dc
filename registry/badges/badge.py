"""What a badge says for a ticket status: label, message and color; rendered as SVG or shields.io JSON.

Pure functions (no database): the views look the ticket or revision up and pass what they found.

    spec = badge_for("verified", accuracy=0.982, density=0.036, outcome="winning")
    spec.message          # 'winning ticket 98.2% @ 3.6%'
    render_svg(spec)      # anybadge SVG text
    shields_endpoint(spec)  # {"schemaVersion": 1, "label": ..., "message": ..., "color": ...}
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import anybadge
from ticketclient.policy import OUTCOME_LABELS

LABEL = "lottery ticket"


@dataclass(frozen=True)
class BadgeSpec:
    """One badge: the text on both halves and the color of the right half."""

    label: str
    message: str
    #: a shields.io named color (used by the endpoint JSON) ...
    shields_color: str
    #: ... and the same color as hex for the SVG
    hex_color: str
    #: seconds a README proxy (GitHub's camo) may cache this badge
    max_age: int

    @property
    def etag(self) -> str:
        """A strong validator from what the badge says (anybadge's SVG ids change per render)."""
        digest = hashlib.sha256(f"{self.label}\n{self.message}\n{self.hex_color}".encode()).hexdigest()
        return f'"{digest[:32]}"'


#: The one vocabulary of a ticket's state, shared by the badges and every catalog page: key -> (words,
#: shields color, hex color, css class). Green means a winning ticket, blue a verified ticket that is not
#: winning (verified is not a failure), red rejected; grey is everything not (yet) decided.
OUTCOMES: dict[str, tuple[str, str, str]] = {
    "winning": (OUTCOME_LABELS["winning"], "brightgreen", "#2e8540"),
    "verified_not_winning": (OUTCOME_LABELS["verified_not_winning"], "blue", "#1f6fb2"),
    "verified": (OUTCOME_LABELS["verified"], "blue", "#1f6fb2"),  # a verified record from before the dense parent
    "rejected": (OUTCOME_LABELS["rejected"], "red", "#c0392b"),
    "failed": (OUTCOME_LABELS["failed"], "lightgrey", "#7d8388"),
    "verifying": ("verifying", "lightgrey", "#7d8388"),
    "pending": ("pending", "lightgrey", "#7d8388"),
    "withdrawn": ("withdrawn", "inactive", "#9f9f9f"),
    "not found": ("not found", "lightgrey", "#9f9f9f"),
}
#: Badges of states that change within minutes (a verification is queued or running) are cached briefly.
SHORT_MAX_AGE = 60
#: Final states still change (a new revision, a withdrawal), so the latest badge is cached for minutes...
LATEST_MAX_AGE = 300
#: ... and a badge pinned to a verified or rejected revision for an hour (only a withdrawal changes it).
PINNED_MAX_AGE = 3600


def outcome_key(status: str | None, *, winning: bool | None = None, outcome: str | None = None,
                verification_status: str | None = None) -> str:
    """The state a ticket (or revision) is shown in, from its status and its own verification.

    ``outcome`` is the decision's outcome (``winning``, ``verified_not_winning``, ``rejected``, ``failed``)
    when the verification recorded one; older records only have ``winning``. A withdrawn ticket is
    ``withdrawn`` whatever its verdict; a verification the hub could not finish is ``failed``.
    """
    if status is None:
        return "not found"
    if status == "withdrawn":
        return "withdrawn"
    if verification_status == "failed" or outcome == "failed" or status == "failed":
        return "failed"
    if status == "verified":
        if outcome in ("winning", "verified_not_winning"):
            return outcome
        if winning is True:
            return "winning"
        if winning is False:
            return "verified_not_winning"
        return "verified"
    return status if status in OUTCOMES else "not found"


def outcome_label(key: str) -> str:
    return OUTCOMES.get(key, OUTCOMES["not found"])[0]


def format_percent(fraction: float) -> str:
    """``0.982 -> '98.2%'``, ``0.036 -> '3.6%'``, ``0.0012 -> '0.12%'``, ``1.0 -> '100%'``."""
    pct = fraction * 100.0
    if fraction >= 1.0:
        return "100%"
    if pct >= 99.95:  # never round a non-perfect value up to 100.0%
        return f"{pct:.2f}%"
    if pct >= 1.0 or pct == 0.0:
        return f"{pct:.1f}%"
    return f"{pct:.2g}%"


def badge_for(
    status: str | None,
    *,
    accuracy: float | None = None,
    density: float | None = None,
    pinned: bool = False,
    winning: bool | None = None,
    outcome: str | None = None,
    verification_status: str | None = None,
) -> BadgeSpec:
    """The badge of a ticket (or of one pinned revision) in ``status``; ``None`` means no such ticket.

    A verified badge says whether the ticket is winning (``winning ticket``, ``verified, not winning``)
    with its verified test accuracy and measured density (% of weights remaining).
    """
    key = outcome_key(status, winning=winning, outcome=outcome, verification_status=verification_status)
    message, shields_color, hex_color = OUTCOMES[key]
    if key in ("winning", "verified_not_winning", "verified"):
        parts = [message]
        if accuracy is not None:
            parts.append(format_percent(accuracy))
        if density is not None:
            parts.append(f"@ {format_percent(density)}")
        message = " ".join(parts)
    if key in ("pending", "verifying", "not found"):
        max_age = SHORT_MAX_AGE
    else:
        max_age = PINNED_MAX_AGE if pinned else LATEST_MAX_AGE
    return BadgeSpec(label=LABEL, message=message, shields_color=shields_color, hex_color=hex_color,
                     max_age=max_age)


def render_svg(spec: BadgeSpec) -> str:
    """The badge as SVG text (anybadge's flat style; label and message are XML-escaped by anybadge)."""
    return _svg_text(spec.label, spec.message, spec.hex_color)


@functools.lru_cache(maxsize=4096)
def _svg_text(label: str, message: str, color: str) -> str:
    """A pure function of three short strings, drawn once per process (anybadge measures text per call)."""
    return anybadge.Badge(label=label, value=message, default_color=color).badge_svg_text


def shields_endpoint(spec: BadgeSpec) -> dict[str, object]:
    """The JSON a shields.io endpoint badge reads (https://shields.io/badges/endpoint-badge)."""
    return {
        "schemaVersion": 1,
        "label": spec.label,
        "message": spec.message,
        "color": spec.shields_color,
        "cacheSeconds": max(spec.max_age, 300),  # shields.io refuses less than 300
    }
