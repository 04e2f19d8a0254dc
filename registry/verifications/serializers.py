"""API shapes of verification results: every result carries the policy it was judged by."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from ticketclient.policy import VerificationPolicy, spread

from registry.verifications.config import current_policy
from registry.verifications.models import Verification, VerificationRun


class VerificationRunSerializer(serializers.ModelSerializer):
    data_seed = serializers.SerializerMethodField()
    control_seed = serializers.SerializerMethodField()

    class Meta:
        model = VerificationRun
        fields = [
            "role", "seed", "data_seed", "control_seed", "final_test_accuracy", "final_test_loss", "final_val_accuracy",
            "early_stop_iteration", "early_stop_test_accuracy", "iterations", "density", "device", "engine",
            "wall_time_s", "versions", "curve", "created_at",
        ]

    def get_data_seed(self, run: VerificationRun) -> int | None:
        """Seeds are published with the finished result, never while it runs (they must not be predictable)."""
        return run.data_seed if run.verification.finished else None

    def get_control_seed(self, run: VerificationRun) -> int | None:
        return run.control_seed if run.verification.finished else None


class VerificationSerializer(serializers.ModelSerializer):
    ticket = serializers.CharField(source="revision.ticket.name", read_only=True)
    revision = serializers.CharField(source="revision.commit", read_only=True)
    revision_status = serializers.CharField(source="revision.status", read_only=True)
    progress = serializers.SerializerMethodField()
    time_limits = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()
    seeds = serializers.SerializerMethodField()
    runs = VerificationRunSerializer(many=True, read_only=True)

    class Meta:
        model = Verification
        fields = [
            "id", "ticket", "revision", "revision_status", "task", "kind", "status", "outcome", "winning",
            "matching", "beats_controls", "reason", "error_code", "claimed_accuracy", "claimed_density",
            "measured_density", "summary", "decision", "policy", "seeds", "progress", "attempts", "device",
            "engine", "time_limits", "created_at", "started_at", "finished_at", "runs",
        ]

    def get_seeds(self, v: Verification) -> dict[str, list[int]] | None:
        """The drawn seeds, once the verification has finished (never before: they must not be predictable)."""
        return v.seeds if v.finished and v.seeds else None

    def get_progress(self, v: Verification) -> dict[str, Any]:
        return {
            "runs_done": v.runs_done,
            "runs_total": v.runs_total,
            "current_run": v.current_run,
            "iteration": v.current_iteration,
            "iterations": v.current_iterations_total,
            "accuracy": v.current_accuracy,
            "heartbeat_at": v.heartbeat_at,
        }

    def get_time_limits(self, v: Verification) -> dict[str, float | None]:
        return {"soft_s": v.soft_time_limit_s, "hard_s": v.time_limit_s}

    def get_policy(self, v: Verification) -> dict[str, Any]:
        """The policy the result was judged by (the current one while it has not run yet)."""
        if v.policy:
            return v.policy
        return current_policy().as_dict(v.task)

    def get_summary(self, v: Verification) -> dict[str, Any]:
        """Per role: the accuracies over seeds, their statistic and spread (max - min)."""
        policy = VerificationPolicy(statistic=(v.policy or {}).get("statistic", "median"))
        by_role: dict[str, list[float]] = {}
        for run in v.runs.all():
            by_role.setdefault(run.role, []).append(run.final_test_accuracy)
        return {
            role: {"runs": len(vals), "accuracies": vals, "statistic": policy.summarise(vals),
                   "spread": spread(vals)}
            for role, vals in by_role.items()
        }


class TransferRequestSerializer(serializers.Serializer):
    task = serializers.CharField(max_length=64, help_text="The other task, with the same input shape.")
    claimed_accuracy = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0)
