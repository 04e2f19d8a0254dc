"""Verification settings, read from the environment (torch-free and verifier-free).

The one place that reads the ``VERIFIER_*`` variables: the web process uses them for the policy in force and
for the time limits of a new verification, the verifier's workers for everything else (``verifier.config``
re-exports them). Every knob has a default that suits a single-machine deployment; production sets the env
vars in docker/compose. Tests set ``VERIFIER_BROKER_PREFIX`` so that parallel test sessions sharing one Redis
never see each other's messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ticketclient.constants import env_float, env_int, env_json_dict
from ticketclient.policy import VerificationPolicy


@dataclass(frozen=True)
class VerifierSettings:
    broker_url: str = "redis://127.0.0.1:6379/0"
    broker_prefix: str = ""
    queue: str = "verify"
    #: Seconds a delivered but unacknowledged message waits before Redis gives it to another worker.
    #: Must exceed the longest hard time limit, or a long job would be delivered twice (harmless, the job
    #: is idempotent, but wasteful).
    visibility_timeout: int = 6 * 3600
    restore_interval: int = 10
    seeds: int = 3
    statistic: str = "median"
    #: Tolerances are derived per task from measured seed spread (ticketclient.policy); these two knobs and
    #: the per-task overrides below are the operator's, and the policy states them as such.
    default_tolerance: float = 0.01
    tolerance_z: float = 2.5
    #: operator overrides of the derived tolerances (``VERIFIER_TOLERANCES``, a JSON object task -> tolerance)
    tolerances: dict[str, float] = field(default_factory=dict)
    #: Time limits: the recipe's multiply-add budget over this throughput, times a safety factor, plus a
    #: fixed allowance (data loading, evaluation, model building).
    assumed_macs_per_second: float = 2e9
    time_safety_factor: float = 4.0
    time_overhead_s: float = 120.0
    max_time_limit_s: float = 6 * 3600 - 600
    #: A running job writes a heartbeat every few seconds (verifier.tasks.heartbeat); another delivery of the same
    #: job waits while it is younger than this, and the sweeper re-enqueues a running job whose heartbeat is older
    #: (a SIGKILLed worker's job runs again within about this plus one sweep interval).
    heartbeat_stale_s: float = 60.0
    max_attempts: int = 3
    sweep_interval_s: float = 60.0
    #: Parallel training processes for one verification on a CPU-only worker (0: one per core).
    cpu_parallel_runs: int = 0
    #: Train a verification's runs stacked into one batched model when the architecture allows it.
    stacked: bool = True
    concurrency: int = 0
    #: torch intra-op threads of a CPU worker process (0: one per core). On a machine shared with other
    #: work, 1 avoids oversubscription, which costs far more than a second thread gains on small networks.
    torch_threads: int = 0

    @classmethod
    def from_env(cls) -> VerifierSettings:
        d = cls()
        return cls(
            broker_url=os.environ.get("CELERY_BROKER_URL") or d.broker_url,
            broker_prefix=os.environ.get("VERIFIER_BROKER_PREFIX", d.broker_prefix),
            queue=os.environ.get("VERIFIER_QUEUE") or d.queue,
            visibility_timeout=env_int("VERIFIER_VISIBILITY_TIMEOUT", d.visibility_timeout),
            restore_interval=env_int("VERIFIER_RESTORE_INTERVAL", d.restore_interval),
            seeds=env_int("VERIFIER_SEEDS", d.seeds),
            statistic=os.environ.get("VERIFIER_STATISTIC") or d.statistic,
            default_tolerance=env_float("VERIFIER_DEFAULT_TOLERANCE", d.default_tolerance),
            tolerance_z=env_float("VERIFIER_TOLERANCE_Z", d.tolerance_z),
            tolerances=env_json_dict("VERIFIER_TOLERANCES"),
            assumed_macs_per_second=env_float("VERIFIER_ASSUMED_MACS_PER_SECOND", d.assumed_macs_per_second),
            time_safety_factor=env_float("VERIFIER_TIME_SAFETY_FACTOR", d.time_safety_factor),
            time_overhead_s=env_float("VERIFIER_TIME_OVERHEAD_S", d.time_overhead_s),
            max_time_limit_s=env_float("VERIFIER_MAX_TIME_LIMIT_S", d.max_time_limit_s),
            heartbeat_stale_s=env_float("VERIFIER_HEARTBEAT_STALE_S", d.heartbeat_stale_s),
            max_attempts=env_int("VERIFIER_MAX_ATTEMPTS", d.max_attempts),
            sweep_interval_s=env_float("VERIFIER_SWEEP_INTERVAL_S", d.sweep_interval_s),
            cpu_parallel_runs=env_int("VERIFIER_CPU_PARALLEL_RUNS", d.cpu_parallel_runs),
            stacked=os.environ.get("VERIFIER_STACKED", "1") not in ("0", "false", "no"),
            concurrency=env_int("VERIFIER_CONCURRENCY", d.concurrency),
            torch_threads=env_int("VERIFIER_TORCH_THREADS", d.torch_threads),
        )


def get_settings() -> VerifierSettings:
    return VerifierSettings.from_env()


def policy_from_settings(settings: VerifierSettings | None = None) -> VerificationPolicy:
    """The verification policy of these settings (seeds, statistic, tolerances)."""
    s = settings or get_settings()
    return VerificationPolicy(seeds=s.seeds, statistic=s.statistic, z=s.tolerance_z,
                              default_tolerance=s.default_tolerance, overrides=dict(s.tolerances))


def current_policy() -> VerificationPolicy:
    """The policy in force on this deployment (what the workers apply and the pages state)."""
    return policy_from_settings()
