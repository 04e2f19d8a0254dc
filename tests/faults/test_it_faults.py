"""Faults on a production-like stack, each caused for real and measured (issue 12, build item 5).

The stack (tests/faults/faults_stack.py): a private PostgreSQL cluster and Redis server on their own ports,
gunicorn 2x4 threads with persistent database connections, one verifier worker, the torch-free sweeper
(beat embedded, every 5 s), a 15 s heartbeat stale threshold and an hour of visibility timeout, so that only
the heartbeat and the sweeper can bring a lost job back. Targets: 0 submissions lost, 0 duplicate runs, a
killed worker's job running again within 2 minutes, 0 revisions left queued or verifying after the sweep, 0
5xx once a restarted service is back. Each test prints its recovery time (``-s`` shows them; they are also
in the report's summary line via ``record_property``).

The tests run in order on one stack; tickets are tiny (an MLP on mnist1d, 2 seeds, a few hundred iterations).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from factories import default_config, make_bundle
from faults_stack import Stack, wait_until

pytestmark = [pytest.mark.timeout(420)]

FINISHED = ("verified", "rejected")
#: runs of one verification with VERIFIER_SEEDS=2: supermask + (ticket, dense, reinit, random_mask) x 2
RUNS = 9


def tiny_bundle(seed: int, iterations: int = 200):
    config = default_config("mnist1d", {"family": "mlp", "args": {"hidden": [32, 16]}}, accuracy=0.2)
    config["recipe"].update(iterations=iterations, eval_every=100)
    return make_bundle(config=config, seed=seed)


def report(record_property, what: str, seconds: float, **extra) -> None:
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"\n[fault] {what}: recovered in {seconds:.1f} s {details}".rstrip())
    record_property(f"{what}_recovery_s", round(seconds, 1))
    for key, value in extra.items():
        record_property(key, value)


def verification(stack: Stack, name: str) -> dict | None:
    rows = stack.pg.query(
        "SELECT v.id, v.status, v.worker, v.attempts, v.runs_done, v.error_code, v.error_detail, r.status "
        "FROM verifications_verification v JOIN tickets_revision r ON r.id = v.revision_id "
        "JOIN tickets_ticket t ON t.id = r.ticket_id WHERE t.name = %s AND v.kind = 'own'", name)
    if not rows:
        return None
    keys = ("id", "status", "worker", "attempts", "runs_done", "error_code", "error_detail", "revision_status")
    return dict(zip(keys, rows[0], strict=True))


def run_count(stack: Stack, verification_id: int) -> int:
    return stack.pg.query("SELECT count(*) FROM verifications_verificationrun WHERE verification_id = %s",
                          verification_id)[0][0]


def wait_finished(stack: Stack, names: list[str], timeout: float) -> float:
    started = time.monotonic()

    def done() -> bool:
        for w in stack.workers:
            if not w.alive() and w.proc.returncode not in (0, -9, -15):
                raise AssertionError(f"worker exited {w.proc.returncode}:\n{w.log[-3000:]}")
        states = [verification(stack, n) for n in names]
        return all(s and s["status"] in FINISHED for s in states)

    try:
        wait_until(done, timeout, f"{names} to finish", interval=0.5)
    except AssertionError:
        states = {n: verification(stack, n) for n in names}
        logs = "\n".join(w.log[-2500:] for w in stack.workers[-1:]) + (stack.sweeper.log[-1500:] if stack.sweeper else "")
        raise AssertionError(f"not finished: {states}\n{logs}") from None
    return time.monotonic() - started


def assert_nothing_stuck(stack: Stack, names: list[str]) -> None:
    """Every submission exists once, with one finished verification, complete and without duplicate runs."""
    statuses = stack.statuses()
    for name in names:
        assert name in statuses, f"submission {name} was lost"
        v = verification(stack, name)
        assert v["status"] in FINISHED, v
        assert run_count(stack, v["id"]) == RUNS
    assert stack.duplicate_runs() == 0
    stuck = [n for n, (rev, ver) in statuses.items() if rev in ("verifying",) or ver in ("queued", "running")]
    assert stuck == [], f"left queued/verifying: {stuck}"


def stop_workers(stack: Stack) -> None:
    for w in stack.workers:
        w.stop()
    stack.workers.clear()


class Prober:
    """Requests in a loop from a thread, recording (start time, path, status or 599 for no answer)."""

    def __init__(self, stack: Stack, paths: list[str], interval: float = 0.05) -> None:
        self.stack, self.paths, self.interval = stack, paths, interval
        self.results: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        session = requests.Session()
        i = 0
        while not self._stop.is_set():
            path = self.paths[i % len(self.paths)]
            i += 1
            started = time.monotonic()
            try:
                code = session.get(self.stack.url(path), timeout=10).status_code
            except requests.RequestException:
                code = 599
                session = requests.Session()
            self.results.append((started, path, code))
            time.sleep(self.interval)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


# --- the faults -------------------------------------------------------------------------------------------


def test_sigkilled_worker_job_runs_again_within_two_minutes(stack, token, record_property):
    name = "fault-sigkill"
    worker = stack.start_worker(VERIFIER_STACKED="0")  # sequential: runs finish one by one
    assert stack.submit(token, tiny_bundle(1, iterations=2500), name).status_code == 201

    def mid_run():
        v = verification(stack, name)
        return v if v and v["status"] == "running" and 2 <= v["runs_done"] < RUNS - 1 else None

    before = wait_until(mid_run, 240, "the verification to be mid-run")
    done_before = run_count(stack, before["id"])
    killed_at = time.monotonic()
    worker.kill()
    stack.workers.remove(worker)
    stack.start_worker(VERIFIER_STACKED="0")

    def taken_over():
        v = verification(stack, name)
        return v if v["status"] in FINISHED or (v["worker"] != before["worker"] and v["status"] == "running") else None

    after = wait_until(taken_over, 150, "another worker to take the job over")
    recovery = time.monotonic() - killed_at
    wait_finished(stack, [name], 240)
    final = verification(stack, name)
    report(record_property, "sigkill_worker", recovery, runs_kept=done_before, attempts=final["attempts"])
    assert recovery < 120, f"the killed worker's job ran again only after {recovery:.0f} s"
    assert final["attempts"] == 2 and after["worker"] != before["worker"]
    assert_nothing_stuck(stack, [name])


def test_sigkilled_pool_process_job_runs_again_within_two_minutes(stack, token, record_property):
    """Only the training process dies (out of memory, say): the worker's main process requeues the message
    at once and a fresh pool process takes the job over once the dead one's heartbeat is stale."""
    import os
    import signal

    name = "fault-sigkill-pool"
    worker = stack.workers[-1]
    assert stack.submit(token, tiny_bundle(2, iterations=2500), name).status_code == 201

    def mid_run():
        v = verification(stack, name)
        return v if v and v["status"] == "running" and 2 <= v["runs_done"] < RUNS - 1 else None

    before = wait_until(mid_run, 240, "the verification to be mid-run")
    pool_pid = int(before["worker"].rsplit(":", 1)[1])
    killed_at = time.monotonic()
    os.kill(pool_pid, signal.SIGKILL)

    def taken_over():
        v = verification(stack, name)
        return v if v["status"] in FINISHED or (v["worker"] != before["worker"] and v["status"] == "running") else None

    wait_until(taken_over, 150, "a new pool process to take the job over")
    recovery = time.monotonic() - killed_at
    wait_finished(stack, [name], 240)
    final = verification(stack, name)
    report(record_property, "sigkill_pool_process", recovery, attempts=final["attempts"])
    assert recovery < 120 and worker.alive()
    assert_nothing_stuck(stack, [name])


