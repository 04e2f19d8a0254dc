"""Draw a verification's images when it finishes, so that no visitor's request ever draws one.

When an own verification is saved finished (by the verifier worker), after the transaction commits:
its accuracy curves, its task's frontier image (wide and narrow) and the frontier chart's spec go into
the file storage under the digest of their data (see plots.stored_plot), and so does the Hub protocol's
``verification.json`` (registry.hub.documents, with its sha256 and size in the cache). Failures are logged,
never raised: drawing is a convenience, and the pages draw (and the Hub builds the document) on a miss.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

logger = logging.getLogger("registry.catalog")


def render_after_verification(verification_id: int) -> None:
    from django.db.models import Prefetch

    from registry.catalog import views
    from registry.tickets.models import Task
    from registry.verifications.models import Verification, VerificationRun

    verification = (
        Verification.objects.select_related("revision__ticket__task")
        .prefetch_related(Prefetch("runs", queryset=VerificationRun.objects.order_by("role", "seed")))
        .filter(pk=verification_id).first()
    )
    if verification is None or not verification.finished:
        return
    views.curves_svg_for(verification)
    task = Task.objects.filter(name=verification.revision.ticket.task.name).first()
    if task is not None:
        key = views._frontier_key(task)
        views.frontier_svg_for(task, wide=True, key=key)
        views.frontier_svg_for(task, wide=False, key=key)
        views.frontier_spec_for(task, key=key)


def store_document_after_verification(verification_id: int) -> None:
    """Build and store the Hub's ``verification.json`` of a finished own verification (registry.hub.documents):
    on every save of the finished record (each save is a new document key), and drop its revision's cached
    manifest, so the Hub lists what was saved last."""
    from django.db.models import Prefetch

    from registry.hub.documents import forget_manifest, store_verification_document
    from registry.verifications.models import Verification, VerificationRun

    verification = (
        Verification.objects.select_related("revision__ticket")
        .prefetch_related(Prefetch("runs", queryset=VerificationRun.objects.defer("curve")))
        .filter(pk=verification_id, kind=Verification.Kind.OWN).first()
    )
    if verification is not None and verification.finished:
        store_verification_document(verification.revision, verification)
        forget_manifest(verification.revision)


def _on_verification_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not instance.finished or kwargs.get("raw"):
        return

    def draw() -> None:
        try:
            store_document_after_verification(instance.pk)
        except Exception:  # noqa: BLE001 - never fail the verifier for a file the Hub builds on a miss too
            logger.exception("storing the verification document of verification %s failed", instance.pk)
        try:
            render_after_verification(instance.pk)
        except Exception:  # noqa: BLE001 - never fail the verifier for a picture
            logger.exception("drawing the plots of verification %s failed", instance.pk)

    transaction.on_commit(draw)


def connect() -> None:
    from registry.verifications.models import Verification

    post_save.connect(_on_verification_saved, sender=Verification, dispatch_uid="catalog-draw-on-finish")
