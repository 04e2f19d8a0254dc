"""The verification policy, stated in advance and returned with every result (torch-free).

The policy decides from numbers only: the final test accuracies of the retrained runs, the claim, and the
measured and claimed densities. The web process imports it to show the policy next to each result.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from verifier.config import VerifierSettings, get_settings

TICKET = "ticket"
REINIT = "reinit"
RANDOM_MASK = "random_mask"
SUPERMASK = "supermask"
#: Controls trained with the same recipe and the same data-order seeds as the ticket.
TRAINED_CONTROLS = (REINIT, RANDOM_MASK)
CONTROLS = (REINIT, RANDOM_MASK, SUPERMASK)
ROLES = (TICKET, *CONTROLS)
STATISTICS = ("median", "trimmed_mean")
#: A control of data-order seed s draws its fresh init (reinit) or its shuffled mask (random_mask) from
#: seed CONTROL_SEED_BASE[role] + s, so every control is reproducible from the record.
CONTROL_SEED_BASE = {REINIT: 1_000_003, RANDOM_MASK: 2_000_003}


def control_seed(role: str, seed: int) -> int:
    """The seed of a control's fresh init or random mask: distinct per role, fixed per data-order seed."""
    return CONTROL_SEED_BASE.get(role, 0) + seed


def spread(values: list[float]) -> float:
    """Max minus min over the seeds (0 for a single run)."""
    return max(values) - min(values) if values else 0.0


def trimmed_mean(values: list[float]) -> float:
    """Mean after dropping the best and the worst run (MLPerf's rule); plain mean below 3 runs."""
    ordered = sorted(values)
    if len(ordered) >= 3:
        ordered = ordered[1:-1]
    return sum(ordered) / len(ordered)


