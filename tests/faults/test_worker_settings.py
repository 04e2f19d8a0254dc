"""The verifier's Celery settings that keep a busy worker alive (finding 7): pool processes that import and
warm up torch get time to start, sweeps do not recycle training processes, the sweeper has its own queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def celery_conf(**env: str) -> dict:
    code = ("import json; from verifier.celery import app, WORKER_ROLE; c = app.conf; print(json.dumps({"
            "'alive': c.worker_proc_alive_timeout, 'max_tasks': c.worker_max_tasks_per_child, "
            "'routes': c.task_routes, 'role': WORKER_ROLE}))")
    full = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pool_processes_get_time_to_import_torch_and_are_rarely_recycled():
    conf = celery_conf()
    assert conf["alive"] >= 60, "Celery's 4 s default kills a pool process that imports torch on a busy box"
    assert conf["max_tasks"] >= 100


def test_the_sweeper_goes_to_its_own_queue_when_one_is_configured():
    conf = celery_conf(VERIFIER_SWEEP_QUEUE="verify-sweep")
    assert conf["routes"]["verifier.sweep_stuck_verifications"] == {"queue": "verify-sweep"}
    assert conf["routes"]["verifier.*"] == {"queue": "verify"}
    local = celery_conf()  # the local run's single worker consumes one queue: the sweep goes there too
    assert local["routes"]["verifier.sweep_stuck_verifications"] == {"queue": "verify"}


def test_a_sweeper_only_worker_never_imports_torch():
    code = ("import sys; from verifier import celery as c; c._pick_device(); import verifier.tasks, verifier.sweeper; "
            "print('torch' in sys.modules)")
    env = {**os.environ, "VERIFIER_WORKER_ROLE": "sweeper"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_pool_process_init_warms_torch_up(monkeypatch):
    from ticketclient import training

    from verifier import celery as verifier_celery

    calls = []
    monkeypatch.setattr(training, "warm_up", lambda: calls.append(1))
    verifier_celery._warm_up()
    assert calls == [1]
