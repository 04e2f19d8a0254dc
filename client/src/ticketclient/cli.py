"""The ``ticket`` command: pull, info, find, submit, status, login (and compact).

    ticket pull lenet-mnist-3.6pct                  # or: ticket pull --task mnist1d --max-density 0.05
    ticket info lenet-mnist-3.6pct --json
    ticket find --task mnist1d --rounds 5 --out runs/mnist1d
    ticket submit runs/mnist1d/round-05 --name mlp-mnist1d-33pct --wait   # exit 1 if verification rejects it
    ticket status mlp-mnist1d-33pct
    ticket login                                     # reads the token from stdin, checks it, stores it

Every command takes ``--endpoint`` and ``--token`` (default: ``TICKETHUB_ENDPOINT``, ``TICKETHUB_TOKEN`` or the
stored token). Exit status: 0 success, 1 verification rejected (``submit --wait``), 2 any other error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2


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
    p.add_argument("--task", help="pick the best verified ticket of this task instead of a name")
    p.add_argument("--max-density", type=float, help="with --task: the largest density accepted")
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

    p = sub.add_parser("find", help="run iterative magnitude pruning on a task and write one bundle per round")
    p.add_argument("--task", required=True)
    p.add_argument("--family", help="architecture family (default: the task's default)")
    p.add_argument("--arch", help="architecture as JSON ({\"family\": ..., \"args\": ...} or {\"layers\": [...]})")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rate", type=float, default=0.2, help="fraction of remaining weights pruned per round")
    p.add_argument("--output-rate", type=float, default=0.1, help="rate for the output layer")
    p.add_argument("--iterations", type=int, help="override the recipe's training iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="folder for round-NN bundles")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _data_dir(p)

    p = sub.add_parser("submit", help="submit a bundle folder for verification")
    p.add_argument("path", type=Path)
    p.add_argument("--name", help="ticket name (default: from config.json)")
    p.add_argument("--message", default="")
    p.add_argument("--wait", action="store_true", help="follow the verification; exit 1 if it is rejected")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most (with --wait)")
    _common(p)

    p = sub.add_parser("status", help="verification status of a ticket's revision")
    p.add_argument("name")
    p.add_argument("--revision", help="commit id (default: latest)")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("login", help="check a registry token and store it")
    p.add_argument("--token", help="the token (default: read from stdin)")
    p.add_argument("--endpoint")

    _data_parser(sub)

    p = sub.add_parser("compact", help="report how much smaller a ticket's dense equivalent is")
    p.add_argument("name")
    p.add_argument("--revision")
    _common(p)
    _cache(p)
    return parser


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="dataset folder, one subfolder per task (default: $TICKETHUB_DATA "
                                                 "or ~/.cache/tickethub/datasets)")


def _data_parser(sub: Any) -> None:
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


def _print_data_status(st: Any) -> None:
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
    from ticketclient import data, tasks

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
    from ticketclient import __version__

    return __version__


def _summary(ticket: Any) -> dict[str, Any]:
    return {
        "name": ticket.name, "commit": ticket.commit, "task": ticket.task, "density": ticket.density,
        "status": ticket.status, "verified_accuracy": ticket.verified_accuracy,
        "claimed_accuracy": ticket.claimed_accuracy, "path": str(ticket.path) if ticket.path else None,
        "source": ticket.source, "sha256": ticket.sha256,
    }


def cmd_pull(args: argparse.Namespace) -> int:
    import ticketclient

    ticket = ticketclient.pull(
        args.name, args.revision, task=args.task, max_density=args.max_density,
        include_unpublished=args.include_unpublished, endpoint=args.endpoint, token=args.token,
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
    import ticketclient

    ticket = ticketclient.pull(args.name, args.revision, include_unpublished=args.include_unpublished,
                               endpoint=args.endpoint, token=args.token, cache_dir=args.cache_dir,
                               offline=args.offline)
    if args.json:
        print(json.dumps({**_summary(ticket), "verification": ticket.verification, "record": ticket.record},
                         indent=1, default=str))
    else:
        print(ticket.describe())
        for row in ticket.arch.layer_table(ticket.layer_densities):
            print("   ", "  ".join(f"{k}={v}" for k, v in row.items()))
    return EXIT_OK


def cmd_find(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import ticketclient
    from ticketclient import pruning, spec, tasks

    info = tasks.get(args.task)
    if args.arch:
        arch = json.loads(args.arch)
    elif args.family and args.family != info.default_family:
        arch = spec.default_architecture(args.family)
    else:
        arch = spec.default_architecture(info.default_family, info.default_args)
    family = arch.get("family") or "mlp"
    recipe = spec.FAMILIES[family].default_recipe if family in spec.FAMILIES else spec.FAMILIES["mlp"].default_recipe
    if args.iterations:
        recipe = replace(recipe, iterations=args.iterations,
                         eval_every=min(getattr(recipe, "eval_every", args.iterations), args.iterations))
    strategy = pruning.Layerwise(args.rate, args.output_rate)
    args.out.mkdir(parents=True, exist_ok=True)
    bundles = ticketclient.find(args.task, arch, rounds=args.rounds, out_dir=args.out, seed=args.seed,
                                progress=not args.quiet, recipe=recipe, strategy=strategy)
    from ticketclient.format import measure_density

    for k, bundle in enumerate(bundles, start=1):
        accuracy = bundle.config.claims.test_accuracy
        print(f"{args.out / f'round-{k}'}: density {measure_density(bundle.mask)[0]:.4f}, test accuracy {accuracy:.4f}")
    print(f"submit one with: ticket submit {args.out / f'round-{len(bundles)}'} --name <name> --wait")
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    import ticketclient

    sub = ticketclient.submit(args.path, name=args.name, message=args.message, token=args.token,
                              endpoint=args.endpoint)
    print(f"submitted {sub.name} revision {sub.number} ({sub.commit}): {sub.status}")
    if not args.wait:
        return EXIT_OK
    result = ticketclient.wait(sub.name, sub.commit, timeout=args.timeout, token=args.token, endpoint=args.endpoint)
    print(result.describe())
    return EXIT_OK if result.verified else EXIT_REJECTED


def cmd_status(args: argparse.Namespace) -> int:
    import ticketclient

    result = ticketclient.status(args.name, args.revision, token=args.token, endpoint=args.endpoint)
    if args.json:
        print(json.dumps(result.body, indent=1, default=str))
    else:
        print(result.describe())
        progress = result.progress
        if not result.finished and progress.get("runs_total"):
            print(f"  run {progress.get('runs_done')}/{progress.get('runs_total')}: {progress.get('current_run')}")
    return EXIT_OK


def cmd_login(args: argparse.Namespace) -> int:
    from ticketclient import api

    token = args.token
    if not token:
        if sys.stdin.isatty():
            import getpass

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


def cmd_compact(args: argparse.Namespace) -> int:
    import ticketclient

    ticket = ticketclient.pull(args.name, args.revision, endpoint=args.endpoint, token=args.token,
                               cache_dir=args.cache_dir, offline=args.offline)
    print(ticket.compact().summary())
    return EXIT_OK


COMMANDS = {"pull": cmd_pull, "info": cmd_info, "find": cmd_find, "submit": cmd_submit, "status": cmd_status,
            "login": cmd_login, "compact": cmd_compact, "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "data_dir", None) is not None:  # every loader below reads it from the environment
        import os

        from ticketclient import constants

        os.environ[constants.DATA_ENV] = str(args.data_dir)
    from ticketclient.errors import TicketError

    try:
        return COMMANDS[args.command](args)
    except TicketError as err:
        print(f"error: {err.__class__.__name__}: {err}", file=sys.stderr)
        return EXIT_ERROR
    except TimeoutError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
