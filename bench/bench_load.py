"""Load on loopback: concurrent submissions and pulls against gunicorn + PostgreSQL + Redis (issue 12, item 6).

    .venv/bin/python bench/bench_load.py [--submissions 50] [--pullers 200] [--pulls-each 2] [--users 10]

Starts its own production-like stack (tests/faults/faults_stack.py: a private PostgreSQL cluster and Redis
server on free ports, gunicorn 2 processes x 4 threads with persistent connections, the Redis cache and
broker; no worker, nothing is verified), then:

1. **submissions**: ``--submissions`` distinct valid bundles POSTed at once (one thread each) by
   ``--users`` accounts; afterwards every one must exist exactly once (one ticket, one revision, three
   files) in PostgreSQL;
2. **pulls**: ``--pullers`` clients at once, each pulling ``--pulls-each`` tickets (the ticket's detail and
   its three files through the REST API, sha256 checked), against a **baseline** of one client pulling
   sequentially: the ratio is the throughput gained by concurrency.

Prints throughput, p50/p95/p99 latency and errors per phase (target: 0 errors, every submission once).
Bounded: a fixed number of requests, each with a 60 s timeout; everything it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "faults"), str(ROOT / "tests")]

import requests  # noqa: E402
from factories import default_config, make_bundle  # noqa: E402
from faults_stack import Stack  # noqa: E402

TIMEOUT_S = 60


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seconds: float, error: str | None = None) -> None:
        with self._lock:
            self.latencies.append(seconds)
            if error:
                self.errors.append(error)

    def line(self) -> str:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] * 1000 if lat else float("nan")

        rate = len(lat) / self.wall_s if self.wall_s else float("nan")
        return (f"{self.name:<28} {len(lat):>5} ops in {self.wall_s:6.2f} s = {rate:7.1f} ops/s   "
                f"p50 {pct(50):7.1f} ms  p95 {pct(95):7.1f} ms  p99 {pct(99):7.1f} ms  errors {len(self.errors)}")

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s else 0.0


def bundle(i: int):
    config = default_config("mnist1d", {"family": "mlp", "args": {"hidden": [32, 16]}}, accuracy=0.2)
    return make_bundle(config=config, seed=1000 + i)


def create_users(stack: Stack, n: int) -> list[str]:
    code = ("from django.contrib.auth import get_user_model; from registry.accounts.services import create_token\n"
            f"for i in range({n}):\n"
            "    u = get_user_model().objects.create_user(username=f'load{i}', password='correct-horse-battery')\n"
            "    print(create_token(user=u, name='load').key)")
    return stack.manage("shell", "-c", code).strip().splitlines()[-n:]


def submit_all(stack: Stack, tokens: list[str], count: int) -> tuple[Phase, list[str]]:
    phase = Phase(f"submit x{count} concurrent")
    bundles = [bundle(i) for i in range(count)]
    names = [f"load-ticket-{i:03d}" for i in range(count)]
    barrier = threading.Barrier(count)

    def one(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            r = stack.submit(tokens[i % len(tokens)], bundles[i], names[i], timeout=TIMEOUT_S)
            error = None if r.status_code == 201 else f"{names[i]}: HTTP {r.status_code} {r.text[:200]}"
        except requests.RequestException as e:
            error = f"{names[i]}: {type(e).__name__}: {e}"
        phase.record(time.perf_counter() - started, error)

    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(count)))
    phase.wall_s = time.perf_counter() - started
    return phase, names


def pull(session: requests.Session, stack: Stack, name: str) -> str | None:
    """A ticket's detail and its three files, each checked against the sha256 the API states."""
    r = session.get(stack.url(f"/api/v1/tickets/{name}/"), timeout=TIMEOUT_S)
    if r.status_code != 200:
        return f"{name}: detail HTTP {r.status_code}"
    for path in ("config.json", "init.safetensors", "mask.safetensors"):
        f = session.get(stack.url(f"/api/v1/tickets/{name}/revisions/latest/files/{path}"), timeout=TIMEOUT_S)
        if f.status_code != 200:
            return f"{name}/{path}: HTTP {f.status_code}"
        if hashlib.sha256(f.content).hexdigest() != f.headers.get("X-Checksum-Sha256"):
            return f"{name}/{path}: sha256 mismatch"
    return None


def pull_all(stack: Stack, names: list[str], clients: int, each: int, label: str) -> Phase:
    phase = Phase(label)
    barrier = threading.Barrier(clients)

    def client(c: int) -> None:
        session = requests.Session()
        barrier.wait()
        for k in range(each):
            name = names[(c * each + k) % len(names)]
            started = time.perf_counter()
            try:
                error = pull(session, stack, name)
            except requests.RequestException as e:
                error = f"{name}: {type(e).__name__}: {e}"
            phase.record(time.perf_counter() - started, error)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    phase.wall_s = time.perf_counter() - started
    return phase


def stored_once(stack: Stack, names: list[str]) -> list[str]:
    """Problems: a submission missing, stored twice, or without exactly three files."""
    rows = stack.pg.query(
        "SELECT t.name, count(DISTINCT r.id), count(f.id) FROM tickets_ticket t "
        "LEFT JOIN tickets_revision r ON r.ticket_id = t.id LEFT JOIN tickets_revisionfile f ON f.revision_id = r.id "
        "WHERE t.name LIKE 'load-ticket-%%' GROUP BY t.name")
    found = {name: (revisions, files) for name, revisions, files in rows}
    problems = [f"{n}: missing" for n in names if n not in found]
    problems += [f"{n}: {r} revisions, {f} files" for n, (r, f) in found.items() if (r, f) != (1, 3)]
    problems += [f"{n}: not submitted by this run" for n in found if n not in names]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=50)
    parser.add_argument("--pullers", type=int, default=200)
    parser.add_argument("--pulls-each", type=int, default=2)
    parser.add_argument("--baseline-pulls", type=int, default=40)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()

    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-load-")))
    try:
        print("starting PostgreSQL, Redis, gunicorn (2 x 4 threads) on loopback ...", flush=True)
        stack.start()
        stack.start_web()
        tokens = create_users(stack, args.users)

        submissions, names = submit_all(stack, tokens, args.submissions)
        problems = stored_once(stack, names)
        baseline = pull_all(stack, names, 1, args.baseline_pulls, "pull, 1 client (baseline)")
        pulls = pull_all(stack, names, args.pullers, args.pulls_each, f"pull x{args.pullers} concurrent")

        print()
        for phase in (submissions, baseline, pulls):
            print(phase.line())
        ratio = pulls.throughput / baseline.throughput if baseline.throughput else float("nan")
        print(f"\nconcurrent / baseline pull throughput: {ratio:.2f}x "
              f"(2 gunicorn processes x 4 threads on {stack_cores()} core(s))")
        print(f"submissions stored exactly once: {len(names) - len(problems)}/{len(names)}")
        for phase in (submissions, baseline, pulls):
            for error in phase.errors[:5]:
                print(f"  error ({phase.name}): {error}")
        for problem in problems[:10]:
            print(f"  stored: {problem}")
        lat = statistics.median(submissions.latencies) if submissions.latencies else 0
        print(f"median submission {lat * 1000:.0f} ms")
        failed = bool(problems or submissions.errors or baseline.errors or pulls.errors)
        return 1 if failed else 0
    finally:
        stack.stop()


def stack_cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
