"""Time limits of a verification job derive from the recipe's budget (no database, no torch)."""

from __future__ import annotations

from registry.verifications.budget import estimate_macs, time_limits
from verifier.config import VerifierSettings

SETTINGS = VerifierSettings(assumed_macs_per_second=1e9, time_safety_factor=4.0, time_overhead_s=100.0,
                            max_time_limit_s=3600.0)


def test_soft_limit_is_overhead_plus_safety_factor_times_estimated_time():
    macs = estimate_macs(forward_macs=1000, iterations=1000, batch_size=10, eval_every=100, trained_runs=9,
                         eval_examples=100)
    # 9 runs x (1000 x 10 x 3 x 1000 training + 11 evaluations x 100 x 1000) + one supermask evaluation
    assert macs == 9 * (3e7 + 1.1e6) + 1e5
    limits = time_limits(macs, SETTINGS)
    assert limits.soft_s == int(100 + 4 * macs / 1e9) + 1
    assert limits.hard_s > limits.soft_s


def test_limits_grow_with_the_budget_and_stop_at_the_cap():
    small = time_limits(estimate_macs(forward_macs=10**4, iterations=10**3, batch_size=60, eval_every=100,
                                      trained_runs=9), SETTINGS)
    big = time_limits(estimate_macs(forward_macs=10**4, iterations=10**5, batch_size=60, eval_every=100,
                                    trained_runs=9), SETTINGS)
    huge = time_limits(1e18, SETTINGS)
    assert small.soft_s < big.soft_s <= huge.soft_s == 3600
    assert huge.hard_s <= 3600 + 60
