"""The catalog at scale: req/s and latency of every list, page and Hub route, against the trivial /healthz.

    .venv/bin/python bench/seed_catalog.py                      # once: 10,000 tickets in PostgreSQL
    .venv/bin/python bench/bench_catalog.py [--requests 200] [--concurrency 4] [--quick]
    .venv/bin/python bench/bench_catalog.py --queries           # SQL queries per route (no server)
    .venv/bin/python bench/bench_catalog.py --profile "API list"  # cProfile of routes (label contains it; all)
    .venv/bin/python bench/bench_catalog.py --split --repeat 30   # wall, CPU and SQL ms per route (no server)

Serves the seeded database (``seed_catalog.py``) with gunicorn, 2 sync workers, DEBUG off, persistent
database connections, the Redis cache, throttles out of the way, on a free loopback port; then a bounded
load client (``--concurrency`` threads, ``--requests`` requests per route after ``--warmup`` untimed ones)
requests each route in turn (bounded: a request count or a time per route) and prints req/s, p50 and p95, and req/s as a ratio of /healthz measured just before
that route (the box is shared: compare ratios, not absolute figures). ``uptime`` is printed before and after.
Stops the server it started. ``--app-root`` serves another checkout (``git archive <commit> | tar -x -C
DIR``) on the same database, for a before/after in the same conditions. Exits non-zero when a route answers anything but 200.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from seed_catalog import DEFAULT_DATABASE, database_url  # noqa: E402

TICKET = "lenet-mnist1d-3.6pct"
#: (label, method, path, goal): "p95" routes must answer within 50 ms at p95; "half" ones at >= 0.5x healthz.
ROUTES = [
    ("/healthz (ceiling)", "GET", "/healthz", ""),
    ("API list ?task=&sort=", "GET", "/api/v1/tickets/?task=mnist1d&sort=accuracy", "p95"),
    ("catalog search", "GET", "/tickets/?q=bulk-0004&sort=downloads", "p95"),
    ("leaderboard", "GET", "/tasks/mnist1d/", "p95"),
    ("catalog", "GET", "/tickets/", "p95"),
    ("filtered catalog", "GET", "/tickets/?verified=on&sort=accuracy&dmin=1&dmax=20&arch=mlp", "p95"),
    ("home", "GET", "/", "p95"),
    ("ticket page", "GET", f"/tickets/{TICKET}/", "p95"),
    ("Hub listing /api/models", "GET", "/api/models?filter=task:mnist1d&limit=100", "p95"),
    ("Hub model info", "GET", f"/api/models/{TICKET}", "half"),
    ("resolve HEAD", "HEAD", f"/{TICKET}/resolve/main/config.json", "half"),
    ("badge SVG", "GET", f"/badges/{TICKET}.svg", "half"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def server_env(database: str, var_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "registry.settings", "DJANGO_DEBUG": "0", "DATABASE_URL": database_url(database),
        "DATABASE_CONN_MAX_AGE": "600", "TICKETHUB_VAR_DIR": var_dir,
        "CACHE_URL": os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/0"),
        "CACHE_KEY_PREFIX": f"bench-catalog-{os.getpid()}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "OMP_NUM_THREADS": "1",
        **{f"TICKETHUB_THROTTLE_{k}": "100000000/min" for k in ("ANON", "USER")},
    })
    env.pop("PYTEST_VERSION", None)
    return env


def start_server(port: int, env: dict[str, str], workers: int, root: Path = ROOT) -> subprocess.Popen:
    log = open(Path(env["TICKETHUB_VAR_DIR"]) / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "registry.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--timeout", "120", "--error-logfile", "-"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited: {(Path(env['TICKETHUB_VAR_DIR']) / 'gunicorn.log').read_text()[-3000:]}")
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("gunicorn did not answer /healthz in 120 s")


def request(port: int, method: str, path: str) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, headers={"Host": "127.0.0.1"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


def load(port: int, method: str, path: str, requests: int, concurrency: int, seconds: float) -> dict[str, float]:
    """``requests`` requests from ``concurrency`` threads, or as many as start within ``seconds``; returns
    req/s, p50, p95 and the non-200 count."""
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    remaining = [requests]
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] <= 0 or time.perf_counter() > stop_at:
                    return
                remaining[0] -= 1
            status, elapsed = request(port, method, path)
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    errors.append(status)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    return {"rps": len(latencies) / wall, "p50": pct(0.5), "p95": pct(0.95), "errors": len(errors),
            "status": errors[0] if errors else 200, "n": len(latencies)}


def _row(label: str, goal: str, r: dict[str, float], ceiling: float) -> str:
    ratio = r["rps"] / ceiling
    met = {"p95": ("p95 <= 50 ms", r["p95"] <= 0.050), "half": (">= 0.5x healthz", ratio >= 0.5)}.get(goal)
    goal_text = f"{met[0]}: {'met' if met[1] else 'NOT met'}" if met else ""
    err_text = f"{r['errors']} (HTTP {r['status']})" if r["errors"] else "0"
    return (f"| {label} | {r['n']} | {r['rps']:.1f} | {ratio:.3f}x | {r['p50'] * 1000:.0f} ms "
            f"| {r['p95'] * 1000:.0f} ms | {goal_text} | {err_text} |")


def run_load(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop gunicorn on the way out (finally)
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as var_dir:
        env = server_env(args.database, var_dir)
        port = free_port()
        migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
                                  cwd=Path(args.app_root).resolve(), env=env, capture_output=True, text=True)
        if migrated.returncode != 0:
            raise SystemExit(f"migrating {args.database} failed (seed it with bench/seed_catalog.py):\n"
                             f"{migrated.stderr[-2000:]}")
        print(f"before: {uptime()}", flush=True)
        proc = start_server(port, env, args.workers, Path(args.app_root).resolve())
        print(f"gunicorn {args.workers} sync workers, DEBUG off, up to {args.requests} requests (or "
              f"{args.seconds:.0f} s) per route from {args.concurrency} threads after {args.warmup} warm-up, "
              f"database {args.database}")
        print("| route | requests | req/s | x /healthz (measured just before) | p50 | p95 | goal | errors |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
        failed = 0
        try:
            for label, method, path, goal in ROUTES:
                warm_until = time.perf_counter() + args.seconds / 2
                for _ in range(args.warmup):
                    if request(port, method, path) and time.perf_counter() > warm_until:
                        break
                # The ceiling is measured right before each route: the load of a shared box moves in seconds.
                ceiling = 0.0 if path == "/healthz" else load(
                    port, "GET", "/healthz", args.requests, args.concurrency, args.seconds / 4)["rps"]
                r = load(port, method, path, args.requests, args.concurrency, args.seconds)
                ceiling = ceiling or r["rps"]
                print(_row(label, goal, r, ceiling), flush=True)
                failed += r["errors"]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        print(f"after:  {uptime()}")
    return 1 if failed else 0


def count_queries(args: argparse.Namespace) -> int:
    """SQL queries per route on the seeded database, through Django's test client (no server)."""
    var_dir = tempfile.TemporaryDirectory(prefix="bench-catalog-")
    os.environ.update(server_env(args.database, var_dir.name))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    print("| route | queries | status |\n| --- | --- | --- |")
    for label, method, path, _goal in ROUTES:
        getattr(client, method.lower())(path)
        with CaptureQueriesContext(connection) as queries:
            response = getattr(client, method.lower())(path)
        print(f"| {label} | {len(queries)} | {response.status_code} |")
    var_dir.cleanup()
    return 0


