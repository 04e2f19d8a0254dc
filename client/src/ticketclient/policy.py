"""The verification policy: roles, statistics, tolerances and the decision (torch-free, no Django).

One module, imported by the registry (to state the policy and show results), by the verifier (to decide)
and by users (to evaluate a verification record locally: ``VerificationPolicy().decide(...)``).

A verification retrains, with the ticket's declared recipe and N data-order seeds drawn at verification
time from a cryptographic source (:func:`draw_seeds`):

* ``ticket``       the ticket's own init and mask;
* ``dense``        the dense parent: the ticket's own init with every weight kept (all-ones mask);
* ``reinit``       the ticket's mask on a fresh init drawn exactly as a new network's init is drawn
                   (``ticketclient.models.init_weights``: the architecture's registered initialiser, biases
                   included) from a control seed;
* ``random_mask``  the ticket's init with each layer's kept positions drawn uniformly at random, keeping the
                   exact number of kept weights per layer, from a control seed;
* ``supermask``    the ticket's mask on its untrained init, evaluated once (no training).

Run K of every trained role uses data-order seed K (a paired design: the roles differ only in init or mask).
The decision has three named outcomes, each with its numbers (:class:`Decision`):

* **verified**        the ticket's statistic >= claimed test accuracy - tolerance(task);
* **matching**        the ticket's statistic >= the dense parent's statistic - matching tolerance(task);
* **beats controls**  statistic(ticket) - max over controls of statistic(control) > the noise, the largest
                      spread (max - min over seeds) of the ticket and of each trained control.

A **winning ticket** is verified, matching and beats its controls. The tolerance of a task is derived from
the seed-to-seed spread the hub measured on it (:data:`TASK_NOISE`, :func:`tolerance`)::

    tolerance          = max(floor, z * sd * sqrt(v(n) + v(m)))
    matching tolerance = max(floor, z * sd * sqrt(2 v(n)))

where ``sd`` is the pooled standard deviation of one run's final test accuracy over data-order seeds, ``v(k)``
the variance of the median of k runs in units of sd**2 (1 for one run, 0.449 for 3), n the verification's
runs per role and m the runs behind the claim (``claims.runs``; absent: 1; ``ticket find`` claims the median
of 3). More runs behind a claim make its tolerance tighter, never looser.
"""

from __future__ import annotations

import math
import secrets
import statistics as _stats
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

TICKET = "ticket"
DENSE = "dense"
REINIT = "reinit"
RANDOM_MASK = "random_mask"
SUPERMASK = "supermask"
#: Controls: they show whether the ticket's init (not just its mask's shape) carries the result.
TRAINED_CONTROLS = (REINIT, RANDOM_MASK)
CONTROLS = (REINIT, RANDOM_MASK, SUPERMASK)
#: Every role trained with the recipe, once per data-order seed.
TRAINED_ROLES = (TICKET, DENSE, *TRAINED_CONTROLS)
ROLES = (TICKET, DENSE, *CONTROLS)
STATISTICS = ("median", "trimmed_mean")

#: How each role's initial state is drawn (shown on the page, in the API and in every record's policy).
ROLE_DESCRIPTIONS: dict[str, str] = {
    TICKET: "the ticket's own init and mask, trained with its recipe",
    DENSE: "the dense parent: the ticket's own init with every weight kept (all-ones mask), same recipe "
           "and data-order seeds",
    REINIT: "the ticket's mask on a fresh init, drawn exactly as a new network's init is drawn "
            "(ticketclient.models.init_weights: the architecture's registered initialiser, biases included) "
            "from the run's reinit seed",
    RANDOM_MASK: "the ticket's init with a random mask: in each layer the same number of kept weights at "
                 "positions drawn uniformly (a permutation from the run's random_mask seed)",
    SUPERMASK: "the ticket's mask on its untrained init, evaluated once without training",
}

#: Largest seed drawn (exclusive): 2**53, so seeds survive JSON in every language unchanged.
SEED_BOUND = 2**53
#: Accuracies are counts over a test split (0.949 is 949 of 1,000): a figure exactly at a threshold is at it,
#: whatever the float subtraction rounds to (0.949 - 0.954 is -0.00500000000000006).
EPSILON = 1e-9


