"""Verifier settings, read from the environment (torch-free: the web process imports this).

Every knob has a default that suits a single-machine deployment; production sets the env vars in
docker/compose. Tests set ``VERIFIER_BROKER_PREFIX`` so that parallel test sessions sharing one Redis
never see each other's messages.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_json_dict(name: str) -> dict[str, float]:
    raw = os.environ.get(name)
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object mapping task name to tolerance, got {raw!r}")
    return {str(k): float(v) for k, v in value.items()}


def gpu_count() -> int:
    """Number of NVIDIA GPUs this process may use, without importing torch or CUDA."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


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
    tolerance_z: float = 1.8
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
            visibility_timeout=_env_int("VERIFIER_VISIBILITY_TIMEOUT", d.visibility_timeout),
            restore_interval=_env_int("VERIFIER_RESTORE_INTERVAL", d.restore_interval),
            seeds=_env_int("VERIFIER_SEEDS", d.seeds),
            statistic=os.environ.get("VERIFIER_STATISTIC") or d.statistic,
            default_tolerance=_env_float("VERIFIER_DEFAULT_TOLERANCE", d.default_tolerance),
            tolerance_z=_env_float("VERIFIER_TOLERANCE_Z", d.tolerance_z),
            tolerances=_env_json_dict("VERIFIER_TOLERANCES"),
            assumed_macs_per_second=_env_float("VERIFIER_ASSUMED_MACS_PER_SECOND", d.assumed_macs_per_second),
            time_safety_factor=_env_float("VERIFIER_TIME_SAFETY_FACTOR", d.time_safety_factor),
            time_overhead_s=_env_float("VERIFIER_TIME_OVERHEAD_S", d.time_overhead_s),
            max_time_limit_s=_env_float("VERIFIER_MAX_TIME_LIMIT_S", d.max_time_limit_s),
            heartbeat_stale_s=_env_float("VERIFIER_HEARTBEAT_STALE_S", d.heartbeat_stale_s),
            max_attempts=_env_int("VERIFIER_MAX_ATTEMPTS", d.max_attempts),
            sweep_interval_s=_env_float("VERIFIER_SWEEP_INTERVAL_S", d.sweep_interval_s),
            cpu_parallel_runs=_env_int("VERIFIER_CPU_PARALLEL_RUNS", d.cpu_parallel_runs),
            stacked=os.environ.get("VERIFIER_STACKED", "1") not in ("0", "false", "no"),
            concurrency=_env_int("VERIFIER_CONCURRENCY", d.concurrency),
            torch_threads=_env_int("VERIFIER_TORCH_THREADS", d.torch_threads),
        )


def get_settings() -> VerifierSettings:
    return VerifierSettings.from_env()
