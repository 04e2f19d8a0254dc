"""The ``ticket`` command: pull, info, list/search, find, submit, status, withdraw, login, whoami (and compact).

    ticket pull lenet-mnist-3.6pct                  # or: ticket pull --task mnist1d --max-density 0.05
    ticket info lenet-mnist-3.6pct --json
    ticket list --task mnist1d --winning            # ticket search lenet
    ticket find --task mnist1d --rounds 5 --out runs/mnist1d
    ticket submit runs/mnist1d/round-5 --name mlp-mnist1d-33pct --wait   # exit 1 if verification rejects it
    ticket status mlp-mnist1d-33pct
    ticket login                                     # reads the token from stdin, checks it, stores it
    ticket whoami; ticket withdraw mlp-mnist1d-33pct --reason "duplicate"

Every command takes ``--endpoint`` and ``--token`` (default: ``TICKETHUB_ENDPOINT``, ``TICKETHUB_TOKEN`` or the
stored token). Options are checked before any work. Exit status: 0 success, 1 verification rejected
(``submit --wait``), 2 any other error (a bad option, a ticket not found, a verification the hub could not
finish).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ticketclient
from ticketclient import __version__, api, constants, data, spec, tasks
from ticketclient.bundle import measure_density
from ticketclient.errors import RecipeRequiredError, TicketError, TicketNotFoundError
from ticketclient.recipe import Recipe
from ticketclient.reproduce import reproduce

if TYPE_CHECKING:  # pragma: no cover
    from ticketclient.pruning import Strategy
    from ticketclient.ticket import Ticket

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2


def _int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _fraction(*, zero: bool = False) -> Any:
    """A fraction in (0, 1) (or [0, 1) with ``zero``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        low_ok = value >= 0 if zero else value > 0
        if not (low_ok and value < 1):
            interval = "[0, 1)" if zero else "(0, 1)"
            raise argparse.ArgumentTypeError(f"must be a fraction in {interval} (0.2 prunes 20% of the remaining "
                                             f"weights per round), got {text}")
        return value

    return parse


def _density(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a density in (0, 1] (0.05 = 5% of the weights), got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    """A JSON object given inline or as @file / a path to a .json file."""
    source = text
    path = Path(text[1:] if text.startswith("@") else text)
    if text.startswith("@") or (text.endswith(".json") and path.is_file()):
        try:
            source = path.read_text()
        except OSError as err:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {err.strerror}") from None
    try:
        value = json.loads(source)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _find_epilog() -> str:
    """Every task with its default architecture, recipe, pruning and an estimate of the run time."""
    lines = ["known tasks (defaults used when --family/--arch/--iterations/--rate are not given):"]
    for info in tasks.all():
        recipe = ticketclient.default_recipe(info.name)
        family = spec.FAMILIES[info.default_family]
        pruning = family.default_pruning
        rates = ", ".join(f"{k} {v:g}" for k, v in sorted((pruning.get("rates") or {}).items()))
        lines.append(f"  {info.name:<14} {info.default_family}"
                     + (f" {dict(info.default_args)}" if info.default_args else "")
                     + f"; {recipe.optimizer} lr {recipe.lr:g}, {recipe.iterations:,} iterations x batch "
                       f"{recipe.batch_size} per round; {pruning.get('strategy')} pruning ({rates}); "
                     + _estimate(info, recipe))
    lines.append("a run is (rounds + 1) trainings (the dense one, then one per round); the estimate is one training on one "
                 "CPU thread of a laptop (more threads help large networks; a GPU far more) and varies with the load")
    return "\n".join(lines)


def _estimate(info: tasks.TaskInfo, recipe: Recipe) -> str:
    try:
        arch = spec.resolve(spec.default_architecture(info.default_family, info.default_args),
                            input_shape=tuple(info.input_shape), num_classes=int(info.num_classes))
    except Exception:  # noqa: BLE001 - an estimate only
        return "time unknown"
    # forward + backward ~ 3x the forward multiply-adds at ~12 GMAC/s on one thread, plus ~2 ms a step of
    # fixed cost (measured on one thread of a loaded 2-core box: mnist1d's MLP 2.4 ms a step, conv-2 on
    # CIFAR-10 563 ms a step)
    seconds = recipe.iterations * (3 * arch.forward_macs * recipe.batch_size / 12e9 + 0.002)
    return f"about {_duration(seconds)} a training"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", help="registry URL (default: $TICKETHUB_ENDPOINT)")
    p.add_argument("--token", help="registry token (default: $TICKETHUB_TOKEN or the one `ticket login` stored)")


def _cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", help="huggingface_hub-layout cache (default: $TICKETHUB_CACHE)")
    p.add_argument("--offline", action="store_true", default=None, help="use the cache only; no request")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticket", description="Pull, find and submit lottery tickets.")
    parser.add_argument("--version", action="version", version=f"ticketclient {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pull", help="download a ticket (by name, or the best one for a task) into the cache")
    p.add_argument("name", nargs="?", help="ticket name, e.g. lenet-mnist-3.6pct")
    p.add_argument("--revision", help="a 40-hex commit id (default: the latest verified revision)")
    p.add_argument("--task", help="pick the best winning ticket of this task instead of a name")
    p.add_argument("--max-density", type=_density, help="with --task: the largest density accepted")
    p.add_argument("--any", dest="winning", action="store_const", const=None, default=True,
                   help="with --task: pick among every published ticket, winning or not")
    p.add_argument("--include-unpublished", action="store_true", help="also your pending/rejected revisions")
    p.add_argument("--out", type=Path, help="also write the bundle (config, init, mask) to this folder")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    _common(p)
    _cache(p)

    p = sub.add_parser("info", help="describe a ticket: architecture, density, verification")
    p.add_argument("name")
    p.add_argument("--revision")
    p.add_argument("--include-unpublished", action="store_true")
    p.add_argument("--json", action="store_true")
    _common(p)
    _cache(p)

    p = sub.add_parser(
        "find", help="run iterative magnitude pruning on a task and write one bundle per round",
        description="Iterative magnitude pruning (train, prune the smallest weights, rewind, repeat): one ticket "
                    "bundle per round in OUT/round-K. Every option is checked before any training.",
        epilog=_find_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="the task (see the list below)")
    p.add_argument("--family", help="architecture family (default: the task's default, below)")
    p.add_argument("--arch", type=_json_object,
                   help="architecture as JSON or @file.json ({\"family\": ..., \"args\": ...} or {\"layers\": [...]}; "
                        "a layer list needs --recipe)")
    p.add_argument("--recipe", type=_json_object,
                   help="training recipe as JSON or @file.json (format.Recipe fields; default: the task's, below)")
    p.add_argument("--rounds", type=_int_at_least(1), default=5,
                   help="pruning rounds (default: 5; round K keeps about (1 - rate)^K of the weights)")
    p.add_argument("--rate", type=_fraction(),
                   help="fraction of the remaining weights pruned per round (default: the family's, below)")
    p.add_argument("--output-rate", type=_fraction(zero=True),
                   help="rate for the output layer (default: the family's, below)")
    p.add_argument("--iterations", type=_int_at_least(1),
                   help="training iterations per round (default: the task's recipe, below)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="init and data-order seed (default: 0)")
    p.add_argument("--claim-runs", type=_int_at_least(1), default=3,
                   help="each round's claim is the median test accuracy of this many trainings of its ticket "
                        "(default: 3; the verifier's tolerance is tighter for more runs, never looser)")
    p.add_argument("--threads", type=_int_at_least(1),
                   help="torch CPU threads (default: $TICKETHUB_TORCH_THREADS, else chosen from the network's size)")
    p.add_argument("--out", type=Path, required=True, help="folder for the round-K bundles")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _data_dir(p)

    p = sub.add_parser("submit", help="submit a bundle folder for verification")
    p.add_argument("path", type=Path)
    p.add_argument("--name", help="ticket name (default: the \"name\" in config.json)")
    p.add_argument("--message", default="")
    p.add_argument("--wait", action="store_true", help="follow the verification; exit 1 if it is rejected")
    p.add_argument("--timeout", type=_positive_float, default=3600.0, help="seconds to wait at most (with --wait)")
    _common(p)

    p = sub.add_parser("status", help="verification status of a ticket's revision")
    p.add_argument("name")
    p.add_argument("--revision", help="commit id (default: latest)")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("login", help="check a registry token and store it")
    p.add_argument("--token", help="the token (default: read from stdin)")
    p.add_argument("--endpoint")

    p = sub.add_parser("whoami", help="the account your token belongs to")
    p.add_argument("--json", action="store_true")
    _common(p)

    for command, helptext in (("list", "list tickets in the catalog (filters below)"),
                              ("search", "search tickets by name, architecture, task or owner")):
        p = sub.add_parser(command, help=helptext)
        if command == "search":
            p.add_argument("query", help="words to search for")
        p.add_argument("--task")
        p.add_argument("--architecture", help="architecture family, e.g. lenet-300-100")
        p.add_argument("--owner")
        p.add_argument("--max-density", type=_density)
        p.add_argument("--status", help="comma-separated: pending, verifying, verified, rejected, withdrawn")
        p.add_argument("--winning", action="store_const", const=True, default=None,
                       help="only winning tickets")
        p.add_argument("--sort", default="accuracy", choices=["accuracy", "density", "newest", "downloads"])
        p.add_argument("--limit", type=_int_at_least(1), default=50, help="at most this many (default: 50)")
        p.add_argument("--json", action="store_true")
        _common(p)

    p = sub.add_parser("withdraw", help="withdraw your ticket (it stops being served)")
    p.add_argument("name")
    p.add_argument("--reason", default="", help="shown on the ticket's page")
    _common(p)

    _data_parser(sub)

    p = sub.add_parser("reproduce", help="retrain one recorded verification run locally with its published seeds",
                       description="Retrain run K of a finished verification with the seeds the verifier drew "
                                   "and published, and print the recorded and the local final test accuracy "
                                   "side by side.")
    p.add_argument("name")
    p.add_argument("--run", type=int, default=0, help="the run index K within the role (default 0)")
    p.add_argument("--role", default="ticket", choices=["ticket", "dense", "reinit", "random_mask", "supermask"],
                   help="which role's run (default: ticket)")
    p.add_argument("--revision", help="commit id (default: latest)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("compact", help="report how much smaller a ticket's dense equivalent is")
    p.add_argument("name")
    p.add_argument("--revision")
    _common(p)
    _cache(p)
    return parser


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="dataset folder, one subfolder per task (default: $TICKETHUB_DATA "
                                                 "or ~/.cache/tickethub/datasets)")


def _data_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("data", help="datasets: list where they are, download, verify by hash",
                       description="Datasets: where each task's files are, whether they are there and match the "
                                   "published sizes and hashes; download or verify them.")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("list", help="every task: folder, files, cached or not, sizes")
    q.add_argument("--json", action="store_true")
    _data_dir(q)
    q = data_sub.add_parser("download", help="fetch a task's missing files (checked by hash) into the data dir")
    q.add_argument("task")
    q.add_argument("--base-url", help="fetch the files from BASE_URL/<file> instead of the public mirrors")
    _data_dir(q)
    q = data_sub.add_parser("verify", help="rehash a task's files against the published sizes and hashes")
    q.add_argument("task", nargs="?", help="default: every task")
    q.add_argument("--json", action="store_true")
    _data_dir(q)


def _print_data_status(st: data.DatasetStatus) -> None:
    state = "ready" if st.ready else ("downloads on first use" if st.downloadable else "generated on first use")
    print(f"{st.task}: {state}, {st.size / 1e6:.1f} MB in {st.folder}")
    print(f"  source: {st.source}")
    for f in st.files:
        size = f"{f.size:,}" if f.size is not None else "-"
        want = f" of {f.expected_size:,}" if f.expected_size and f.size != f.expected_size else ""
        print(f"  {f.state:<9} {f.name:<30} {size:>13}{want} bytes  {f.path}")
        if f.detail and f.state == "mismatch":
            print(f"            {f.detail}")


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "download":
        print(f"{args.task}: fetching into {data.task_folder(args.task, data_dir=args.data_dir)} ...", flush=True)
        _print_data_status(data.download(args.task, data_dir=args.data_dir, base_url=args.base_url))
        return EXIT_OK
    names = [args.task] if getattr(args, "task", None) else tasks.names
    verify = args.data_command == "verify"
    statuses = [(data.verify if verify else data.status)(name, data_dir=args.data_dir) for name in names]
    if args.json:
        print(json.dumps([st.to_dict() for st in statuses], indent=1))
    else:
        for st in statuses:
            _print_data_status(st)
    bad = [f for st in statuses for f in st.files if f.state == "mismatch" or (verify and f.state == "missing"
                                                                               and st.downloadable)]
    return EXIT_ERROR if verify and bad else EXIT_OK


def _version() -> str:
    return __version__


def _summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "name": ticket.name, "commit": ticket.commit, "task": ticket.task, "density": ticket.density,
        "status": ticket.status, "verified_accuracy": ticket.verified_accuracy,
        "claimed_accuracy": ticket.claimed_accuracy, "verdict": ticket.verdict,
        "path": str(ticket.path) if ticket.path else None,
        "source": ticket.source, "sha256": ticket.sha256,
    }


def cmd_pull(args: argparse.Namespace) -> int:
    if bool(args.name) == bool(args.task):
        print("error: give a ticket name or --task (to pick the best ticket of a task), not both or neither",
              file=sys.stderr)
        return EXIT_ERROR
    if args.task and (args.revision or args.include_unpublished):
        print("error: --revision and --include-unpublished apply to a pull by name", file=sys.stderr)
        return EXIT_ERROR
    if args.max_density is not None and not args.task:
        print("error: --max-density applies with --task", file=sys.stderr)
        return EXIT_ERROR

    ticket = ticketclient.pull(
        args.name, args.revision, task=args.task, max_density=args.max_density,
        **({"winning": args.winning} if args.task else {}), include_unpublished=args.include_unpublished, endpoint=args.endpoint, token=args.token,
        cache_dir=args.cache_dir, offline=args.offline,
    )
    if args.out:
        ticket.save(args.out)
    if args.json:
        print(json.dumps(_summary(ticket), indent=1))
    else:
        print(repr(ticket))
        print(f"  files: {ticket.path}")
        if args.out:
            print(f"  bundle written to {args.out}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    ticket = ticketclient.pull(args.name, args.revision, include_unpublished=args.include_unpublished,
                               endpoint=args.endpoint, token=args.token, cache_dir=args.cache_dir,
                               offline=args.offline)
    if args.json:
        print(json.dumps({**_summary(ticket), "verdict": ticket.verdict, "verification": ticket.verification,
                          "record": ticket.record}, indent=1, default=str))
    else:
        print(ticket.describe())
        print()
        print(ticket.layer_table_text())
    return EXIT_OK


def _find_plan(args: argparse.Namespace) -> tuple[dict[str, Any], Recipe, Strategy]:
    """(architecture, recipe, strategy) of ``ticket find``, every option checked (ValueError says which)."""
    from ticketclient import pruning  # torch: the other commands run on the base install

    info = tasks.get(args.task)
    if args.arch and args.family:
        raise ValueError("give --arch or --family, not both")
    if args.arch:
        arch = dict(args.arch)
    elif args.family:
        arch = spec.default_architecture(args.family)
    else:
        arch = spec.default_architecture(info.default_family, info.default_args)
    spec.resolve(arch, input_shape=tuple(info.input_shape), num_classes=int(info.num_classes))  # SpecError
    if args.recipe is not None:
        recipe = Recipe.from_dict(args.recipe)  # BundleError names the field
    elif "family" not in arch:
        raise RecipeRequiredError("an architecture given as a layer list has no default recipe: pass --recipe "
                                  "(JSON or @file.json with the format.Recipe fields), or use --family")
    else:
        recipe = ticketclient.default_recipe(args.task, arch)
    if args.iterations:
        recipe = replace(recipe, iterations=args.iterations,
                         eval_every=min(recipe.eval_every, args.iterations))
    strategy = ticketclient.default_strategy(arch)
    if args.rate is not None or args.output_rate is not None:
        if isinstance(strategy, pruning.Layerwise):
            rate = args.rate if args.rate is not None else strategy.rate
            strategy = replace(strategy, rate=rate,
                               output_rate=args.output_rate if args.output_rate is not None else strategy.output_rate)
        else:
            if args.output_rate is not None:
                raise ValueError(f"--output-rate applies to layer-wise pruning; {arch.get('family')} prunes globally")
            strategy = replace(strategy, rate=args.rate)
    return arch, recipe, strategy


def cmd_find(args: argparse.Namespace) -> int:
    if args.claim_runs > 99:
        print(f"error: --claim-runs must be at most 99, got {args.claim_runs}", file=sys.stderr)
        return 2

    try:
        arch, recipe, strategy = _find_plan(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out} exists and is not a folder", file=sys.stderr)
        return EXIT_ERROR
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.quiet:
        print(f"{args.task}: {arch.get('family') or 'layer list'}, {args.rounds} rounds + the dense run, "
              f"{recipe.iterations:,} iterations each, {strategy}", file=sys.stderr)
    bundles = ticketclient.find(args.task, arch, rounds=args.rounds, out_dir=args.out, seed=args.seed,
                                progress=not args.quiet, recipe=recipe, strategy=strategy, threads=args.threads,
                                claim_runs=args.claim_runs)
    for k, bundle in enumerate(bundles, start=1):
        accuracy = bundle.config.claims.test_accuracy
        print(f"{args.out / f'round-{k}'}: density {measure_density(bundle.mask)[0]:.4f}, test accuracy {accuracy:.4f}")
    print(f"submit one with: ticket submit {args.out / f'round-{len(bundles)}'} --name <name> --wait")
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    sub = ticketclient.submit(args.path, name=args.name, message=args.message, token=args.token,
                              endpoint=args.endpoint)
    print(f"submitted {sub.name} revision {sub.number} ({sub.commit}): {sub.status}")
    if not args.wait:
        return EXIT_OK
    result = ticketclient.wait(sub.name, sub.commit, timeout=args.timeout, token=args.token, endpoint=args.endpoint)
    print(result.describe())
    if result.failed:
        return EXIT_ERROR
    return EXIT_OK if result.verified else EXIT_REJECTED


def cmd_status(args: argparse.Namespace) -> int:
    result = ticketclient.status(args.name, args.revision, token=args.token, endpoint=args.endpoint)
    if args.json:
        print(json.dumps({**result.body, "status": result.status, "verdict": result.verdict}, indent=1, default=str))
    else:
        print(result.describe())
        progress = result.progress
        if not result.finished and progress.get("runs_total"):
            print(f"  run {progress.get('runs_done')}/{progress.get('runs_total')}: {progress.get('current_run')}")
    return EXIT_OK


def cmd_login(args: argparse.Namespace) -> int:
    token = args.token
    if not token:
        if sys.stdin.isatty():
            token = getpass.getpass("registry token: ")
        else:
            token = sys.stdin.readline()
    token = (token or "").strip()
    if not token:
        print("error: no token given", file=sys.stderr)
        return EXIT_ERROR
    account = api.login(token, endpoint=args.endpoint)
    print(f"logged in as {account.get('username', account)}; token stored in {api.token_file()}")
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace) -> int:
    account = ticketclient.whoami(token=args.token, endpoint=args.endpoint)
    if args.json:
        print(json.dumps(account, indent=1, default=str))
    else:
        print(f"{account.get('username', '?')} on {(args.endpoint or constants.endpoint()).rstrip('/')}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    rows = ticketclient.list_tickets(
        task=args.task, architecture=args.architecture, owner=args.owner, density_max=args.max_density,
        status=args.status, winning=args.winning, sort=args.sort, limit=args.limit,
        search=getattr(args, "query", None), token=args.token, endpoint=args.endpoint)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return EXIT_OK
    if not rows:
        print("no tickets match", file=sys.stderr)
        return EXIT_OK
    table = [("name", "task", "architecture", "density", "verified", "status", "owner")]
    for t in rows:
        density, acc = t.get("density"), t.get("verified_accuracy")
        table.append((str(t.get("name")), str(t.get("task")), str(t.get("architecture") or ""),
                      "" if density is None else f"{density:.2%}", "" if acc is None else f"{acc:.2%}",
                      str(t.get("status")), str(t.get("owner"))))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def cmd_withdraw(args: argparse.Namespace) -> int:
    record = ticketclient.withdraw(args.name, reason=args.reason, token=args.token, endpoint=args.endpoint)
    print(f"withdrew {record.get('name', args.name)}: it is no longer served"
          + (f" ({args.reason})" if args.reason else ""))
    return EXIT_OK


def cmd_compact(args: argparse.Namespace) -> int:
    ticket = ticketclient.pull(args.name, args.revision, endpoint=args.endpoint, token=args.token,
                               cache_dir=args.cache_dir, offline=args.offline)
    print(ticket.compact().summary())
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.run < 0:
        print("error: --run must be 0 or more", file=sys.stderr)
        return 2
    result = reproduce(args.name, run=args.run, role=args.role, revision=args.revision, token=args.token,
                       endpoint=args.endpoint, device=args.device, progress=not args.json)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
    else:
        print(result.describe())
    return 0


COMMANDS = {"reproduce": cmd_reproduce, "pull": cmd_pull, "info": cmd_info, "find": cmd_find, "submit": cmd_submit, "status": cmd_status,
            "login": cmd_login, "compact": cmd_compact, "data": cmd_data, "whoami": cmd_whoami, "list": cmd_list,
            "search": cmd_list, "withdraw": cmd_withdraw}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "data_dir", None) is not None:  # every loader below reads it from the environment


        os.environ[constants.DATA_ENV] = str(args.data_dir)

    try:
        try:
            return COMMANDS[args.command](args)
        except TicketNotFoundError as err:
            print(f"error: {err.__class__.__name__}: {err}{_did_you_mean(args)}", file=sys.stderr)
            return EXIT_ERROR
        except TicketError as err:
            print(f"error: {err.__class__.__name__}: {err}", file=sys.stderr)
            return EXIT_ERROR
        except (TimeoutError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_ERROR
        except ModuleNotFoundError as err:
            if err.name not in ("torch", "sklearn", "mnist1d", "mlxtend"):
                raise
            print(f"error: `ticket {args.command}` needs {err.name}, which the base install leaves out: "
                  "pip install \"ticketclient[torch]\" (from the hub's repository: pip install \"./client[torch]\")",
                  file=sys.stderr)
            return EXIT_ERROR
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (``ticket status --json | head``): stop quietly, as a Unix tool does

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


def _did_you_mean(args: argparse.Namespace) -> str:
    """" Did you mean ...?" for a ticket name that is not in the registry (best effort, never raises)."""
    name = getattr(args, "name", None)
    if not name or getattr(args, "offline", None):
        return ""

    try:
        close = api.similar_names(name, token=args.token, endpoint=args.endpoint)
    except Exception:  # noqa: BLE001 - a suggestion only
        return ""
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