def split_time(args: argparse.Namespace) -> int:
    """Per route, ``--repeat`` in-process requests (Django's test client, DEBUG off, no server): the median
    wall time, the web process's CPU time and the time spent in SQL (query round trips, as Django's
    CaptureQueriesContext times them). CPU time is what a shared box's load moves least."""
    import statistics

    var_dir = tempfile.TemporaryDirectory(prefix="bench-catalog-")
    os.environ.update(server_env(args.database, var_dir.name))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    print(f"{uptime()}\n| route | queries | wall ms (median) | CPU ms (median) | SQL ms (median) | wall - SQL ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, method, path, _goal in ROUTES:
        getattr(client, method.lower())(path)
        walls, cpus, sqls, n = [], [], [], 0
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                wall, cpu = time.perf_counter(), time.process_time()
                getattr(client, method.lower())(path)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            sqls.append(sum(float(q["time"]) for q in queries.captured_queries))
            n = len(queries.captured_queries)
        wall, cpu, sql = (statistics.median(v) * 1000 for v in (walls, cpus, sqls))
        print(f"| {label} | {n} | {wall:.1f} | {cpu:.1f} | {sql:.1f} | {wall - sql:.1f} |", flush=True)
    print(uptime())
    var_dir.cleanup()
    return 0


def profile(args: argparse.Namespace) -> int:
    """cProfile of ``--repeat`` in-process requests per route (Django's test client, DEBUG off): the top
    functions by cumulative time, to see where a route's time goes."""
    import cProfile
    import io
    import pstats

    var_dir = tempfile.TemporaryDirectory(prefix="bench-catalog-")
    os.environ.update(server_env(args.database, var_dir.name))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.test import Client

    client = Client()
    for label, method, path, _goal in ROUTES:
        if args.profile != "all" and args.profile not in label:
            continue
        getattr(client, method.lower())(path)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for _ in range(args.repeat):
            getattr(client, method.lower())(path)
        profiler.disable()
        per = (time.perf_counter() - start) / args.repeat
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(f"\n===== {label} {path}: {per * 1000:.1f} ms a request (profiled, {args.repeat} requests)")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-6000:])
    var_dir.cleanup()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds of load per route")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--app-root", default=str(ROOT),
                        help="the checkout gunicorn serves (e.g. an exported older commit, for a before/after)")
    parser.add_argument("--quick", action="store_true", help="60 requests per route, 3 warm-up")
    parser.add_argument("--queries", action="store_true", help="print SQL queries per route instead")
    parser.add_argument("--split", action="store_true",
                        help="in-process wall, CPU and SQL time per route (--repeat requests) instead")
    parser.add_argument("--profile", metavar="ROUTE", help="cProfile routes whose label contains ROUTE ('all')")
    parser.add_argument("--repeat", type=int, default=20, help="requests per profiled route")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profiled route")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup, args.seconds = 60, 2, 6.0
    if args.profile:
        sys.exit(profile(args))
    if args.split:
        sys.exit(split_time(args))
    sys.exit(count_queries(args) if args.queries else run_load(args))


if __name__ == "__main__":
    main()