def test_redis_restarted_while_jobs_are_queued_loses_nothing(stack, token, record_property):
    stop_workers(stack)
    names = [f"fault-redis-queued-{i}" for i in range(3)]
    for i, name in enumerate(names):
        assert stack.submit(token, tiny_bundle(10 + i), name).status_code == 201
    import redis

    assert redis.Redis.from_url(f"{stack.redis.url}/0").llen("verify") >= len(names)  # queued, not yet taken
    restarted_at = time.monotonic()
    stack.redis.restart()  # SIGKILL, then started again with nothing: every queued message is gone
    assert redis.Redis.from_url(f"{stack.redis.url}/0").llen("verify") == 0
    stack.start_worker()
    wait_finished(stack, names, 240)
    recovery = time.monotonic() - restarted_at
    report(record_property, "redis_restart_queued", recovery, lost=0)
    assert_nothing_stuck(stack, names)
    assert stack.sweep_once() == []  # one more sweep finds nothing left to do


def test_redis_down_while_users_browse_and_submit(stack, token, record_property):
    existing = "fault-redis-queued-0"
    paths = ["/healthz", "/api/v1/tickets/", f"/api/v1/tickets/{existing}/", "/tickets/", f"/tickets/{existing}/"]
    names = [f"fault-redis-down-{i}" for i in range(3)]
    stack.redis.stop()
    down_at = time.monotonic()
    codes: list[tuple[str, int]] = []
    with Prober(stack, paths) as prober:
        health = requests.get(stack.url("/healthz"), timeout=5)
        for i, name in enumerate(names):
            r = stack.submit(token, tiny_bundle(20 + i), name)
            codes.append((f"submit {name}", r.status_code))
            assert r.status_code == 201, r.text
        time.sleep(3)
    codes += [(path, code) for _, path, code in prober.results]
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["status"] == "degraded" and body["database"] == "ok", body
    assert body["broker"].startswith("unavailable") and body["cache"].startswith("unavailable"), body
    errors = [(p, c) for p, c in codes if c >= 500]
    assert errors == [], f"{len(errors)} of {len(codes)} requests failed while Redis was down: {errors[:10]}"
    statuses = stack.statuses()
    assert all(statuses[n][0] == "pending" for n in names)  # kept in PostgreSQL, not enqueued yet

    stack.redis.start()
    back_at = time.monotonic()
    wait_finished(stack, names, 240)
    recovery = time.monotonic() - back_at
    report(record_property, "redis_down_browse_submit", recovery, requests=len(codes), errors=len(errors),
           outage_s=f"{back_at - down_at:.1f}")
    assert requests.get(stack.url("/healthz"), timeout=5).json()["status"] == "ok"
    assert_nothing_stuck(stack, names)


