"""Reads of verification records (who may see what)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from registry.tickets.selectors import is_staff, visible_revisions_q
from registry.verifications.models import Verification, VerificationRun


def is_admin(user: Any) -> bool:
    return is_staff(user)


def visible_verifications(user: Any) -> QuerySet[Verification]:
    """Verifications of published tickets for everyone; every verification of one's own tickets; all for admins.

    A rejected or pending revision's verification (with its reason) is shown to its owner and to admins.
    """
    qs = Verification.objects.select_related("revision__ticket__owner", "revision__ticket__task").prefetch_related(
        Prefetch("runs", queryset=VerificationRun.objects.order_by("role", "seed"))
    )
    return qs.filter(visible_revisions_q(user, "revision__"))


def verifications_of_revision(user: Any, commit: str) -> QuerySet[Verification]:
    return visible_verifications(user).filter(revision__commit=commit).order_by("kind", "task")
