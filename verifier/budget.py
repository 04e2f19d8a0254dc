"""Time limits of a verification job: lives in :mod:`registry.verifications.budget` (the web process sets the
limits of a new verification); re-exported here for the worker."""

from registry.verifications.budget import DEFAULT_EVAL_EXAMPLES, TimeLimits, estimate_macs, time_limits

__all__ = ["DEFAULT_EVAL_EXAMPLES", "TimeLimits", "estimate_macs", "time_limits"]