def test_postgres_restarted_while_the_web_serves_and_a_worker_writes(stack, token, record_property):
    name = "fault-postgres"
    paths = ["/healthz", "/api/v1/tickets/", "/api/v1/tickets/fault-sigkill/", "/tickets/fault-sigkill/"]
    assert stack.submit(token, tiny_bundle(30, iterations=1500), name).status_code == 201
    wait_until(lambda: (v := verification(stack, name)) and v["status"] == "running", 120, "the job to run")
    with Prober(stack, paths) as prober:
        time.sleep(1)
        restart_at = time.monotonic()
        stack.pg.restart()
        back_at = time.monotonic()
        time.sleep(6)
    after = [(t, p, c) for t, p, c in prober.results if t >= back_at]
    errors_after = [(p, c) for _, p, c in after if c >= 500]
    first_ok = min((t for t, _, c in after if c == 200), default=None)
    wait_finished(stack, [name], 240)
    report(record_property, "postgres_restart", (first_ok or back_at) - restart_at,
           restart_s=f"{back_at - restart_at:.1f}", requests_after=len(after), errors_after=len(errors_after))
    assert after and first_ok is not None
    assert errors_after == [], f"5xx after PostgreSQL was back: {errors_after[:10]}"
    assert_nothing_stuck(stack, [name])


def test_storage_failing_during_an_upload_and_a_worker_read(stack, token, record_property):
    blobs = Path(stack.media) / "blobs"
    away = Path(stack.media) / "blobs.away"
    name = "fault-storage-upload"
    blobs.rename(away)
    blobs.write_text("not a folder: the store cannot write here")
    try:
        r = stack.submit(token, tiny_bundle(40), name)
    finally:
        blobs.unlink()
        away.rename(blobs)
    assert r.status_code == 503 and r.json()["error"] == "storage_unavailable", r.text
    assert name not in stack.statuses()  # nothing kept from the failed upload
    assert stack.submit(token, tiny_bundle(40), name).status_code == 201

    stop_workers(stack)
    read_name = "fault-storage-read"
    assert stack.submit(token, tiny_bundle(41), read_name).status_code == 201
    blobs.rename(away)
    try:
        worker = stack.start_worker()
        wait_until(lambda: "BlobUnavailable" in worker.log, 120, "the worker's read to fail")
    finally:
        away.rename(blobs)
    restored_at = time.monotonic()
    wait_finished(stack, [name, read_name], 240)
    recovery = time.monotonic() - restored_at
    report(record_property, "storage_read", recovery, upload="503 then 201")
    assert verification(stack, read_name)["status"] in FINISHED
    assert_nothing_stuck(stack, [name, read_name])


