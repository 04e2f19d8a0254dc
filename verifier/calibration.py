"""Measure a task's seed spread and the policy's error rates on honest and inflated claims.

    python -m verifier.calibration --task mnist1d --arch '{"family": "mlp", "args": {"hidden": [100, 100]}}'

1. **Honest tickets**: IMP (``ticketclient.pruning.find_ticket``) with several finder seeds; every round's
   bundle is a ticket at its density whose claim is exactly what the finder measured (one training run).
2. **Verification runs**: each ticket retrained with the verifier's code (stacked when the recipe allows,
   else ``training.train``) with fresh data-order seeds.
3. **Seed spread**: the pooled within-ticket standard deviation of the final test accuracy; this is the
   ``sd`` that ``ticketclient.policy.TASK_NOISE`` states per task.
4. **Error rates**: the policy's verified/rejected verdict on each honest claim and on the same claim
   inflated by +1.0, +1.5 and +2.5 points, decided on the honest ticket's runs (an inflated claim trains
   exactly like its honest twin, so only the honest tickets are trained).

The science test (tests/science) runs this on mnist1d and mnist-5k with fixed seeds and asserts the
policy's targets: no honest claim rejected, every +2.5 claim rejected.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from ticketclient.policy import VerificationPolicy

#: Claim inflations measured, in accuracy (fractions): honest, +1.0, +1.5 and +2.5 points.
INFLATIONS = (0.0, 0.010, 0.015, 0.025)


@dataclass(frozen=True)
class HonestTicket:
    bundle: Any
    finder_seed: int
    round: int
    density: float

    @property
    def claim(self) -> float:
        return float(self.bundle.config.claims.test_accuracy)

    @property
    def claim_runs(self) -> int:
        return int(self.bundle.config.claims.runs or 1)


@dataclass
class Calibration:
    task: str
    tickets: list[HonestTicket]
    #: runs[i] = final test accuracies of ticket i over the verification seeds
    runs: list[list[float]]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def pooled_sd(self) -> float:
        return pooled_sd(self.runs)

    def claim_gaps(self, policy: VerificationPolicy) -> list[float]:
        """statistic(runs) - claim, per honest ticket (the quantity the tolerance must cover)."""
        return [policy.summarise(r) - t.claim for t, r in zip(self.tickets, self.runs, strict=True)]

    def error_table(self, policy: VerificationPolicy) -> dict[float, dict[str, int]]:
        """For each inflation: how many claims were rejected / verified under ``policy``."""
        table: dict[float, dict[str, int]] = {}
        for inflation in INFLATIONS:
            rejected = 0
            for t, r in zip(self.tickets, self.runs, strict=True):
                d = policy.decide(task=self.task, runs={"ticket": r}, claimed_accuracy=min(1.0, t.claim + inflation),
                                  claim_runs=t.claim_runs)
                rejected += not d.verified
            table[inflation] = {"claims": len(self.tickets), "rejected": rejected,
                                "verified": len(self.tickets) - rejected}
        return table

    def report(self, policy: VerificationPolicy) -> str:
        tol = policy.tolerance_for(self.task)
        gaps = self.claim_gaps(policy)
        lines = [
            f"{self.task}: {len(self.tickets)} honest tickets (densities "
            f"{', '.join(f'{t.density:.1%}' for t in self.tickets)}), {len(self.runs[0])} verification runs each",
            f"  pooled seed sd {self.pooled_sd:.4f}; statistic - claim: min {min(gaps):+.4f}, max {max(gaps):+.4f}",
            f"  tolerance {policy.tolerance_for(self.task, self.tickets[0].claim_runs):.4f} for claims from "
            f"{self.tickets[0].claim_runs} run(s); {tol:.4f} for one-run claims "
            f"({policy.tolerance_basis(self.task).get('source')})",
            "  claim            claims  rejected  verified",
        ]
        for inflation, row in self.error_table(policy).items():
            label = "honest" if inflation == 0 else f"+{inflation * 100:.1f} points"
            lines.append(f"  {label:<15} {row['claims']:>7} {row['rejected']:>9} {row['verified']:>9}")
        lines.append("  time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items()))
        return "\n".join(lines)


def pooled_sd(runs: list[list[float]]) -> float:
    """sqrt of the mean within-group variance (ddof 1) over groups of at least two runs."""
    variances = [statistics.variance(r) for r in runs if len(r) >= 2]
    if not variances:
        raise ValueError("need at least one group of two runs")
    return math.sqrt(sum(variances) / len(variances))


def honest_tickets(task: str, architecture: dict[str, Any], recipe: Any, *, finder_seeds: list[int], rounds: int,
                   strategy: Any, data: Any, device: str = "cpu", claim_runs: int = 3) -> list[HonestTicket]:
    """Every round of IMP for each finder seed, claiming what the finder measured (``claim_runs`` runs)."""
    from ticketclient import format, pruning

    out = []
    for seed in finder_seeds:
        bundles = pruning.find_ticket(task, architecture, recipe, rounds=rounds, strategy=strategy, seed=seed,
                                      progress=False, data=data, device=device, claim_runs=claim_runs)
        for k, bundle in enumerate(bundles, start=1):
            out.append(HonestTicket(bundle=bundle, finder_seed=seed, round=k,
                                    density=float(format.measure_density(bundle.mask)[0])))
    return out


def verification_runs(tickets: list[HonestTicket], recipe: Any, data_seeds: list[list[int]], *, data: Any,
                      device: str = "cpu", chunk: int = 48) -> list[list[float]]:
    """Retrain every ticket with its data-order seeds, as the verifier does (stacked when supported)."""
    from ticketclient import models, pruning, stacked, training

    arch, _ = pruning._resolve(tickets[0].bundle.config.task, pruning._architecture_dict(tickets[0].bundle.config))
    jobs = [(i, s) for i, seeds in enumerate(data_seeds) for s in seeds]
    accuracies: list[list[float]] = [[] for _ in tickets]
    if stacked.supports(arch, recipe):
        for start in range(0, len(jobs), chunk):
            part = jobs[start:start + chunk]
            results = stacked.train_stacked(
                arch, [stacked.StackedRun(init=tickets[i].bundle.init, mask=tickets[i].bundle.mask, seed=s)
                       for i, s in part], data, recipe, device=device)
            for (i, _), result in zip(part, results, strict=True):
                accuracies[i].append(float(result.final_test_accuracy))
        return accuracies
    for i, s in jobs:
        model = models.build_model(arch)
        models.load_tensors(model, tickets[i].bundle.init)
        result = training.train(model, tickets[i].bundle.mask, data, recipe, seed=s, device=device, progress=False)
        accuracies[i].append(float(result.final_test_accuracy))
    return accuracies


def calibrate(task: str, architecture: dict[str, Any], recipe: Any, *, finder_seeds: list[int], rounds: int,
              strategy: Any, verification_seeds: int, seed_source: int | None = None,
              device: str = "cpu", claim_runs: int = 3) -> Calibration:
    """Honest tickets, their verification runs and the seed spread. ``seed_source`` fixes the seeds."""
    import numpy as np
    from ticketclient import data as data_module

    task_data = data_module.load(task)
    started = time.perf_counter()
    tickets = honest_tickets(task, architecture, recipe, finder_seeds=finder_seeds, rounds=rounds,
                             strategy=strategy, data=task_data, device=device, claim_runs=claim_runs)
    found = time.perf_counter()
    if seed_source is None:
        from ticketclient.policy import draw_seeds

        data_seeds = [draw_seeds(verification_seeds)["data_order"] for _ in tickets]
    else:
        rng = np.random.default_rng(seed_source)
        data_seeds = [[int(x) for x in rng.integers(0, 2**53, verification_seeds)] for _ in tickets]
    runs = verification_runs(tickets, recipe, data_seeds, data=task_data, device=device)
    done = time.perf_counter()
    return Calibration(task=task, tickets=tickets, runs=runs,
                       seconds={"finding": found - started, "verification runs": done - found})


def main(argv: list[str] | None = None) -> int:
    from ticketclient import pruning, spec, tasks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=tasks.names)
    parser.add_argument("--arch", type=json.loads, help="config architecture (default: the task's default)")
    parser.add_argument("--iterations", type=int, help="default: the task's default recipe")
    parser.add_argument("--finder-seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.5, help="layer-wise pruning rate per round")
    parser.add_argument("--seeds", type=int, default=5, help="verification runs per ticket (5 for the sd)")
    parser.add_argument("--policy-seeds", type=int, default=3, help="runs per role of the policy judged")
    parser.add_argument("--seed-source", type=int, help="fix the verification seeds (default: secrets)")
    parser.add_argument("--claim-runs", type=int, default=3, help="runs behind each honest claim (ticket find: 3)")
    args = parser.parse_args(argv)

    info = tasks.get(args.task)
    architecture: dict[str, Any] = args.arch or info.default_architecture
    family = spec.FAMILIES[architecture["family"]] if "family" in architecture else None
    base = family.default_recipe if family else spec.FAMILIES["mlp"].default_recipe
    import dataclasses

    overrides = dict(getattr(info, "default_recipe", {}) or {})
    if args.iterations:
        overrides.update(iterations=args.iterations, eval_every=max(1, args.iterations // 5))
    recipe = dataclasses.replace(base, **overrides)
    cal = calibrate(args.task, architecture, recipe, finder_seeds=list(range(args.finder_seeds)), rounds=args.rounds,
                    strategy=pruning.Layerwise(args.rate, args.rate / 2), verification_seeds=args.seeds,
                    seed_source=args.seed_source, claim_runs=args.claim_runs)
    print(f"{args.task}: TaskNoise(sd={cal.pooled_sd:.4f}, tickets={len(cal.tickets)}, seeds_per_ticket={args.seeds})")
    from verifier.policy import current_policy

    policy = dataclasses.replace(current_policy(), seeds=args.policy_seeds)
    judged = Calibration(task=cal.task, tickets=cal.tickets, runs=[r[:args.policy_seeds] for r in cal.runs],
                         seconds=cal.seconds)
    print(judged.report(policy))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
