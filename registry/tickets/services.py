"""Every write to tickets: submit (ticket or new revision), withdraw, verification status, downloads.

A submission is validated completely (``ticketclient.validation``, torch-free) before anything is
written; then the rows, the blobs and the revision's own verification record (``queued``) are written in
one transaction, and its one job message (``verifier.run_verification``) is sent only once that
transaction has committed. A submission that fails at any point leaves no rows and no
blobs of its own behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from registry.common.errors import ApiError
from registry.common.jsonable import jsonable
from registry.tickets import blobs
from registry.tickets.limits import get_limits
from registry.tickets.models import BUNDLE_FILES, Revision, RevisionFile, Status, Task, Ticket, name_key
from registry.verifications.dispatch import enqueue_on_commit, queue_own_verification

logger = logging.getLogger("registry.tickets")

NAME_MIN, NAME_MAX = 3, 96


def validate_ticket_name(name: str) -> str:
    """A ticket name is a Hugging Face-style repo id without namespace, like ``lenet-mnist-3.6pct``.

    Lowercase letters and digits, with ``.``, ``_`` and ``-`` inside; 3 to 96 characters; no ``--`` or
    ``..``; it starts and ends with a letter or digit (huggingface_hub refuses the rest client-side).
    """
    from ticketclient.format import TICKET_NAME, bad_character

    if not isinstance(name, str) or not name:
        raise ApiError("invalid_name", "A ticket name is required (form field 'name').", field="name")
    if bad_character(name):
        raise ApiError("invalid_name", f"A ticket name may not contain control characters ({bad_character(name)}).",
                       field="name")
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise ApiError(
            "invalid_name", f"A ticket name has {NAME_MIN} to {NAME_MAX} characters; {name!r} has {len(name)}.",
            field="name",
        )
    if "--" in name or ".." in name:
        raise ApiError("invalid_name", f"A ticket name may not contain '--' or '..': {name!r}.", field="name")
    if not TICKET_NAME.fullmatch(name):  # fullmatch: "name\n" is not a name ("$" matches before a newline)
        raise ApiError(
            "invalid_name",
            f"A ticket name uses lowercase letters, digits and '.', '_', '-' inside, and starts and ends with "
            f"a letter or digit: {name!r}.",
            field="name",
        )
    return name


def confusable_check(name: str, *, owner: Any) -> None:
    """409 when ``name`` is a look-alike of another user's ticket name (same :func:`name_key`)."""
    twin = Ticket.objects.filter(name_key=name_key(name)).exclude(name=name).first()
    if twin is not None:
        raise ApiError(
            "name_confusable",
            f"The name {name!r} is too close to the existing ticket {twin.name!r} (names that differ only by "
            f"case, '-', '_', '.', or 0/o and 1/l are the same name); choose another name.",
            field="name", status_code=409,
        )


@dataclass(frozen=True)
class BundleUpload:
    """The three files of a submission, as bytes."""

    config: bytes
    init: bytes
    mask: bytes

    def by_path(self) -> dict[str, bytes]:
        return {"config.json": self.config, "init.safetensors": self.init, "mask.safetensors": self.mask}


@dataclass(frozen=True)
class Submission:
    ticket: Ticket
    revision: Revision
    created_ticket: bool


def validate_upload(upload: BundleUpload) -> Any:
    """Run the core's validation; map its errors to 400 ApiErrors. Returns ``ValidatedBundle``."""
    from ticketclient import errors, validation

    try:
        return validation.validate_bundle(
            config=upload.config, init=upload.init, mask=upload.mask, limits=get_limits()
        )
    except errors.BundleError as err:
        raise ApiError(err.code, err.message, field=err.field, status_code=400) from err
    except errors.UnknownTaskError as err:
        raise ApiError("unknown_task", str(err), field="task", status_code=400) from err


def compute_commit(name: str, parent_commit: str | None, file_sha256: dict[str, str]) -> str:
    """A revision's 40-hex commit id: sha1 over the ticket name, the parent commit and the files' sha256s."""
    lines = [f"lottery-ticket-commit v1\nticket {name}\nparent {parent_commit or '-'}\n"]
    lines += [f"file {path} {file_sha256[path]}\n" for path in sorted(file_sha256)]
    return hashlib.sha1("".join(lines).encode("utf-8")).hexdigest()


def _config_name(validated: Any) -> str | None:
    name = getattr(validated.config, "name", None)
    return name if isinstance(name, str) and name else None


def _family(config: dict[str, Any]) -> str:
    arch = config.get("architecture") or {}
    return str(arch.get("family") or "custom")


def _claimed_accuracy(config: dict[str, Any]) -> float | None:
    value = (config.get("claims") or {}).get("test_accuracy")
    return float(value) if isinstance(value, int | float) else None


