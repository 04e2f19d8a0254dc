"""Writes from the web process: the transfer-verification request (the workers write everything else)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from registry.common.errors import ApiError
from registry.verifications.dispatch import enqueue_verification, get_or_create_verification
from registry.verifications.models import Verification
from registry.verifications.selectors import is_admin


def request_transfer(*, user: Any, revision: Any, task_name: str,
                     claimed_accuracy: float | None = None) -> tuple[Verification, bool]:
    """Ask the verifier to verify ``revision`` on another task with the same input shape.

    Only the ticket's owner or an admin may ask; the revision must be verified on its own task. Returns
    ``(verification, created)``; asking again for the same task returns the existing record.
    """
    from registry.tickets.models import Task

    ticket = revision.ticket
    if not (user.is_authenticated and (ticket.owner_id == user.pk or is_admin(user))):
        raise ApiError("permission_denied", "Only the ticket's owner or an admin may request a transfer "
                       "verification.", status_code=403)
    if revision.status != "verified":
        raise ApiError("not_verified", f"Revision {revision.commit} is {revision.status}; only a revision "
                       "verified on its own task can be verified on another task.", status_code=409)
    target = Task.objects.filter(name=task_name).first()
    if target is None:
        known = ", ".join(Task.objects.values_list("name", flat=True)) or "none"
        raise ApiError("unknown_task", f"No task named {task_name!r} (known: {known}).", field="task")
    own = ticket.task
    if target.pk == own.pk:
        raise ApiError("same_task", f"{task_name!r} is the ticket's own task; its own verification covers it.",
                       field="task")
    if list(target.input_shape) != list(own.input_shape) or target.num_classes != own.num_classes:
        raise ApiError(
            "shape_mismatch",
            f"{task_name!r} takes inputs of shape {list(target.input_shape)} with {target.num_classes} classes; "
            f"the ticket's task {own.name!r} takes {list(own.input_shape)} with {own.num_classes} classes. "
            "A transfer needs the same input shape and number of classes.",
            field="task",
        )
    if claimed_accuracy is not None and not 0.0 <= claimed_accuracy <= 1.0:
        raise ApiError("invalid", "claimed_accuracy is a fraction in [0, 1].", field="claimed_accuracy")
    existing = Verification.objects.filter(revision=revision, task=target.name, kind=Verification.Kind.TRANSFER)
    if existing.exists():
        return existing.get(), False
    with transaction.atomic():
        verification = get_or_create_verification(revision, task=target.name, kind=Verification.Kind.TRANSFER,
                                                  requested_by=user)
        if claimed_accuracy is not None:
            Verification.objects.filter(pk=verification.pk).update(claimed_accuracy=claimed_accuracy)
            verification.claimed_accuracy = claimed_accuracy
        transaction.on_commit(lambda: enqueue_verification(verification), robust=True)
    return verification, True
