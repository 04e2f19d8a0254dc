"""Rows for catalog tests, written straight to the database (no bundles, no training).

The catalog only reads what submission and verification wrote; these helpers write the same rows
(Ticket, Revision, RevisionFile, Verification, VerificationRun) so pages can be driven at any scale.

    t = make_ticket("lenet-3pct", task=task, owner=owner, status="verified", density=0.036, accuracy=0.982)
    bulk_tickets(10_000, task=task, owner=owner)      # bulk_create, for the query-count tests
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import timedelta
from typing import Any

from django.utils import timezone

from registry.tickets.models import Revision, RevisionFile, Task, Ticket
from registry.verifications.models import Verification, VerificationRun

ARCHITECTURE = [
    {"type": "flatten"},
    {"type": "linear", "out_features": 300, "bias": True},
    {"type": "relu"},
    {"type": "linear", "out_features": 100, "bias": True},
    {"type": "relu"},
    {"type": "linear", "out_features": 10, "bias": True},
]
PRUNABLE = {"layers.1.weight": 40 * 300, "layers.3.weight": 300 * 100, "layers.5.weight": 100 * 10}
RECIPE = {
    "optimizer": "adam", "lr": 0.0012, "momentum": 0.0, "betas": [0.9, 0.999], "weight_decay": 0.0,
    "batch_size": 60, "iterations": 4000, "warmup_iterations": 0, "lr_schedule": "constant",
    "milestones": [], "gamma": 0.1, "rewind_iteration": 0, "eval_every": 200, "augment": "none",
}
POLICY = {
    "version": "1", "runs_per_role": 3, "seeds": [0, 1, 2],
    "roles": ["ticket", "reinit", "random_mask", "supermask"], "statistic": "median",
    "metric": "final_test_accuracy", "tolerance": 0.02, "density_tolerance": 0.0001,
    "text": "The ticket is retrained from its own init and mask with its declared recipe, once per data-order "
            "seed 0..2 (3 runs). Statistic: the median of the final test accuracy over the runs.",
}


def make_task(name: str = "mnist1d", *, baseline: float | None = 0.62, input_shape: list[int] | None = None,
              num_classes: int = 10) -> Task:
    task, _ = Task.objects.update_or_create(
        name=name,
        defaults={
            "description": f"The {name} task.", "input_shape": input_shape or [40], "num_classes": num_classes,
            "default_family": "lenet-300-100", "dense_baseline_accuracy": baseline,
            "dense_baseline_family": "lenet-300-100",
        },
    )
    return task


def commit_for(name: str, number: int) -> str:
    return hashlib.sha1(f"{name}@{number}".encode()).hexdigest()


def _config(task: str, family: str, claimed: float | None) -> dict[str, Any]:
    return {
        "format": "lottery-ticket/v1", "task": task, "architecture": {"family": family, "args": {}},
        "recipe": RECIPE, "claims": {"test_accuracy": claimed} if claimed is not None else {},
        "provenance": {"method": "imp", "rounds": 10, "strategy": "layerwise",
                       "rates": {"default": 0.2, "output": 0.1}, "rewind_iteration": 0, "seed": 0,
                       "dense_test_accuracy": 0.62, "parent": None, "library": "ticketclient 0.1.0"},
    }


def _layer_densities(density: float) -> dict[str, float]:
    return {name: density if name != "layers.5.weight" else min(1.0, density * 2) for name in PRUNABLE}


def _revision(ticket: Ticket, *, number: int, task: Task, family: str, density: float, claimed: float | None,
              status: str, accuracy: float | None, owner: Any) -> Revision:
    return Revision(
        ticket=ticket, number=number, commit=commit_for(ticket.name, number), message=f"revision {number}",
        created_by=owner, config=_config(task.name, family, claimed), family=family, architecture=ARCHITECTURE,
        density=density, layer_densities=_layer_densities(density), num_parameters=sum(PRUNABLE.values()) + 410,
        budget={"iterations": 4000}, claimed_accuracy=claimed, status=status,
        verified_accuracy=accuracy if status == "verified" else None,
        status_changed_at=timezone.now(),
    )


def _curve(final: float, iterations: int = 4000, every: int = 400) -> list[dict[str, float]]:
    points = []
    for it in range(0, iterations + 1, every):
        acc = 0.1 + (final - 0.1) * (1 - math.exp(-5 * it / iterations))
        points.append({"iteration": it, "val_loss": 2.3 * (1 - acc), "val_accuracy": acc,
                       "test_loss": 2.3 * (1 - acc), "test_accuracy": acc})
    return points


def make_verification(revision: Revision, *, status: str, accuracy: float | None, claimed: float | None,
                      runs: bool = True, winning: bool = True, dense: float | None = None,
                      legacy: bool = False) -> Verification:
    """The own verification of ``revision``: finished (verified/rejected/failed) with runs, or running/queued.

    Finished records carry the dense parent (``dense``, default: 0.5 pp under the ticket) and the three
    outcomes, as the policy writes them; ``legacy=True`` writes a record from before the dense parent."""
    acc = accuracy if accuracy is not None else 0.3
    controls = {"reinit": acc - (0.08 if winning else 0.0), "random_mask": acc - (0.1 if winning else 0.005),
                "supermask": 0.12}
    spreads = {"ticket": 0.006, "reinit": 0.01, "random_mask": 0.012, "supermask": 0.0}
    finished = status in ("verified", "rejected", "failed")
    dense = (acc + 0.005) if dense is None else dense
    verified = status == "verified"
    beats_controls = winning
    matching = acc >= dense - 0.02
    winning = winning and (matching or legacy)
    outcome = {"rejected": "rejected", "failed": "failed"}.get(
        status, "winning" if winning else "verified_not_winning")
    decision: dict[str, Any] = {
        "verified": verified, "winning": winning and verified, "reasons": [] if status != "rejected" else [
            f"The median test accuracy over 3 retraining runs is {acc:.4f}, below the claimed "
            f"{claimed or 0:.4f} minus the tolerance 0.020 for mnist1d."],
        "ticket_statistic": acc, "control_statistics": controls, "spreads": spreads,
        "margin": acc - max(controls.values()), "threshold": (claimed - 0.02) if claimed else None,
        "tolerance": 0.02, "measured_density": revision.density, "claimed_density": None,
    }
    if not legacy:
        decision.update({"outcome": outcome, "matching": matching if verified else None,
                         "beats_controls": beats_controls if verified else None, "dense_statistic": dense,
                         "dense_gap": acc - dense})
    if status == "failed":
        decision = {"outcome": "failed"}
    # update_or_create: a revision stored through services.submit_bundle already has its (queued) own record
    verification, _ = Verification.objects.update_or_create(
        revision=revision, task=revision.ticket.task.name, kind="own", defaults=dict(status=status, policy=POLICY,
        decision=decision if finished else {},
        reason={"rejected": "The median test accuracy is below the claim.",
                "failed": "The hub could not finish this verification; it will be retried."}.get(status, ""),
        winning=(winning and verified) if finished else None, claimed_accuracy=claimed,
        measured_density=revision.density,
        outcome=outcome if finished and not legacy else "",
        matching=decision.get("matching") if finished else None,
        beats_controls=decision.get("beats_controls") if finished else None,
        runs_total=9, runs_done=9 if finished else 4,
        current_run="" if finished else "random_mask seed 1",
        current_iteration=None if finished else 1200, current_iterations_total=None if finished else 4000,
        current_accuracy=None if finished else 0.41, heartbeat_at=timezone.now(),
        device="cpu", engine="stacked",
        started_at=timezone.now() - timedelta(minutes=3), finished_at=timezone.now() if finished else None,
    ))
    if runs and finished and status != "failed":
        rows = []
        roles = [("ticket", acc), ("reinit", controls["reinit"]), ("random_mask", controls["random_mask"])]
        if not legacy:
            roles.insert(1, ("dense", dense))
        for role, center in roles:
            for seed, delta in enumerate((-0.003, 0.0, 0.003)):
                final = center + delta
                rows.append(VerificationRun(
                    verification=verification, role=role, seed=seed, final_test_accuracy=final,
                    early_stop_iteration=3200, early_stop_test_accuracy=final - 0.001, iterations=4000,
                    curve=_curve(final), density=revision.density, device="cpu", wall_time_s=12.5))
        rows.append(VerificationRun(verification=verification, role="supermask", seed=0,
                                    final_test_accuracy=controls["supermask"], iterations=0, curve=[],
                                    density=revision.density, device="cpu"))
        VerificationRun.objects.bulk_create(rows)
    return verification


def make_ticket(name: str, *, task: Task, owner: Any, status: str = "verified", density: float = 0.036,
                accuracy: float | None = 0.6, claimed: float | None = 0.6, family: str = "lenet-300-100",
                downloads: int = 0, winning: bool = True, verification: bool = True,
                dense: float | None = None, legacy: bool = False) -> Ticket:
    """A ticket with one revision in ``status`` (its files and, unless pending, its own verification)."""
    ticket = Ticket.objects.create(name=name, owner=owner, task=task, family=family, status=status,
                                   density=density, layer_densities=_layer_densities(density),
                                   num_parameters=sum(PRUNABLE.values()) + 410, claimed_accuracy=claimed,
                                   verified_accuracy=accuracy if status == "verified" else None,
                                   downloads=downloads)
    revision = _revision(ticket, number=1, task=task, family=family, density=density, claimed=claimed,
                         status=status, accuracy=accuracy, owner=owner)
    revision.save()
    RevisionFile.objects.bulk_create(
        RevisionFile(revision=revision, path=path, sha256=hashlib.sha256(f"{name}/{path}".encode()).hexdigest(),
                     size=size)
        for path, size in (("config.json", 812), ("init.safetensors", 1_074_000), ("mask.safetensors", 43_000))
    )
    ticket.latest_revision = revision
    ticket.served_revision = revision if status == "verified" else None
    ticket.save(update_fields=["latest_revision", "served_revision"])
    if verification and status != "pending":
        v_status = {"verifying": "running"}.get(status, status)
        make_verification(revision, status=v_status, accuracy=accuracy, claimed=claimed, winning=winning,
                          dense=dense, legacy=legacy)
    return ticket


def bulk_tickets(count: int, *, task: Task, owner: Any, prefix: str = "bulk", seed: int = 0,
                 families: tuple[str, ...] = ("lenet-300-100", "mlp", "conv-2")) -> int:
    """``count`` tickets (mostly verified, some pending/rejected), each with one revision and, when
    verified, its own verification with the control statistics. bulk_create only; returns ``count``."""
    rng = random.Random(seed)
    tickets = []
    for i in range(count):
        status = rng.choices(["verified", "pending", "rejected", "verifying"], weights=[8, 1, 1, 0.5])[0]
        density = 10 ** rng.uniform(-2.5, 0)
        accuracy = round(0.62 - 0.25 * max(0.0, -1.5 - math.log10(density)) + rng.uniform(-0.03, 0.03), 4)
        tickets.append(Ticket(
            name=f"{prefix}-{i:05d}", owner=owner, task=task, family=families[i % len(families)], status=status,
            density=density, layer_densities=_layer_densities(density), num_parameters=43_410,
            claimed_accuracy=accuracy, verified_accuracy=accuracy if status == "verified" else None,
            downloads=rng.randrange(0, 500),
        ))
    tickets = Ticket.objects.bulk_create(tickets, batch_size=2000)
    revisions = Revision.objects.bulk_create(
        [_revision(t, number=1, task=task, family=t.family, density=t.density, claimed=t.claimed_accuracy,
                   status=t.status, accuracy=t.verified_accuracy, owner=owner) for t in tickets],
        batch_size=2000,
    )
    for t, r in zip(tickets, revisions, strict=True):
        t.latest_revision = r
        t.served_revision = r if r.status == "verified" else None
    Ticket.objects.bulk_update(tickets, ["latest_revision", "served_revision"], batch_size=2000)
    verifications = []
    for r in revisions:
        if r.status not in ("verified", "rejected"):
            continue
        acc = r.verified_accuracy or r.claimed_accuracy or 0.3
        controls = {"reinit": acc - rng.uniform(0.0, 0.1), "random_mask": acc - rng.uniform(0.02, 0.15),
                    "supermask": 0.1}
        verifications.append(Verification(
            revision=r, task=task.name, kind="own", status=r.status, policy=POLICY, winning=True,
            decision={"verified": r.status == "verified", "winning": r.status == "verified", "ticket_statistic": acc,
                      "control_statistics": controls, "spreads": {"ticket": 0.01}, "margin": 0.01,
                      "outcome": "winning" if r.status == "verified" else "rejected", "dense_statistic": acc + 0.004,
                      "dense_gap": -0.004, "matching": True, "beats_controls": True},
            runs_total=9, runs_done=9,
        ))
    Verification.objects.bulk_create(verifications, batch_size=2000)
    return count
