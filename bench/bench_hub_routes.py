"""The Hub protocol's routes against /healthz, two checkouts side by side, interleaved (a shared box's load moves
in seconds: ratios measured in the same few seconds compare; a whole bench_catalog.py run does not).

    .venv/bin/python bench/seed_catalog.py --database lottery_hub_bench_hub          # once
    git archive <commit> | tar -x -C /tmp/before
    .venv/bin/python bench/bench_hub_routes.py --database lottery_hub_bench_hub --app-root /tmp/before [--rounds 8]

Starts one gunicorn (bench_catalog.py's settings: 2 sync workers, DEBUG off, Redis cache) per checkout (this
tree, and ``--app-root`` if given) on the same database, then for ``--rounds`` rounds, for each server in turn:
``--requests`` GETs of /healthz, then of each route. Prints per server and route the median over rounds of
req/s and of req/s / the /healthz req/s measured just before (the issue's goal: >= 0.5x for model info and
resolve), and the median p50 and p95.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_catalog import ROOT, TICKET, free_port, load, request, server_env, start_server, uptime  # noqa: E402
from seed_catalog import DEFAULT_DATABASE  # noqa: E402

ROUTES = [
    ("Hub model info", "GET", f"/api/models/{TICKET}"),
    ("resolve HEAD config.json", "HEAD", f"/{TICKET}/resolve/main/config.json"),
    ("resolve GET verification.json", "GET", f"/{TICKET}/resolve/main/verification.json"),
    ("Hub listing (100 a page)", "GET", "/api/models?filter=task:mnist1d&limit=100"),
    ("badge SVG (a one-query route, for reference)", "GET", f"/badges/{TICKET}.svg"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--app-root", help="a second checkout to serve side by side (the 'before')")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100, help="requests per route and round")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    roots = {"this tree": ROOT} | ({"--app-root": Path(args.app_root).resolve()} if args.app_root else {})
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        try:
            for label, root in roots.items():
                var_dir = Path(tmp) / label.strip("-").replace(" ", "-")
                var_dir.mkdir()
                env = server_env(args.database, str(var_dir))
                env["CACHE_KEY_PREFIX"] += f"-{var_dir.name}"  # each server its own cache entries
                subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=root, env=env,
                               check=True, capture_output=True)
                port = free_port()
                servers[label] = (start_server(port, env, args.workers, root), port)
                for _, method, path in ROUTES:  # first requests build what is kept (documents, manifests, cards)
                    request(port, method, path)
            print(f"before: {uptime()}", flush=True)
            for _ in range(args.rounds):
                for label, (_, port) in servers.items():
                    for name, method, path in ROUTES:
                        ceiling = load(port, "GET", "/healthz", args.requests, args.concurrency, 10)["rps"]
                        r = load(port, method, path, args.requests, args.concurrency, 10)
                        r["ratio"] = r["rps"] / ceiling
                        results.setdefault((label, name), []).append(r)
            print(f"after:  {uptime()}")
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
    print(f"{args.rounds} rounds x {args.requests} requests per route from {args.concurrency} threads; medians over rounds")
    print("| server | route | req/s | x /healthz | p50 | p95 |\n| --- | --- | --- | --- | --- | --- |")
    for (label, name), rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("rps", "ratio", "p50", "p95")}
        print(f"| {label} | {name} | {med['rps']:.1f} | {med['ratio']:.3f}x | {med['p50'] * 1000:.1f} ms "
              f"| {med['p95'] * 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
