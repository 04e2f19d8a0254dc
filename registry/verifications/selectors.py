"""Reads of verification records (who may see what)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from registry.verifications.models import Verification, VerificationRun


def is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


def visible_verifications(user: Any) -> QuerySet[Verification]:
    """Verifications of published tickets for everyone; every verification of one's own tickets; all for admins.

    A rejected or pending revision's verification (with its reason) is shown to its owner and to admins.
    """
    qs = Verification.objects.select_related("revision__ticket__owner", "revision__ticket__task").prefetch_related(
        Prefetch("runs", queryset=VerificationRun.objects.order_by("role", "seed"))
    )
    if is_admin(user):
        return qs
    public = Q(revision__status="verified") & ~Q(revision__ticket__status="withdrawn")
    if user is not None and user.is_authenticated:
        return qs.filter(public | Q(revision__ticket__owner=user))
    return qs.filter(public)


def verifications_of_revision(user: Any, commit: str) -> QuerySet[Verification]:
    return visible_verifications(user).filter(revision__commit=commit).order_by("kind", "task")


def own_verification(revision: Any) -> Verification | None:
    return Verification.objects.filter(revision=revision, kind=Verification.Kind.OWN).first()
