"""Run every benchmark of bench/ in turn and print one table of the ratios each measured in this run.

    bench/run [--full] [--only NAME,NAME] [--skip NAME] [--log-dir DIR]

Each benchmark prints its figures beside a baseline measured in the same run (a ratio is meaningful on a
shared machine; an absolute time is not). This runner starts them one after the other (``OMP_NUM_THREADS=1``),
in their quick mode unless ``--full``, keeps each one's whole output in ``--log-dir`` and prints, per
benchmark, its command, exit status, wall time and every line of its output that states a ratio (``1.23x``).
``uptime`` is printed before and after. The catalog benchmark seeds its PostgreSQL database first when it is
missing. Exits non-zero when a benchmark failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
RATIO = re.compile(r"\b\d+(?:\.\d+)?x\b")


@dataclass(frozen=True)
class Bench:
    name: str
    what: str
    quick: list[str]
    full: list[str]


BENCHES = [
    Bench("verification", "verification job: engine vs plain loop vs FLOP floor (bench_verification.py)",
          ["bench/bench_verification.py", "--quick"], ["bench/bench_verification.py"]),
    Bench("training", "masked training loop vs a plain DataLoader loop (bench_training.py)",
          ["bench/bench_training.py", "--iterations", "1000", "--repeats", "2"], ["bench/bench_training.py"]),
    Bench("pull", "cold/warm/pinned/offline pull vs snapshot_download and plain GETs (bench_pull_requests.py)",
          ["bench/bench_pull_requests.py", "--repeats", "2"], ["bench/bench_pull_requests.py"]),
    Bench("load", "concurrent submissions and pulls on gunicorn + PostgreSQL + Redis (bench_load.py)",
          ["bench/bench_load.py", "--submissions", "10", "--pullers", "20", "--pulls-each", "1",
           "--baseline-pulls", "10", "--users", "3"], ["bench/bench_load.py"]),
    Bench("catalog", "the catalog at 10,000 tickets: every route vs /healthz (bench_catalog.py)",
          ["bench/bench_catalog.py", "--quick"], ["bench/bench_catalog.py"]),
    Bench("bytes", "ticket bytes vs a dense fp32 checkpoint (bench_ticket_bytes.py)",
          ["bench/bench_ticket_bytes.py"], ["bench/bench_ticket_bytes.py"]),
    Bench("threads", "ticket.train() at 1 thread, every core, and the client's choice (bench_threads.py)",
          ["bench/bench_threads.py", "--iterations", "300"], ["bench/bench_threads.py"]),
    Bench("queue", "tickets per worker-hour at queue depths: one job per ticket vs stacked (bench_queue.py)",
          ["bench/bench_queue.py", "--depths", "1,4", "--iterations", "200"], ["bench/bench_queue.py"]),
]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def catalog_database_ready() -> bool:
    sys.path.insert(0, str(ROOT / "bench"))
    from seed_catalog import DEFAULT_DATABASE, database_url

    try:
        import psycopg

        with psycopg.connect(database_url(DEFAULT_DATABASE), connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM tickets_ticket").fetchone()[0] >= 10_000
    except Exception:  # noqa: BLE001 - missing database or table: seed it
        return False


def _flat(line: str) -> str:
    """A line fit for one table cell: a markdown row's cells joined with " · ", whitespace runs squeezed."""
    line = line.strip()
    if line.startswith("|"):
        line = " · ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
    return " ".join(line.split())


def run(bench: Bench, argv: list[str], log: Path, env: dict[str, str]) -> tuple[int, float, list[str]]:
    start = time.perf_counter()
    with log.open("w") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        rc = subprocess.run([PY, *argv], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    lines = [line.rstrip() for line in log.read_text(errors="replace").splitlines()[1:]]
    ratios = [_flat(line) for line in lines if RATIO.search(line) and len(line) < 300]
    if rc != 0 and not ratios:
        ratios = [line.strip() for line in lines[-3:]]
    return rc, wall, ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="each benchmark at its default size")
    parser.add_argument("--only", default="", help=f"comma-separated names: {', '.join(b.name for b in BENCHES)}")
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    parser.add_argument("--log-dir", default=None, help="where each benchmark's output goes (default: a temp dir)")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    unknown = (only | skip) - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark {sorted(unknown)[0]!r}")
    chosen = [b for b in BENCHES if (not only or b.name in only) and b.name not in skip]
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="bench-run-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    print(f"before: {uptime()}\nlogs: {log_dir}", flush=True)
    results = []
    for bench in chosen:
        argv = bench.full if args.full else bench.quick
        if bench.name == "catalog" and not catalog_database_ready():
            print("seeding the catalog database (10,000 tickets) ...", flush=True)
            seeded = run(bench, ["bench/seed_catalog.py"], log_dir / "seed_catalog.log", env)
            if seeded[0] != 0:
                results.append((bench, ["bench/seed_catalog.py"], *seeded))
                continue
        print(f"running {bench.name}: {' '.join(argv)}", flush=True)
        results.append((bench, argv, *run(bench, argv, log_dir / f"{bench.name}.log", env)))
    print(f"after:  {uptime()}\n")
    print("| benchmark | command | status | wall | ratios measured in this run |")
    print("| --- | --- | --- | --- | --- |")
    for bench, argv, rc, wall, ratios in results:
        first, *rest = ratios or ["(no ratio printed)"]
        status = "ok" if rc == 0 else f"exit {rc}"
        print(f"| {bench.name} | `{' '.join(argv)}` | {status} | {wall:.0f} s | {first} |")
        for line in rest:
            print(f"| | | | | {line} |")
    return 0 if all(rc == 0 for _b, _a, rc, _w, _r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
