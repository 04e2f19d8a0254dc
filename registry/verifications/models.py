"""Verification records. Written only by verifier workers (and the transfer request, which creates one).

A revision has one ``own`` verification (on its ticket's task; it decides the revision's status) and any
number of ``transfer`` verifications on other tasks with the same input shape (shown separately; they never
change the revision's status). Each verification has one :class:`VerificationRun` per (role, seed):
the ticket itself and its controls.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Verification(models.Model):
    class Kind(models.TextChoices):
        OWN = "own", "own task"
        TRANSFER = "transfer", "transfer to another task"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        VERIFIED = "verified"
        REJECTED = "rejected"
        #: The hub could not finish the verification (not the ticket's fault): ``reason`` says so to the
        #: submitter, ``error_detail`` holds the operator's details.
        FAILED = "failed"

    class Outcome(models.TextChoices):
        WINNING = "winning", "winning ticket"
        VERIFIED_NOT_WINNING = "verified_not_winning", "verified, not winning"
        REJECTED = "rejected", "rejected"
        FAILED = "failed", "verification failed"

    FINISHED = (Status.VERIFIED, Status.REJECTED, Status.FAILED)

    revision = models.ForeignKey("tickets.Revision", on_delete=models.CASCADE, related_name="verifications")
    task = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OWN)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The policy in force when the verification ran (stated in advance, shown with the result).
    policy = models.JSONField(default=dict, blank=True)
    # policy.Decision.as_dict(): statistics, spreads, margin, threshold, reasons.
    decision = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    #: The three named results of the policy (None until decided; ``winning`` only on verified records).
    winning = models.BooleanField(null=True)
    matching = models.BooleanField(null=True)
    beats_controls = models.BooleanField(null=True)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, blank=True)
    #: Seeds drawn from a cryptographic source when the verification first ran:
    #: {"data_order": [...], "reinit": [...], "random_mask": [...]}. Shown only once it has finished.
    seeds = models.JSONField(default=dict, blank=True)
    #: Operator-facing details of a failure (exception, traceback summary); never shown to the submitter.
    error_detail = models.TextField(blank=True)
    claimed_accuracy = models.FloatField(null=True, blank=True)
    claimed_density = models.FloatField(null=True, blank=True)
    measured_density = models.FloatField(null=True, blank=True)

    # Progress, written by the worker while it trains (the web page polls these).
    runs_total = models.PositiveIntegerField(default=0)
    runs_done = models.PositiveIntegerField(default=0)
    current_run = models.CharField(max_length=200, blank=True)
    current_iteration = models.PositiveIntegerField(null=True, blank=True)
    current_iterations_total = models.PositiveIntegerField(null=True, blank=True)
    current_accuracy = models.FloatField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # Fault tolerance: delivery attempts, the worker holding the job, and its time limits.
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    soft_time_limit_s = models.FloatField(null=True, blank=True)
    time_limit_s = models.FloatField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    #: When a job message was last sent for this verification (the sweeper re-sends at most once per limit).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    device = models.CharField(max_length=100, blank=True)
    engine = models.CharField(max_length=100, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["revision", "task", "kind"], name="verification_unique_per_task_kind"),
            models.UniqueConstraint(
                fields=["revision"], condition=models.Q(kind="own"), name="verification_one_own_per_revision"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} verification of revision {self.revision_id} on {self.task}: {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED


class VerificationRun(models.Model):
    class Role(models.TextChoices):
        TICKET = "ticket", "ticket (its own init and mask)"
        REINIT = "reinit", "same mask, fresh random init"
        RANDOM_MASK = "random_mask", "random mask, same per-layer density"
        SUPERMASK = "supermask", "mask on the untrained init"
        DENSE = "dense", "dense parent (its own init, every weight kept)"

    verification = models.ForeignKey(Verification, on_delete=models.CASCADE, related_name="runs")
    role = models.CharField(max_length=16, choices=Role.choices)
    #: The run's index within its role (0..N-1), not a seed: the seeds are below.
    seed = models.PositiveIntegerField()
    #: The data-order seed (drawn at verification time, the same for every role's run K).
    data_seed = models.PositiveBigIntegerField(null=True, blank=True)
    #: The seed of a control's fresh init (reinit) or shuffled mask (random_mask).
    control_seed = models.PositiveBigIntegerField(null=True, blank=True)
    final_test_accuracy = models.FloatField()
    final_test_loss = models.FloatField(null=True, blank=True)
    final_val_accuracy = models.FloatField(null=True, blank=True)
    early_stop_iteration = models.PositiveIntegerField(null=True, blank=True)
    early_stop_test_accuracy = models.FloatField(null=True, blank=True)
    iterations = models.PositiveIntegerField(default=0)
    # [{iteration, val_loss, val_accuracy, test_loss, test_accuracy}, ...]
    curve = models.JSONField(default=list, blank=True)
    density = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=100, blank=True)
    engine = models.CharField(max_length=100, blank=True)
    wall_time_s = models.FloatField(default=0.0)
    versions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["verification", "role", "seed"]
        constraints = [
            models.UniqueConstraint(fields=["verification", "role", "seed"], name="verification_run_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.role} seed {self.seed}: {self.final_test_accuracy:.4f}"
