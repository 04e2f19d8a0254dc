"""``ticket.train()`` at 1 thread, at every core, and at the thread count the client picks from the network.

    .venv/bin/python bench/bench_threads.py [--ticket demo/tickets/lenet-mnist1d-3.9pct] [--iterations 1000]

Each setting trains the same ticket with the same seed (the same arithmetic: only the thread count differs)
in a fresh process (torch's thread pool cannot shrink reliably once grown), prints wall seconds and the ratio
to the 1-thread run measured in this same invocation, and what ``ticketclient.threads.choose_threads`` picks.
The client's rule (one thread per 200M forward multiply-adds of a training batch) is what the ratios justify:
below it, extra threads cost more in synchronisation than they gain, most of all on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = r"""
import json, sys, time, dataclasses
import torch
import ticketclient
from ticketclient import threads
folder, iterations, n = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ticket = ticketclient.Ticket.from_folder(folder)
recipe = dataclasses.replace(ticket.recipe, iterations=iterations, eval_every=iterations)
model = ticket.model()
macs = threads.batch_macs(model, recipe, ticket.arch)
chosen = threads.choose_threads(macs)
use = chosen if n == "auto" else int(n)
started = time.perf_counter()
ticket.train(recipe=recipe, seed=0, progress=False, threads=use)
print(json.dumps({"threads": use, "chosen": chosen, "batch_macs": macs, "wall_s": time.perf_counter() - started}))
"""


def measure(folder: str, iterations: int, setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "TICKETHUB_TORCH_THREADS")}
    out = subprocess.run([sys.executable, "-c", CHILD, folder, str(iterations), setting], env=env, check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticket", default=str(ROOT / "demo/tickets/lenet-mnist1d-3.9pct"))
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    settings = ["1", str(cores), "auto"] if cores > 1 else ["1", "auto"]
    rows = {s: min((measure(args.ticket, args.iterations, s) for _ in range(args.repeats)),
                   key=lambda r: r["wall_s"]) for s in settings}
    base = rows["1"]["wall_s"]
    print(f"ticket.train() of {Path(args.ticket).name}, {args.iterations} iterations, {cores} cores, "
          f"batch forward {rows['auto']['batch_macs']:,} multiply-adds; `uptime`: {os.getloadavg()[0]:.2f}")
    print("| threads | wall s | vs 1 thread |\n| --- | --- | --- |")
    for s, r in rows.items():
        label = f"auto ({r['threads']})" if s == "auto" else s
        print(f"| {label} | {r['wall_s']:.2f} | {r['wall_s'] / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