def submit_bundle(*, user: Any, upload: BundleUpload, name: str | None = None, message: str = "") -> Submission:
    """Create a ticket (or a new revision of one ``user`` owns) from a validated bundle.

    Raises :class:`ApiError` (4xx) for every refusal; nothing is written in that case.
    """
    from ticketclient.format import bad_character

    if bad_character(message):
        raise ApiError("bad_character", f"The message contains the control character {bad_character(message)}.",
                       field="message")
    validated = validate_upload(upload)
    name = validate_ticket_name(name or _config_name(validated) or "")
    config = json.loads(upload.config)
    task_name = config.get("task")
    task = Task.objects.filter(name=task_name).first()
    if task is None:
        known = ", ".join(Task.objects.values_list("name", flat=True)) or "none"
        raise ApiError("unknown_task", f"No task named {task_name!r} on this registry (known: {known}).", field="task")

    files = upload.by_path()
    digests = {path: blobs.sha256_hex(data) for path, data in files.items()}
    created_blobs: list[str] = []
    try:
        with transaction.atomic():
            _check_queue_cap(user)
            ticket, parent, created_ticket = _lock_or_create_ticket(name=name, user=user, task=task)
            if parent is not None:
                parent_digests = dict(parent.files.values_list("path", "sha256"))
                if parent_digests == digests:
                    raise ApiError(
                        "unchanged",
                        f"The files are identical to the latest revision {parent.commit} of {name!r}.",
                        status_code=409,
                    )
            revision = Revision.objects.create(
                ticket=ticket,
                number=(parent.number + 1) if parent else 1,
                commit=compute_commit(name, parent.commit if parent else None, digests),
                parent=parent,
                message=message[:500],
                created_by=user,
                config=config,
                family=_family(config),
                architecture=jsonable(getattr(validated.arch, "layers", [])),
                density=float(validated.density),
                layer_densities=jsonable(validated.layer_densities),
                num_parameters=int(validated.num_parameters),
                budget=jsonable(getattr(validated, "budget", None)) or {},
                claimed_accuracy=_claimed_accuracy(config),
            )
            RevisionFile.objects.bulk_create(
                RevisionFile(revision=revision, path=path, sha256=digests[path], size=len(files[path]))
                for path in BUNDLE_FILES
            )
            _point_ticket_at(ticket, revision)
            verification = queue_own_verification(revision)
            # Blobs last: if storing fails, the transaction rolls back; if it succeeds, the commit follows.
            for path in BUNDLE_FILES:
                try:
                    digest, created = blobs.put_blob(files[path])
                except Exception as err:
                    logger.exception("storing %s of %s failed", path, name)
                    raise ApiError(
                        "storage_unavailable",
                        f"The file store did not accept {path}; nothing was saved, please retry later.",
                        status_code=503,
                    ) from err
                if created:
                    created_blobs.append(digest)
            enqueue_on_commit(verification)
    except BaseException:
        _remove_unreferenced(created_blobs)
        raise
    logger.info("stored %s revision %s (%s) by %s", name, revision.number, revision.commit, user)
    return Submission(ticket=ticket, revision=revision, created_ticket=created_ticket)


def _check_queue_cap(user: Any) -> None:
    """429 when ``user`` already has ``TICKETHUB_MAX_QUEUED_PER_USER`` revisions pending or verifying.

    The user's row is locked first, so concurrent submissions of one account are counted one at a time.
    """
    from django.conf import settings
    from django.contrib.auth import get_user_model

    cap = settings.TICKETHUB_MAX_QUEUED_PER_USER
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    queued = Revision.objects.filter(created_by=user, status__in=[Status.PENDING, Status.VERIFYING]).count()
    if queued >= cap:
        raise ApiError(
            "too_many_queued",
            f"You have {queued} submissions waiting for verification (the most one account may have queued is "
            f"{cap}); submit again when some have finished.",
            status_code=429,
        )


def _lock_or_create_ticket(*, name: str, user: Any, task: Task) -> tuple[Ticket, Revision | None, bool]:
    ticket = Ticket.objects.select_for_update().filter(name=name).first()
    if ticket is None:
        confusable_check(name, owner=user)
        try:
            with transaction.atomic():
                ticket = Ticket.objects.create(name=name, owner=user, task=task, status=Status.PENDING)
        except IntegrityError as err:  # created by a concurrent submission since the lookup
            raise ApiError("name_taken", f"The name {name!r} was just taken; choose another.", field="name",
                           status_code=409) from err
        return ticket, None, True
    if ticket.owner_id != user.pk:
        raise ApiError(
            "name_taken",
            f"The name {name!r} belongs to another user's ticket; choose another name.",
            field="name",
            status_code=409,
        )
    if ticket.status == Status.WITHDRAWN:
        raise ApiError(
            "ticket_withdrawn", f"{name!r} is withdrawn; it accepts no new revisions.", field="name", status_code=409
        )
    if ticket.task_id != task.pk:
        raise ApiError(
            "task_changed",
            f"{name!r} is a ticket for task {ticket.task.name!r}; a revision cannot change it to {task.name!r}.",
            field="task",
        )
    parent = ticket.revisions.order_by("-number").first()
    return ticket, parent, False


