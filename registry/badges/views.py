"""Badge endpoints: SVG and shields.io endpoint JSON, for a ticket's latest revision or a pinned one.

    /badges/<name>.svg              latest revision (what the ticket page shows now)
    /badges/<name>.json             the same, as a shields.io endpoint
    /badges/<name>/<commit>.svg     pinned to one revision (40-hex commit id)
    /badges/<name>/<commit>.json

Cache headers suit README embedding: ``Cache-Control: public, max-age=N`` (N short while a verification is
pending or running, longer once final, longest for a pinned final revision), a strong ETag and 304s.
An unknown ticket or revision gets a grey ``not found`` badge with status 404.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KT
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from registry.badges.badge import BadgeSpec, badge_for, render_svg, shields_endpoint
from registry.tickets.models import Revision, Status, Ticket
from registry.verifications.models import Verification


def _own(revision_ref: str) -> tuple[Subquery, Subquery, Subquery]:
    """The winning flag, status and outcome of a revision's own verification (one SELECT with the row)."""
    own = Verification.objects.filter(revision=OuterRef(revision_ref), kind=Verification.Kind.OWN)
    return (Subquery(own.values("winning")[:1]), Subquery(own.values("status")[:1]),
            Subquery(own.annotate(o=KT("decision__outcome")).values("o")[:1]))


def _spec(row: Mapping[str, Any], status: str, *, pinned: bool) -> BadgeSpec:
    return badge_for(status, accuracy=row["verified_accuracy"], density=row["density"], pinned=pinned,
                     winning=row["v_winning"], outcome=row["v_outcome"], verification_status=row["v_status"])


def _latest_spec(name: str) -> BadgeSpec | None:
    winning, v_status, outcome = _own("latest_revision")
    row = (Ticket.objects.filter(name=name).annotate(v_winning=winning, v_status=v_status, v_outcome=outcome)
           .values("status", "verified_accuracy", "density", "v_winning", "v_status", "v_outcome").first())
    if row is None:
        return None
    return _spec(row, row["status"], pinned=False)


def _pinned_spec(name: str, commit: str) -> BadgeSpec | None:
    winning, v_status, outcome = _own("pk")
    row = (
        Revision.objects.filter(ticket__name=name, commit=commit.lower())
        .annotate(v_winning=winning, v_status=v_status, v_outcome=outcome)
        .values("status", "verified_accuracy", "density", "ticket__status", "v_winning", "v_status", "v_outcome")
        .first()
    )
    if row is None:
        return None
    status = Status.WITHDRAWN if row["ticket__status"] == Status.WITHDRAWN else row["status"]
    return _spec(row, status, pinned=True)


def _respond(request: HttpRequest, spec: BadgeSpec | None, fmt: str) -> HttpResponse:
    found = spec is not None
    spec = spec or badge_for(None)
    if found and request.headers.get("If-None-Match") == spec.etag:
        response = HttpResponse(status=304)
    elif fmt == "svg":
        response = HttpResponse(render_svg(spec), content_type="image/svg+xml; charset=utf-8",
                                status=200 if found else 404)
    else:
        response = HttpResponse(json.dumps(shields_endpoint(spec)), content_type="application/json",
                                status=200 if found else 404)
        response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = f"public, max-age={spec.max_age}, s-maxage={spec.max_age}"
    if found:
        response["ETag"] = spec.etag
    return response


@require_GET
def latest_badge(request: HttpRequest, name: str, fmt: str) -> HttpResponse:
    return _respond(request, _latest_spec(name), fmt)


@require_GET
def pinned_badge(request: HttpRequest, name: str, commit: str, fmt: str) -> HttpResponse:
    return _respond(request, _pinned_spec(name, commit), fmt)
