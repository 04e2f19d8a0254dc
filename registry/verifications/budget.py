"""Time limits of a verification job, derived from the recipe's training budget (torch-free).

cost = (trained runs) x iterations x batch_size x 3 x forward multiply-adds per example
     + (trained runs) x evaluations x (validation + test examples) x forward multiply-adds
soft limit = overhead + safety_factor x cost / assumed multiply-adds per second; hard = soft x 1.1 + 60 s.
Both are capped by the deployment's maximum (submissions whose recipe would exceed the cap are refused by
the registry's validation limits before they are queued).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from registry.verifications.config import VerifierSettings, get_settings

#: Evaluation split sizes when the task does not say (validation + test examples).
DEFAULT_EVAL_EXAMPLES = 20_000


@dataclass(frozen=True)
class TimeLimits:
    soft_s: float
    hard_s: float
    estimated_macs: float

    def as_dict(self) -> dict[str, float]:
        return {"soft_s": self.soft_s, "hard_s": self.hard_s, "estimated_macs": self.estimated_macs}


def estimate_macs(*, forward_macs: int, iterations: int, batch_size: int, eval_every: int,
                  trained_runs: int, eval_examples: int = DEFAULT_EVAL_EXAMPLES) -> float:
    evaluations = iterations // max(1, eval_every) + 1
    train = iterations * batch_size * 3 * forward_macs
    evaluate = evaluations * eval_examples * forward_macs
    return float(trained_runs * (train + evaluate) + eval_examples * forward_macs)


def time_limits(estimated_macs: float, settings: VerifierSettings | None = None) -> TimeLimits:
    s = settings or get_settings()
    soft = s.time_overhead_s + s.time_safety_factor * estimated_macs / s.assumed_macs_per_second
    soft = min(soft, s.max_time_limit_s)
    hard = min(soft * 1.1 + 60.0, s.max_time_limit_s + 60.0)
    return TimeLimits(soft_s=math.ceil(soft), hard_s=math.ceil(hard), estimated_macs=estimated_macs)
