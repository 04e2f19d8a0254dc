"""Find the demo tickets that ``scripts/run`` submits, with the project's own IMP, on offline tasks.

    .venv/bin/python scripts/make_demo_tickets.py            # rewrites demo/tickets/ (a few minutes on a CPU)
    .venv/bin/python scripts/make_demo_tickets.py --check    # re-finds them and compares with the committed ones

Each demo is one IMP run (:func:`ticketclient.pruning.find_ticket`, layer-wise pruning at the paper's rates:
20% of each hidden layer, 10% of the output layer per round, rewinding to iteration 0, data and init
seed 0); chosen rounds of it are saved as bundles under ``demo/tickets/<name>/``. A ticket's name carries
its density *measured from its mask*, and its claim is the test accuracy IMP measured when it trained that
round (seed 0): the verifier retrains it over several seeds and checks exactly that claim.

The recipes are small (a few thousand iterations of a small MLP) so that the local worker verifies each
ticket in well under a minute on a CPU. The output ``demo/tickets/ORDER`` is the order scripts/run submits
them in, and ``demo/tickets/README.md`` records what each one is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo" / "tickets"

#: The mnist1d/digits recipe: the LeNet paper's optimiser and batch size, a budget sized for these tasks.
SMALL_RECIPE: dict[str, Any] = {
    "optimizer": "adam", "lr": 0.0012, "momentum": 0.0, "betas": [0.9, 0.999], "weight_decay": 0.0,
    "batch_size": 60, "iterations": 2000, "warmup_iterations": 0, "lr_schedule": "constant", "milestones": [],
    "gamma": 0.1, "rewind_iteration": 0, "eval_every": 200, "augment": "none",
}


@dataclass(frozen=True)
class DemoRun:
    """One IMP run and the rounds of it that become demo tickets."""

    prefix: str  # the ticket names are f"{prefix}-{density}pct"
    task: str
    architecture: dict[str, Any]
    rounds: int
    keep_rounds: tuple[int, ...]
    recipe: dict[str, Any] = field(default_factory=lambda: dict(SMALL_RECIPE))
    rate: float = 0.2
    output_rate: float = 0.1
    seed: int = 0


DEMO_RUNS: tuple[DemoRun, ...] = (
    # LeNet-300-100 at the paper's sparsest winning point: 15 rounds (3.6% on MNIST's 784 inputs; on
    # mnist1d's 40 inputs the output layer is a larger share of the weights, so 15 rounds measure ~3.9%).
    DemoRun(prefix="lenet-mnist1d", task="mnist1d", architecture={"family": "lenet-300-100", "args": {}},
            rounds=15, keep_rounds=(15, 7, 3)),
    DemoRun(prefix="mlp-digits", task="digits", architecture={"family": "mlp", "args": {"hidden": [128, 64]}},
            rounds=10, keep_rounds=(10,)),
)


def density_label(density: float) -> str:
    """``0.0392 -> "3.9"``, ``0.211 -> "21"``: one decimal under 10%, whole percents above."""
    pct = 100.0 * density
    return f"{pct:.1f}" if pct < 10 else f"{pct:.0f}"


def make_recipe(recipe: dict[str, Any]) -> Any:
    from ticketclient import format

    from_dict = getattr(format.Recipe, "from_dict", None)
    return from_dict(recipe) if callable(from_dict) else format.Recipe(**recipe)


@dataclass(frozen=True)
class MadeTicket:
    name: str
    task: str
    family: str
    round: int
    density: float
    claimed_accuracy: float
    dense_accuracy: float
    folder: Path


def find_demo_tickets(run: DemoRun, out: Path) -> list[MadeTicket]:
    from ticketclient import format, pruning

    started = time.monotonic()
    print(f"IMP: {run.prefix} ({run.task}, {run.rounds} rounds at {run.rate:.0%}/{run.output_rate:.0%})", flush=True)
    bundles = pruning.find_ticket(
        run.task, run.architecture, make_recipe(run.recipe), rounds=run.rounds,
        strategy=pruning.Layerwise(run.rate, run.output_rate), seed=run.seed, progress=True, device="cpu",
    )
    made = []
    for k in run.keep_rounds:
        bundle = bundles[k - 1]
        density, _ = format.measure_density(bundle.mask)
        name = f"{run.prefix}-{density_label(density)}pct"
        folder = out / name
        if folder.exists():
            shutil.rmtree(folder)
        bundle.save(folder)
        config = json.loads((folder / "config.json").read_text())
        made.append(MadeTicket(
            name=name, task=run.task, family=run.architecture["family"], round=k, density=float(density),
            claimed_accuracy=float(config["claims"]["test_accuracy"]),
            dense_accuracy=float(config["provenance"]["dense_test_accuracy"]), folder=folder,
        ))
        print(f"  round {k:>2}: {name:<24} density {density:.2%}, test accuracy {made[-1].claimed_accuracy:.4f}",
              flush=True)
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return made


def write_index(out: Path, made: list[MadeTicket]) -> None:
    (out / "ORDER").write_text("".join(f"{t.name}\n" for t in made))
    lines = [
        "# Demo tickets",
        "",
        "Made by `scripts/make_demo_tickets.py` with `ticketclient.pruning.find_ticket` (IMP, layer-wise 20% hidden /",
        "10% output per round, rewind to iteration 0, seed 0); `scripts/run` submits them through the REST API in",
        "the order of `ORDER`, and the local verifier retrains each one. Claims are the test accuracy IMP measured.",
        "",
        "| ticket | task | architecture | IMP round | density (measured) | claimed test accuracy | dense net |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in made:
        lines.append(f"| {t.name} | {t.task} | {t.family} | {t.round} | {t.density:.2%} | {t.claimed_accuracy:.4f} | "
                     f"{t.dense_accuracy:.4f} |")
    (out / "README.md").write_text("\n".join(lines) + "\n")


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the bundles (default demo/tickets)")
    parser.add_argument("--check", action="store_true",
                        help="find them again in a temporary folder and compare with the committed bundles")
    args = parser.parse_args(argv)
    import torch

    # Small MLPs train fastest on one thread (and several threads on a busy machine spin against each other).
    torch.set_num_threads(1)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            made = [t for run in DEMO_RUNS for t in find_demo_tickets(run, Path(tmp))]
            committed = {t.name: digest(args.out / t.name) if (args.out / t.name).is_dir() else {} for t in made}
            differ = [f"{t.name}/{name}" for t in made for name, sha in digest(t.folder).items()
                      if committed[t.name].get(name) != sha]
        if differ:
            print(f"differ from {args.out}: {', '.join(differ)}")
            return 1
        print(f"all {len(made)} demo tickets reproduce byte for byte")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    made = [t for run in DEMO_RUNS for t in find_demo_tickets(run, args.out)]
    write_index(args.out, made)
    total = sum(p.stat().st_size for t in made for p in t.folder.iterdir())
    print(f"wrote {len(made)} tickets to {args.out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
