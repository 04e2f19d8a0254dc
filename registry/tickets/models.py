"""Tasks, tickets, immutable revisions and their content-addressed files.

Status (one vocabulary for revisions and tickets)::

    pending -> verifying -> verified | rejected          (a revision; written by the verifier)
    ticket.status = "withdrawn" if the owner (or a moderator) withdrew it,
                    else the status of its latest revision

A ticket is *published* when its status is ``verified``: its latest revision passed verification and it
is not withdrawn. Submitting a new revision makes the ticket ``pending`` again until that revision is
verified; the last verified revision stays downloadable by its commit id.

Writes go through :mod:`registry.tickets.services`, reads through :mod:`registry.tickets.selectors`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from ticketclient import format as tformat
from ticketclient.constants import COMMIT_RE


class Status(models.TextChoices):
    PENDING = "pending", "pending"
    VERIFYING = "verifying", "verifying"
    VERIFIED = "verified", "verified"
    REJECTED = "rejected", "rejected"
    WITHDRAWN = "withdrawn", "withdrawn"


#: Statuses a revision can have (withdrawal is a property of the ticket, not of a revision).
REVISION_STATUSES = [Status.PENDING, Status.VERIFYING, Status.VERIFIED, Status.REJECTED]

#: The three files of a ticket revision, in the order they are listed.
BUNDLE_FILES = tformat.BUNDLE_FILES


class Task(models.Model):
    """A learning task tickets are found for (seeded from ``ticketclient.tasks``)."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    input_shape = models.JSONField(help_text="Shape of one input example, e.g. [40] or [1, 28, 28].")
    num_classes = models.PositiveIntegerField()
    default_family = models.CharField(max_length=64, blank=True)
    #: Test accuracy of the dense network with the default architecture and recipe (a fraction).
    dense_baseline_accuracy = models.FloatField(null=True, blank=True)
    dense_baseline_family = models.CharField(max_length=64, blank=True)
    #: Anything else ticketclient.tasks knows about the task (splits, source, ...).
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


_CONFUSABLE = str.maketrans({"0": "o", "1": "l", "-": None, "_": None, ".": None})


def name_key(name: str) -> str:
    """The look-alike class of a ticket name: lower-cased, without ``-``/``_``/``.``, 0 read as o and 1 as l.

    Two tickets may not share a key, so ``lenet-mnist-1`` and ``LeNet_mnist_l`` cannot both exist.
    """
    return name.lower().translate(_CONFUSABLE)


class TicketQuerySet(models.QuerySet):
    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> Any:
        objs = list(objs)
        for obj in objs:  # bulk_create skips save(): set the look-alike key here too
            obj.name_key = name_key(obj.name)
        return super().bulk_create(objs, *args, **kwargs)


class Ticket(models.Model):
    """A named lottery ticket (like a PyPI project): its revisions hold the files."""

    name = models.CharField(max_length=96, unique=True)
    #: :func:`name_key` of the name (set on save); unique, so look-alike names cannot coexist.
    name_key = models.CharField(max_length=96, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="tickets")
    family = models.CharField(
        max_length=64, blank=True, help_text="Architecture family (e.g. lenet-300-100); 'custom' for layer lists."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    #: Denormalised from the latest revision (for listing, filtering and sorting without joins).
    latest_revision = models.ForeignKey(
        "Revision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The revision the ticket serves as published (the Hub's ``main``): its latest verified one, whatever the
    #: latest revision's status; None when no revision passed. Kept by ``services`` whenever a revision's status
    #: changes, so listings join one row instead of looking it up per ticket.
    served_revision = models.ForeignKey(
        "Revision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    density = models.FloatField(null=True, blank=True, help_text="Measured from the mask, never read from config.")
    layer_densities = models.JSONField(default=dict, blank=True)
    num_parameters = models.BigIntegerField(null=True, blank=True)
    claimed_accuracy = models.FloatField(null=True, blank=True)
    #: Test accuracy the verifier measured for the latest verified revision.
    verified_accuracy = models.FloatField(null=True, blank=True)
    downloads = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.CharField(max_length=500, blank=True)

    objects = TicketQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["task", "status"]),
            models.Index(fields=["density"]),
            models.Index(fields=["verified_accuracy"]),
            models.Index(fields=["downloads"]),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name_key = name_key(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_key"}
        super().save(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.status == Status.VERIFIED

    @property
    def is_withdrawn(self) -> bool:
        return self.status == Status.WITHDRAWN


class Revision(models.Model):
    """One immutable version of a ticket's three files, named by a 40-hex commit id.

    Only the verification fields (``status``, ``verified_accuracy``, ``status_changed_at``) and the
    download counter change after creation; everything else is frozen (``save`` refuses it).
    """

    MUTABLE_FIELDS = frozenset({"status", "verified_accuracy", "status_changed_at", "downloads"})

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField(help_text="1 for the first revision of a ticket, then 2, 3...")
    commit = models.CharField(max_length=40, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    message = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    # What validation measured or read (the config itself is stored too, as a file and parsed here).
    config = models.JSONField()
    family = models.CharField(max_length=64, blank=True)
    architecture = models.JSONField(help_text="The canonical layer list the architecture resolves to.")
    density = models.FloatField()
    layer_densities = models.JSONField(default=dict)
    num_parameters = models.BigIntegerField()
    budget = models.JSONField(default=dict, blank=True, help_text="Training budget (iterations, multiply-adds).")
    claimed_accuracy = models.FloatField(null=True, blank=True)

    # Verification outcome (written by the verifier through services.set_revision_status).
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    verified_accuracy = models.FloatField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["ticket", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "number"], name="unique_revision_number_per_ticket"),
            models.CheckConstraint(
                condition=models.Q(commit__regex=COMMIT_RE.pattern), name="revision_commit_is_40_hex"
            ),
            models.CheckConstraint(
                condition=models.Q(density__gte=0.0, density__lte=1.0), name="revision_density_in_unit_interval"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket.name}@{self.commit[:12]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or not set(update_fields) <= self.MUTABLE_FIELDS:
                raise ValidationError(
                    "A revision is immutable: only its verification status and download count may change "
                    "(save with update_fields)."
                )
        super().save(*args, **kwargs)

    def file(self, path: str) -> RevisionFile:
        return self.files.get(path=path)


class RevisionFile(models.Model):
    """A file of a revision; its bytes live in storage at ``blobs/sha256/<ab>/<sha256>``."""

    revision = models.ForeignKey(Revision, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["revision", "path"]
        constraints = [
            models.UniqueConstraint(fields=["revision", "path"], name="unique_file_path_per_revision"),
            models.CheckConstraint(condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"), name="file_sha256_is_hex"),
        ]

    def __str__(self) -> str:
        return f"{self.revision}:{self.path}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValidationError("A revision's files are immutable.")
        super().save(*args, **kwargs)

    @property
    def storage_key(self) -> str:
        from registry.tickets.blobs import blob_key

        return blob_key(self.sha256)
