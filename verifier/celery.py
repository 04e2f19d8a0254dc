"""The Celery application of the verifier's workers (torch-free; the web process never imports it).

The registry sends each verification's one message, ``verifier.run_verification(verification_id)`` on the
``verify`` queue, through its own producer app, :mod:`registry.celery_client` (called by
:mod:`registry.verifications.dispatch`): the two only share the broker, the queue and the task names. Workers run
``celery -A verifier worker -Q verify --concurrency 1 -P prefork`` (one process per GPU; on a CPU-only
machine, one process that trains on the CPU and says so in its log).

Worker settings for long GPU jobs:

- ``task_acks_late``: a message is acknowledged when the job ends, not when it starts, so a worker that
  dies mid-job leaves the message unacknowledged and Redis hands it to another worker after
  ``visibility_timeout``.
- ``task_reject_on_worker_lost``: a pool process killed by a signal (SIGKILL, out of memory) requeues
  its message instead of failing it.
- ``worker_prefetch_multiplier = 1``: a worker holds one job at a time; queued jobs stay available to
  idle workers.
- soft and hard time limits per job, derived from the recipe's budget (:mod:`registry.verifications.budget`).
- pool processes are recycled after ``VERIFIER_MAX_TASKS_PER_CHILD`` (default 200) jobs, and a new one gets
  ``VERIFIER_PROC_ALIVE_TIMEOUT_S`` (default 120 s, Celery's own is 4 s) to import torch and warm it up: on a
  busy machine a fresh process that misses the start-up timeout is killed, and the next one too.
- the sweeper goes to ``VERIFIER_SWEEP_QUEUE`` (default: the verify queue, what the local run's single
  worker consumes); production gives it its own queue, consumed by the torch-free beat container
  (``VERIFIER_WORKER_ROLE=sweeper``), so sweeps never occupy or recycle a training process.
"""

from __future__ import annotations

import logging
import os
import time

from celery import Celery, signals

from verifier.config import get_settings, gpu_count

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

_settings = get_settings()
log = logging.getLogger("verifier")


def _broker() -> tuple[str, dict[str, object]]:
    """The broker URL and transport options: the registry's settings (one source for producer and
    consumer), plus the worker-side options of the Redis transport."""
    try:
        from django.conf import settings as django_settings

        url = getattr(django_settings, "CELERY_BROKER_URL", None) or _settings.broker_url
        options = dict(getattr(django_settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    except Exception:  # no Django settings importable: a bare worker configured from the environment
        url, options = _settings.broker_url, {}
    if url.startswith(("redis://", "rediss://")):
        if _settings.broker_prefix:
            options.setdefault("global_keyprefix", _settings.broker_prefix)
        options.update(
            visibility_timeout=_settings.visibility_timeout,
            unacked_restore_interval=_settings.restore_interval,
            unacked_restore_throttle=1,
        )
    return url, options


_broker_url, _broker_options = _broker()
SWEEP_QUEUE = os.environ.get("VERIFIER_SWEEP_QUEUE") or _settings.queue
#: "sweeper": a worker that only sweeps (solo pool in the beat container): it never imports torch.
WORKER_ROLE = os.environ.get("VERIFIER_WORKER_ROLE", "trainer")

app = Celery("verifier")
app.conf.update(
    broker_url=_broker_url,
    broker_transport_options=_broker_options,
    broker_connection_retry_on_startup=True,
    # Results live in the database (Verification, VerificationRun), not in a result backend.
    task_ignore_result=True,
    task_default_queue=_settings.queue,
    # exact names first, then the pattern (celery's MapRoute)
    task_routes={"verifier.sweep_stuck_verifications": {"queue": SWEEP_QUEUE}, "verifier.*": {"queue": _settings.queue}},
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=_settings.concurrency or max(1, gpu_count()),
    worker_max_tasks_per_child=int(os.environ.get("VERIFIER_MAX_TASKS_PER_CHILD") or 200),
    worker_proc_alive_timeout=float(os.environ.get("VERIFIER_PROC_ALIVE_TIMEOUT_S") or 120),
    task_serializer="json",
    accept_content=["json"],
    include=["verifier.tasks"],
    beat_schedule={
        "sweep-stuck-verifications": {
            "task": "verifier.sweep_stuck_verifications",
            "schedule": _settings.sweep_interval_s,
        },
    },
    timezone="UTC",
)


@signals.worker_ready.connect
def _announce_device(sender: object = None, **_: object) -> None:
    gpus = gpu_count()
    if gpus:
        log.warning("verifier worker: %d GPU(s) visible, %d worker process(es), one GPU per process",
                    gpus, app.conf.worker_concurrency)
    else:
        log.warning("verifier worker: no GPU found; verifications train on the CPU (%d core(s))", os.cpu_count() or 1)


@signals.worker_process_init.connect
def _pick_device(**_: object) -> None:
    """Import torch once per pool process (not in the web process), warm it up, and say which device it
    trains on. A sweeper-only worker never imports torch."""
    if WORKER_ROLE == "sweeper":
        return
    import torch

    if torch.cuda.is_available():
        from billiard.process import current_process

        index = (getattr(current_process(), "index", 0) or 0) % torch.cuda.device_count()
        torch.cuda.set_device(index)
        log.warning("verifier pool process %d trains on cuda:%d (%s)", os.getpid(), index,
                    torch.cuda.get_device_name(index))
    else:
        threads = _settings.torch_threads or os.cpu_count() or 1
        torch.set_num_threads(threads)
        log.warning("verifier pool process %d trains on the CPU (no CUDA device) with %d thread(s)", os.getpid(),
                    torch.get_num_threads())
    _warm_up()


def _warm_up() -> None:
    """Pay torch's one-time start-up costs in the pool process's init, not in its first job."""
    try:
        from ticketclient import training
    except Exception:  # noqa: BLE001 - a broken install shows in the first job's error, with its traceback
        log.exception("verifier pool process %d: ticketclient.training cannot be imported", os.getpid())
        return
    warm_up = getattr(training, "warm_up", None)
    if warm_up is None:
        return
    started = time.monotonic()
    try:
        warm_up()
    except Exception:  # noqa: BLE001 - warming up is an optimisation; the job itself reports real errors
        log.exception("verifier pool process %d: torch warm-up failed", os.getpid())
        return
    log.warning("verifier pool process %d warmed up torch in %.1f s", os.getpid(), time.monotonic() - started)