@dataclass(frozen=True)
class TaskNoise:
    """The seed-to-seed standard deviation of one run's final test accuracy on a task, as measured."""

    sd: float
    #: tickets and data-order seeds behind the figure
    tickets: int
    seeds_per_ticket: int
    how: str


#: Measured with ``python -m verifier.calibration`` (honest IMP tickets: 3 finder seeds x 4 rounds at 50% per
#: round, output 25%; each retrained with 5 data-order seeds; the pooled within-ticket standard deviation of
#: the final test accuracy). Tasks missing here use :attr:`VerificationPolicy.default_tolerance`, and the
#: policy says so.
TASK_NOISE: dict[str, TaskNoise] = {
    "mnist1d": TaskNoise(sd=0.0058, tickets=12, seeds_per_ticket=5,
                         how="MLP 100-100, Adam 1.2e-3, batch 60, 2,000 iterations, densities 51.7% to 7.9% "
                             "(python -m verifier.calibration --task mnist1d --arch '{\"family\": \"mlp\", "
                             "\"args\": {\"hidden\": [100, 100]}}' --seed-source 1)"),
    "mnist-5k": TaskNoise(sd=0.0020, tickets=12, seeds_per_ticket=5,
                          how="MLP 100-50, Adam 1.2e-3, batch 60, 1,000 iterations, densities 50.1% to 6.4% "
                              "(python -m verifier.calibration --task mnist-5k --arch '{\"family\": \"mlp\", "
                              "\"args\": {\"hidden\": [100, 50]}}' --iterations 1000 --seed-source 1); LeNet-300-100 at "
                              "2,000 iterations, 10 tickets from 50.1% to 3.2%, measured 0.0017"),
    "digits": TaskNoise(sd=0.0019, tickets=12, seeds_per_ticket=5,
                        how="MLP 100-100, Adam 1.2e-3, batch 60, 2,000 iterations, densities 51.4% to 7.7% "
                            "(python -m verifier.calibration --task digits --arch '{\"family\": \"mlp\", "
                            "\"args\": {\"hidden\": [100, 100]}}' --iterations 2000 --seed-source 1)"),
}


