"""What a badge says for a ticket status: label, message and color; rendered as SVG or shields.io JSON.

Pure functions (no database): the views look the ticket or revision up and pass what they found.

    spec = badge_for("verified", accuracy=0.982, density=0.036)
    spec.message          # 'verified 98.2% @ 3.6%'
    render_svg(spec)      # anybadge SVG text
    shields_endpoint(spec)  # {"schemaVersion": 1, "label": ..., "message": ..., "color": ...}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import anybadge

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


#: status -> (shields color, hex color). Final states are cached longer than states that change soon.
_COLORS: dict[str, tuple[str, str]] = {
    "verified": ("brightgreen", "#4c1"),
    "pending": ("lightgrey", "#9f9f9f"),
    "verifying": ("blue", "#007ec6"),
    "rejected": ("red", "#e05d44"),
    "withdrawn": ("inactive", "#9f9f9f"),
    "not found": ("lightgrey", "#9f9f9f"),
}
#: Badges of states that change within minutes (a verification is queued or running) are cached briefly.
SHORT_MAX_AGE = 60
#: Final states still change (a new revision, a withdrawal), so the latest badge is cached for minutes...
LATEST_MAX_AGE = 300
#: ... and a badge pinned to a verified or rejected revision for an hour (only a withdrawal changes it).
PINNED_MAX_AGE = 3600


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
) -> BadgeSpec:
    """The badge of a ticket (or of one pinned revision) in ``status``; ``None`` means no such ticket.

    A verified badge states the verified test accuracy and the measured density (% weights remaining).
    """
    key = status if status in _COLORS else "not found"
    shields_color, hex_color = _COLORS[key]
    if key == "verified":
        parts = ["verified"]
        if accuracy is not None:
            parts.append(format_percent(accuracy))
        if density is not None:
            parts.append(f"@ {format_percent(density)}")
        message = " ".join(parts)
    else:
        message = key
    if key in ("pending", "verifying", "not found"):
        max_age = SHORT_MAX_AGE
    else:
        max_age = PINNED_MAX_AGE if pinned else LATEST_MAX_AGE
    return BadgeSpec(label=LABEL, message=message, shields_color=shields_color, hex_color=hex_color,
                     max_age=max_age)


def render_svg(spec: BadgeSpec) -> str:
    """The badge as SVG text (anybadge's flat style; label and message are XML-escaped by anybadge)."""
    return anybadge.Badge(label=spec.label, value=spec.message, default_color=spec.hex_color).badge_svg_text


def shields_endpoint(spec: BadgeSpec) -> dict[str, object]:
    """The JSON a shields.io endpoint badge reads (https://shields.io/badges/endpoint-badge)."""
    return {
        "schemaVersion": 1,
        "label": spec.label,
        "message": spec.message,
        "color": spec.shields_color,
        "cacheSeconds": max(spec.max_age, 300),  # shields.io refuses less than 300
    }