def _point_ticket_at(ticket: Ticket, revision: Revision) -> None:
    ticket.latest_revision = revision
    ticket.family = revision.family
    ticket.density = revision.density
    ticket.layer_densities = revision.layer_densities
    ticket.num_parameters = revision.num_parameters
    ticket.claimed_accuracy = revision.claimed_accuracy
    ticket.status = revision.status
    ticket.save()


def _remove_unreferenced(digests: list[str]) -> None:
    """Delete blobs this failed submission created, unless a committed file row references them."""
    for digest in digests:
        if not RevisionFile.objects.filter(sha256=digest).exists():
            try:
                blobs.delete_blobs([digest])
            except Exception:  # pragma: no cover - storage down; the blob is only unreferenced garbage
                logger.exception("could not remove orphan blob %s", digest)


# --- status changes -----------------------------------------------------------------------------------


def set_revision_status(
    revision: Revision | int, status: str, *, verified_accuracy: float | None = None
) -> Revision:
    """Record a revision's verification status (the verifier calls this; the API never does).

    ``revision`` is a Revision or its id. The ticket follows its latest revision unless it is withdrawn.
    """
    revision_id = revision if isinstance(revision, int) else revision.pk
    if status not in {s.value for s in (Status.PENDING, Status.VERIFYING, Status.VERIFIED, Status.REJECTED)}:
        raise ValueError(f"not a revision status: {status!r}")
    with transaction.atomic():
        revision = Revision.objects.select_for_update().get(pk=revision_id)
        ticket = Ticket.objects.select_for_update().get(pk=revision.ticket_id)
        revision.status = status
        if verified_accuracy is not None:
            revision.verified_accuracy = float(verified_accuracy)
        revision.status_changed_at = timezone.now()
        revision.save(update_fields=["status", "verified_accuracy", "status_changed_at"])
        _refresh_ticket_status(ticket)
    return revision


def _refresh_ticket_status(ticket: Ticket) -> None:
    latest = ticket.revisions.order_by("-number").first()
    fields = ["status", "verified_accuracy", "served_revision", "updated_at"]
    if ticket.status != Status.WITHDRAWN and latest is not None:
        ticket.status = latest.status
    verified = ticket.revisions.filter(status=Status.VERIFIED).order_by("-number").first()
    ticket.verified_accuracy = verified.verified_accuracy if verified else None
    ticket.served_revision = verified
    ticket.save(update_fields=fields)


def refresh_served_revisions(tickets: Any = None) -> int:
    """Point ``tickets`` (a Ticket queryset; default: all) at their latest verified revision in one UPDATE.

    For rows written around :func:`set_revision_status` (bulk loads, fixtures); returns the rows updated.
    """
    latest_verified = (Revision.objects.filter(ticket=OuterRef("pk"), status=Status.VERIFIED)
                       .order_by("-number").values("pk")[:1])
    return (Ticket.objects.all() if tickets is None else tickets).update(served_revision=Subquery(latest_verified))


def withdraw_ticket(ticket: Ticket, *, reason: str = "") -> Ticket:
    """Withdraw a ticket: it leaves listings and stops being served as published. Idempotent."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.status != Status.WITHDRAWN:
            ticket.status = Status.WITHDRAWN
            ticket.withdrawn_at = timezone.now()
            ticket.withdrawn_reason = reason[:500]
            ticket.save(update_fields=["status", "withdrawn_at", "withdrawn_reason", "updated_at"])
    return ticket


def restore_ticket(ticket: Ticket) -> Ticket:
    """Undo a withdrawal (moderators): the ticket follows its latest revision again."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.status == Status.WITHDRAWN:
            ticket.status = Status.PENDING
            ticket.withdrawn_at = None
            ticket.withdrawn_reason = ""
            ticket.save(update_fields=["status", "withdrawn_at", "withdrawn_reason", "updated_at"])
            _refresh_ticket_status(ticket)
    return ticket


def requeue_revision(revision: Revision) -> Revision:
    """Moderation: reset a revision to ``pending`` and its own verification to ``queued`` (runs forgotten), and
    send its job after commit."""
    with transaction.atomic():
        revision = set_revision_status(revision.pk, Status.PENDING)
        enqueue_on_commit(queue_own_verification(revision))
    return revision


def record_download(revision: Revision) -> None:
    """Count one download of a ticket (one per fetch of its config.json, as the Hugging Face Hub counts)."""
    Revision.objects.filter(pk=revision.pk).update(downloads=F("downloads") + 1)
    Ticket.objects.filter(pk=revision.ticket_id).update(downloads=F("downloads") + 1)