@lru_cache(maxsize=32)
def statistic_variance_factor(n: int, statistic: str = "median") -> float:
    """Var(statistic of n runs) / sd**2 for normal runs (deterministic simulation, 400,000 draws)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if n == 1:
        return 1.0
    draws = np.random.default_rng(0).standard_normal((400_000, n))
    if statistic == "median":
        values = np.median(draws, axis=1)
    else:
        ordered = np.sort(draws, axis=1)
        values = (ordered[:, 1:-1] if n >= 3 else ordered).mean(axis=1)
    return round(float(values.var()), 4)


def spread(values: Sequence[float]) -> float:
    """Max minus min over the seeds (0 for a single run)."""
    return max(values) - min(values) if values else 0.0


def trimmed_mean(values: Sequence[float]) -> float:
    """Mean after dropping the best and the worst run (MLPerf's rule); plain mean below 3 runs."""
    ordered = sorted(values)
    if len(ordered) >= 3:
        ordered = ordered[1:-1]
    return sum(ordered) / len(ordered)


def draw_seeds(n: int) -> dict[str, list[int]]:
    """Fresh, unpredictable seeds for one verification (``secrets``): data order and the controls'."""
    return {kind: [secrets.randbelow(SEED_BOUND) for _ in range(n)] for kind in ("data_order", REINIT, RANDOM_MASK)}


@dataclass(frozen=True)
class RoleSummary:
    runs: int
    accuracies: list[float]
    statistic: float
    spread: float


@dataclass(frozen=True)
class Decision:
    """The outcome of applying the policy to one verification's runs; every figure is kept."""

    verified: bool
    matching: bool | None
    beats_controls: bool | None
    winning: bool
    outcome: str
    reasons: list[str]
    ticket_statistic: float | None
    dense_statistic: float | None
    dense_gap: float | None
    control_statistics: dict[str, float]
    best_control: str | None
    spreads: dict[str, float]
    margin: float | None
    noise: float | None
    threshold: float | None
    tolerance: float
    matching_tolerance: float
    claim_runs: int
    claimed_accuracy: float | None
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)

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
    #: standard deviations of the claim-vs-statistic difference an honest claim may fall short by (2.5: about
    #: 0.6% of honest claims under a normal model; README: measured error rates)
    z: float = 2.5
    #: runs behind a claim that does not say (``claims.runs`` absent)
    claim_runs: int = 1
    #: no tolerance is smaller than this (half a point: the resolution of a 200-example test split)
    floor: float = 0.005
    #: for tasks the hub has not measured (see :data:`TASK_NOISE`)
    default_tolerance: float = 0.01
    noise: Mapping[str, TaskNoise] = field(default_factory=lambda: dict(TASK_NOISE))
    #: operator overrides (``VERIFIER_TOLERANCES``), stated as such
    overrides: Mapping[str, float] = field(default_factory=dict)
    version: str = "2"

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"verification statistic must be one of {STATISTICS}, got {self.statistic!r}")
        if self.seeds < 1:
            raise ValueError(f"verification needs at least one seed, got {self.seeds}")

    # --- tolerances ---------------------------------------------------------------------------------

    def tolerance_for(self, task: str, claim_runs: int | None = None) -> float:
        """How far below a claim (the median of ``claim_runs`` runs; default one) the ticket may fall."""
        return float(self.tolerance_basis(task, claim_runs)["tolerance"])

    def matching_tolerance_for(self, task: str) -> float:
        """How far below its dense parent the ticket may fall (both are statistics of ``seeds`` runs)."""
        return float(self.tolerance_basis(task, matching=True)["tolerance"])

    def tolerance_basis(self, task: str, claim_runs: int | None = None, *, matching: bool = False) -> dict[str, Any]:
        """The tolerance of ``task`` with the formula and the figures behind it.

        Against a claim that is the median of m runs: ``max(floor, z * sd * sqrt(v(n) + v(m)))`` (v(1) = 1);
        against the dense parent, a statistic of n runs too: ``max(floor, z * sd * sqrt(2 v(n)))``.
        """
        if task in self.overrides:
            return {"tolerance": float(self.overrides[task]), "source": "operator override (VERIFIER_TOLERANCES)"}
        noise = self.noise.get(task)
        if noise is None:
            return {"tolerance": self.default_tolerance,
                    "source": "not yet measured by the hub: the default tolerance"}
        v = statistic_variance_factor(self.seeds, self.statistic)
        m = max(1, int(claim_runs or self.claim_runs))
        other = v if matching else statistic_variance_factor(m, "median")
        raw = self.z * noise.sd * math.sqrt(v + other)
        return {
            "tolerance": round(max(self.floor, raw), 4),
            "source": "measured seed spread",
            "formula": ("max(floor, z * sd * sqrt(2 v(n)))" if matching
                        else "max(floor, z * sd * sqrt(v(n) + v(m)))"),
            "sd": noise.sd, "z": self.z, "n": self.seeds, "v_n": v, "floor": self.floor,
            **({} if matching else {"m": m, "v_m": other}),
            "measured": {"tickets": noise.tickets, "seeds_per_ticket": noise.seeds_per_ticket, "how": noise.how},
        }

    def summarise(self, values: Sequence[float]) -> float:
        if not values:
            raise ValueError("cannot summarise zero runs")
        return float(_stats.median(values)) if self.statistic == "median" else trimmed_mean(values)

    # --- stating the policy -------------------------------------------------------------------------

    def text(self, task: str | None = None) -> str:
        if task:
            tol = f"{self.tolerance_for(task):.3f} for {task}"
        else:
            tol = "per task: " + ", ".join(f"{t} {self.tolerance_for(t):.3f}" for t in sorted(self.noise)) + (
                f"; {self.default_tolerance:.3f} for tasks not yet measured")
        stat = "median" if self.statistic == "median" else "trimmed mean (best and worst run dropped)"
        return (
            f"The ticket is retrained from its own init and mask with its declared recipe {self.seeds} times, "
            f"with data-order seeds drawn at verification time from a cryptographic source and published with "
            f"the result. With the same seeds: the dense parent (the ticket's init, every weight kept), the "
            f"reinit control (the mask on a fresh init drawn by the architecture's own initialiser, biases "
            f"included) and the random-mask control (the ticket's init, the same number of kept weights per "
            f"layer at random positions); the supermask (the mask on the untrained init) is evaluated once. "
            f"Statistic: the {stat} of the final test accuracy. Verified iff the ticket's statistic is at least "
            f"the claimed test accuracy minus the tolerance ({tol} for a one-run claim; tolerance = max(floor, "
            f"z * sd * sqrt(v(n) + v(m))) from the seed spread the hub measured on the task, m the runs behind "
            f"the claim). Matching iff it is at least the dense parent's statistic minus max(floor, z * sd * "
            f"sqrt(2 v(n))). Beats controls iff its statistic minus the "
            f"best control's is larger than the largest spread (max - min over seeds) of the ticket and of "
            f"every trained control. A winning ticket is verified, matching and beats its controls; a verified "
            f"ticket that is not winning is published and shown as not winning. Density is measured from the "
            f"mask and checked at upload, never here. A transfer verification (another task with the same "
            f"input shape) verifies iff the ticket matches the dense parent and beats its controls there (and "
            f"meets a stated accuracy); it never changes the ticket's own status."
        )

    def as_dict(self, task: str | None = None) -> dict[str, Any]:
        tasks = sorted(set(self.noise) | set(self.overrides))
        d: dict[str, Any] = {
            "version": self.version,
            "runs_per_role": self.seeds,
            "seeds": "drawn per verification from a cryptographic source (Python's secrets), below 2**53; "
                     "recorded with the runs and shown once the verification has finished",
            "roles": {role: ROLE_DESCRIPTIONS[role] for role in ROLES},
            "statistic": self.statistic,
            "metric": "final_test_accuracy",
            "tolerance_formula": "max(floor, z * sd * sqrt(v(n) + v(m))); m = claims.runs (default 1)",
            "matching_tolerance_formula": "max(floor, z * sd * sqrt(2 v(n)))",
            "z": self.z, "floor": self.floor, "claim_runs": self.claim_runs,
            "default_tolerance": self.default_tolerance,
            "tolerances": {t: self.tolerance_basis(t) for t in tasks},
            "outcomes": {
                "verified": "statistic(ticket) >= claimed test accuracy - tolerance(task)",
                "matching": "statistic(ticket) >= statistic(dense) - matching tolerance(task)",
                "beats_controls": "statistic(ticket) - max over controls of statistic(control) > "
                                  "max(spread(ticket), spread(each trained control)); spread = max - min",
                "winning": "verified and matching and beats_controls",
            },
            "text": self.text(task),
        }
        if task is not None:
            d["task"] = task
            d["tolerance"] = self.tolerance_for(task)
            d["tolerance_basis"] = self.tolerance_basis(task)
            d["matching_tolerance"] = self.matching_tolerance_for(task)
        return d

    # --- deciding -----------------------------------------------------------------------------------

    def decide(self, *, task: str, runs: Mapping[str, Sequence[float]], claimed_accuracy: float | None,
               transfer: bool = False, claim_runs: int | None = None) -> Decision:
        """Apply the policy. ``runs`` maps a role to the final test accuracies of its runs.

        A ``transfer`` verification (another task than the ticket's own) has no claim from the config: it
        verifies iff the ticket matches the dense parent and beats its controls on that task (and, when the
        request stated an accuracy, the accuracy rule holds too).
        """
        tolerance = self.tolerance_for(task, claim_runs)
        matching_tolerance = self.matching_tolerance_for(task)
        ticket_runs = list(runs.get(TICKET, []))
        if len(ticket_runs) < self.seeds:
            raise ValueError(f"the policy needs {self.seeds} ticket runs, got {len(ticket_runs)}")
        summaries = {role: RoleSummary(len(v), list(v), self.summarise(v), spread(v))
                     for role, v in runs.items() if v}
        ticket_stat = summaries[TICKET].statistic
        stat_name = f"{self.statistic} test accuracy over {len(ticket_runs)} runs"
        reasons: list[str] = []

        # 1. verified: the claim holds
        threshold = None
        if claimed_accuracy is None:
            claim_holds = transfer
            if not transfer:
                reasons.append("The config claims no test accuracy, so there is nothing to verify.")
        else:
            threshold = claimed_accuracy - tolerance
            claim_holds = ticket_stat >= threshold - EPSILON
            reasons.append(
                f"{'Verified' if claim_holds else 'Rejected'}: the ticket's {stat_name} is {ticket_stat:.4f}, "
                f"{'at or above' if claim_holds else 'below'} the claimed {claimed_accuracy:.4f} minus the "
                f"tolerance {tolerance:.4f} for {task} and a claim from {max(1, int(claim_runs or 1))} run(s) "
                f"(threshold {threshold:.4f})."
            )

        # 2. matching: not below the measured dense parent by more than the tolerance
        dense_stat = summaries[DENSE].statistic if DENSE in summaries else None
        matching = dense_gap = None
        if dense_stat is not None:
            dense_gap = ticket_stat - dense_stat
            matching = dense_gap >= -matching_tolerance - EPSILON
            reasons.append(
                f"{'Matching' if matching else 'Not matching'}: the dense parent scores {dense_stat:.4f}; the "
                f"ticket is {dense_gap:+.4f} from it (allowed: -{matching_tolerance:.4f})."
            )

        # 3. beats controls: the margin over the best control exceeds the noise of the seeds
        control_stats = {r: s.statistic for r, s in summaries.items() if r in CONTROLS}
        spreads = {r: s.spread for r, s in summaries.items()}
        beats = margin = noise = best = None
        if control_stats:
            best = max(control_stats, key=lambda r: control_stats[r])
            margin = ticket_stat - control_stats[best]
            noise = max(spreads[r] for r in (TICKET, *TRAINED_CONTROLS) if r in spreads)
            beats = margin > noise + EPSILON
            reasons.append(
                f"{'Beats' if beats else 'Does not beat'} its controls: {margin:+.4f} over the best control "
                f"({best}, {control_stats[best]:.4f}); the largest spread over seeds is {noise:.4f}."
            )

        verified = claim_holds and (not transfer or (bool(matching) and bool(beats)))
        if transfer and claim_holds and not verified:
            reasons.append(f"On {task} the ticket does not both match the dense parent and beat its controls, "
                           f"so it does not transfer.")
        winning = bool(verified and matching and beats)
        outcome = "winning" if winning else "verified_not_winning" if verified else "rejected"
        return Decision(
            verified=verified, matching=matching, beats_controls=beats, winning=winning, outcome=outcome,
            reasons=reasons, ticket_statistic=ticket_stat, dense_statistic=dense_stat, dense_gap=dense_gap,
            control_statistics=control_stats, best_control=best, spreads=spreads, margin=margin, noise=noise,
            threshold=threshold, tolerance=tolerance, matching_tolerance=matching_tolerance,
            claim_runs=max(1, int(claim_runs or 1)), claimed_accuracy=claimed_accuracy,
            roles={r: asdict(s) for r, s in summaries.items()},
        )


#: The outcomes in words: the one vocabulary of the pages, badges, model cards and the client
#: ("verified": a verified record from before the dense parent was measured).
OUTCOME_LABELS = {
    "winning": "winning ticket",
    "verified_not_winning": "verified, not winning",
    "verified": "verified",
    "rejected": "rejected",
    "failed": "verification failed",
}

__all__ = [
    "CONTROLS", "DENSE", "Decision", "OUTCOME_LABELS", "RANDOM_MASK", "REINIT", "ROLES", "ROLE_DESCRIPTIONS",
    "STATISTICS", "SUPERMASK", "TASK_NOISE", "TICKET", "TRAINED_CONTROLS", "TRAINED_ROLES", "TaskNoise",
    "VerificationPolicy", "draw_seeds", "spread", "statistic_variance_factor", "trimmed_mean",
]