# --- failing verifications (finding 6) and diverging training (finding 7) ----------------------------------


def test_a_deterministic_failure_ends_as_failed_once_and_is_not_retried(stack, token, tmp_path):
    stop_workers(stack)
    name = "fault-deterministic"
    assert stack.submit(token, tiny_bundle(50), name).status_code == 201
    not_a_folder = tmp_path / "datasets"
    not_a_folder.write_text("the data folder is a file: loading the data set fails the same way every time")
    worker = stack.start_worker(TICKETHUB_DATA=str(not_a_folder))
    v = wait_until(lambda: (v := verification(stack, name)) and v["status"] == "failed" and v, 180,
                   "the verification to fail")
    assert v["attempts"] == 1 and v["error_code"] == "internal_error"
    assert "Traceback" in v["error_detail"] and "datasets" in v["error_detail"]
    reason = stack.pg.query("SELECT reason FROM verifications_verification WHERE id = %s", v["id"])[0][0]
    assert "not a problem with your ticket" in reason and "Traceback" not in reason
    assert v["revision_status"] == "pending"  # neither published nor rejected; an operator may requeue it
    time.sleep(12)  # two sweeps: a failed verification is finished, nothing sends it again
    again = verification(stack, name)
    assert again["status"] == "failed" and again["attempts"] == 1
    assert worker.log.count(f"verification {v['id']} (revision") == 1
    stop_workers(stack)


def test_a_bundle_that_trains_to_inf_is_recorded_with_nulls_not_left_verifying(stack, token):
    import json

    import numpy as np
    from ticketclient import format as tformat

    base = tiny_bundle(60)
    parsed = tformat.TicketBundle.from_bytes(config=base.config, init=base.init, mask=base.mask)
    first = next(k for k, a in parsed.init.items() if a.ndim == 2)
    parsed.init[first] = np.full_like(parsed.init[first], 1e38)
    config, init, mask = parsed.to_bytes()
    huge = type(base)(config=config, init=init, mask=mask)
    name = "fault-diverges"
    r = stack.submit(token, huge, name)
    assert r.status_code == 201, r.text  # finite values: a valid bundle
    stack.start_worker()
    wait_finished(stack, [name], 180)
    v = verification(stack, name)
    curves = [json.loads(c) if isinstance(c, str) else c for (c,) in stack.pg.query(
        "SELECT curve FROM verifications_verificationrun WHERE verification_id = %s AND role = 'ticket'", v["id"])]
    assert curves and any(point.get("val_loss") is None for curve in curves for point in curve), curves[0][:2]
    api = requests.get(stack.url(f"/api/v1/tickets/{name}/revisions/latest/verification/"), timeout=10)
    assert api.status_code == 200, api.text[:500]


def test_128_concurrent_identical_uploads_all_succeed(stack, token, record_property):
    from concurrent.futures import ThreadPoolExecutor

    stop_workers(stack)  # last test: the 128 verifications are not run
    same = tiny_bundle(70)
    barrier = threading.Barrier(128)

    def upload(i: int) -> int:
        barrier.wait()
        try:
            return stack.submit(token, same, f"fault-same-bytes-{i:03d}", timeout=120).status_code
        except requests.RequestException:
            return 599

    started = time.monotonic()
    with ThreadPoolExecutor(128) as pool:
        codes = list(pool.map(upload, range(128)))
    print(f"\n[fault] 128 concurrent identical uploads in {time.monotonic() - started:.1f} s: "
          f"{codes.count(201)} x 201, {len(codes) - codes.count(201)} errors")
    record_property("identical_uploads_errors", len(codes) - codes.count(201))
    assert codes == [201] * 128, sorted(set(codes))
    files = stack.pg.query("SELECT count(DISTINCT sha256), count(*) FROM tickets_revisionfile f JOIN tickets_revision r "
                           "ON r.id = f.revision_id JOIN tickets_ticket t ON t.id = r.ticket_id "
                           "WHERE t.name LIKE 'fault-same-bytes-%%'")[0]
    assert files == (3, 384)