@dataclass(frozen=True)
class Decision:
    """The outcome of applying the policy to one verification's runs."""

    verified: bool
    winning: bool
    reasons: list[str]
    ticket_statistic: float | None
    control_statistics: dict[str, float]
    spreads: dict[str, float]
    margin: float | None
    threshold: float | None
    tolerance: float
    measured_density: float | None
    claimed_density: float | None

    @property
    def reason(self) -> str:
        return " ".join(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VerificationPolicy:
    """How a ticket is judged. Every field is shown with every result."""

    seeds: int = 3
    statistic: str = "median"
    default_tolerance: float = 0.02
    tolerances: dict[str, float] = field(default_factory=dict)
    density_tolerance: float = 1e-4
    version: str = "1"

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"verification statistic must be one of {STATISTICS}, got {self.statistic!r}")
        if self.seeds < 1:
            raise ValueError(f"verification needs at least one seed, got {self.seeds}")

    @classmethod
    def from_settings(cls, settings: VerifierSettings | None = None) -> VerificationPolicy:
        s = settings or get_settings()
        return cls(
            seeds=s.seeds,
            statistic=s.statistic,
            default_tolerance=s.default_tolerance,
            tolerances=dict(s.tolerances),
            density_tolerance=s.density_tolerance,
        )

    def tolerance_for(self, task: str) -> float:
        return self.tolerances.get(task, self.default_tolerance)

    def summarise(self, values: list[float]) -> float:
        if not values:
            raise ValueError("cannot summarise zero runs")
        return statistics.median(values) if self.statistic == "median" else trimmed_mean(values)

    def text(self, task: str | None = None) -> str:
        tol = (
            f"{self.tolerance_for(task):.3f} for {task}"
            if task
            else f"{self.default_tolerance:.3f} by default, per task: "
            + ", ".join(f"{k} {v:.3f}" for k, v in sorted(self.tolerances.items()))
        )
        stat = "median" if self.statistic == "median" else "trimmed mean (best and worst run dropped)"
        return (
            f"The ticket is retrained from its own init and mask with its declared recipe, once per data-order "
            f"seed 0..{self.seeds - 1} ({self.seeds} runs). Controls: the same mask from a fresh random init "
            f"(reinit) and a random mask with the same per-layer density (random_mask), {self.seeds} runs each "
            f"with the same seeds, and the mask applied to the untrained init (supermask, one evaluation). "
            f"Statistic: the {stat} of the final test accuracy over the runs. Verified iff the measured mask "
            f"density equals the claimed density (when the claims state one, within a relative "
            f"{self.density_tolerance:g}) "
            f"and the ticket's statistic is at least the claimed test accuracy minus the tolerance ({tol}). "
            f"Winning iff the ticket's statistic minus the best control's statistic is larger than the largest "
            f"spread (max minus min over seeds) of the ticket and of every control. A verified ticket that "
            f"is not winning is still verified and is shown as not winning. A transfer verification (the same "
            f"revision on another task with the same input shape) has no claim from the config: it verifies iff "
            f"the ticket is winning on that task (and meets the accuracy rule when the request states an "
            f"accuracy); it is shown separately and never changes the ticket's own status."
        )

    def as_dict(self, task: str | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "version": self.version,
            "runs_per_role": self.seeds,
            "seeds": list(range(self.seeds)),
            "roles": list(ROLES),
            "statistic": self.statistic,
            "metric": "final_test_accuracy",
            "control_seeds": {role: f"{base} + data-order seed" for role, base in CONTROL_SEED_BASE.items()},
            "default_tolerance": self.default_tolerance,
            "tolerances": dict(sorted(self.tolerances.items())),
            "density_tolerance": self.density_tolerance,
            "winning_rule": (
                "statistic(ticket) - max over controls of statistic(control) > "
                "max(spread(ticket), spread(each control)); spread = max - min over seeds"
            ),
            "text": self.text(task),
        }
        if task is not None:
            d["task"] = task
            d["tolerance"] = self.tolerance_for(task)
        return d

    def decide(
        self,
        *,
        task: str,
        runs: dict[str, list[float]],
        claimed_accuracy: float | None,
        measured_density: float | None = None,
        claimed_density: float | None = None,
        transfer: bool = False,
    ) -> Decision:
        """Apply the policy. ``runs`` maps a role to the final test accuracies of its runs.

        A ``transfer`` verification (another task than the ticket's own) has no claim from the config: it
        verifies iff the ticket is winning on that task (and, when the request stated an accuracy, the
        accuracy rule holds too).
        """
        tolerance = self.tolerance_for(task)
        reasons: list[str] = []
        verified = True

        ticket_runs = runs.get(TICKET, [])
        if len(ticket_runs) < self.seeds:
            raise ValueError(f"the policy needs {self.seeds} ticket runs, got {len(ticket_runs)}")
        ticket_stat = self.summarise(ticket_runs)

        if claimed_density is not None and measured_density is not None:
            if not math.isclose(measured_density, claimed_density, rel_tol=self.density_tolerance, abs_tol=1e-9):
                verified = False
                reasons.append(
                    f"The measured mask density {measured_density:.6f} differs from the claimed density "
                    f"{claimed_density:.6f} by more than a relative {self.density_tolerance:g}."
                )

        threshold = None
        if claimed_accuracy is None and not transfer:
            verified = False
            reasons.append("The config claims no test accuracy, so there is nothing to verify.")
        elif claimed_accuracy is not None:
            threshold = claimed_accuracy - tolerance
            if ticket_stat < threshold:
                verified = False
                reasons.append(
                    f"The {self.statistic} test accuracy over {len(ticket_runs)} retraining runs is "
                    f"{ticket_stat:.4f}, below the claimed {claimed_accuracy:.4f} minus the tolerance "
                    f"{tolerance:.3f} for {task} (threshold {threshold:.4f})."
                )

        control_stats = {role: self.summarise(v) for role, v in runs.items() if role != TICKET and v}
        spreads = {role: spread(v) for role, v in runs.items() if v}
        margin = None
        winning = False
        if control_stats:
            best_role = max(control_stats, key=lambda r: control_stats[r])
            margin = ticket_stat - control_stats[best_role]
            winning = margin > max(spreads.values())
        if transfer and not winning:
            verified = False
            reasons.append(f"On {task} the ticket does not beat its controls, so it does not transfer.")
        if verified and claimed_accuracy is not None:
            reasons.append(
                f"The {self.statistic} test accuracy over {len(ticket_runs)} retraining runs is "
                f"{ticket_stat:.4f}, at or above the claimed {claimed_accuracy:.4f} minus the tolerance "
                f"{tolerance:.3f} for {task}."
            )
        if margin is not None:
            reasons.append(
                f"{'Winning' if winning else 'Not winning'}: the ticket beats its best control by "
                f"{margin:+.4f}; the largest spread over seeds is {max(spreads.values()):.4f}."
            )
        return Decision(
            verified=verified,
            winning=winning,
            reasons=reasons,
            ticket_statistic=ticket_stat,
            control_statistics=control_stats,
            spreads=spreads,
            margin=margin,
            threshold=threshold,
            tolerance=tolerance,
            measured_density=measured_density,
            claimed_density=claimed_density,
        )


def current_policy() -> VerificationPolicy:
    return VerificationPolicy.from_settings()
