"""Run the whole hub locally: database, web server, verifier worker and demo tickets, under one supervisor.

``scripts/run`` (the README's command) installs everything and then execs this file. It needs no servers:

- the database is SQLite under the state folder (``var/`` unless ``--state-dir``/``TICKETHUB_VAR_DIR``);
- the Celery broker is kombu's filesystem transport (message files under ``<state>/broker``);
- ticket files are stored under ``<state>/media``.

Then it runs management commands (``migrate``, ``sync_tasks``, ``demo_account``: a superuser with an API
token, ``resume_verifications``: what the last run left unfinished), starts gunicorn on ``127.0.0.1:$PORT``
and one ``celery -A verifier worker -Q verify`` (with the sweep schedule embedded), waits until the API
answers, submits the committed demo tickets (``demo/tickets/*``) with ``ticketclient.submit`` like any
client would, and prints a line each time a ticket's verification moves on (``ticketclient.status``).

Ctrl-C (SIGINT) or SIGTERM stops every child process group (web server gracefully, the worker warm, then
cold if a job is still running after ``--stop-timeout`` seconds) and exits 0. A second Ctrl-C kills at once.
The web process never imports torch; only the worker's pool processes do.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_TICKETS = ROOT / "demo" / "tickets"
DEMO_USERNAME = "demo"
DEMO_TOKEN_NAME = "scripts-run"
FINAL_STATUSES = ("verified", "rejected", "withdrawn")

#: Variables of the caller's shell that must not leak into the local hub: pytest's marker makes the
#: registry's settings default to the test PostgreSQL/Redis, and the rest would point it at other storage.
_SCRUBBED_ENV = (
    "PYTEST_VERSION", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "TEST_DB_SUFFIX", "VERIFIER_BROKER_PREFIX",
    "TICKETHUB_STATIC_ROOT", "AWS_S3_ENDPOINT_URL", "CACHE_URL", "REDIS_URL",
)


# --- options --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    host: str
    port: int
    state_dir: Path
    seed: bool
    concurrency: int
    verbose: bool
    demo_dir: Path
    stop_timeout_s: float
    start_timeout_s: float

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_options(argv: list[str] | None = None) -> RunOptions:
    parser = argparse.ArgumentParser(
        prog="scripts/run",
        description="Run the lottery-ticket hub locally (SQLite, filesystem broker, one verifier worker) and "
                    "submit the demo tickets. Ctrl-C stops everything.",
    )
    parser.add_argument("--host", default=os.environ.get("TICKETHUB_HOST", "127.0.0.1"),
                        help="address the web server listens on (TICKETHUB_HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000),
                        help="port of the web server (PORT; default 8000)")
    parser.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get("TICKETHUB_VAR_DIR") or ROOT / "var"),
                        help="database, broker, files and logs (TICKETHUB_VAR_DIR; default var/)")
    parser.add_argument("--no-seed", action="store_true", default=_env_flag("TICKETHUB_NO_SEED"),
                        help="do not submit the demo tickets (TICKETHUB_NO_SEED=1)")
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("VERIFIER_CONCURRENCY") or 1),
                        help="verifications the worker runs at once (VERIFIER_CONCURRENCY; default 1)")
    parser.add_argument("--verbose", "-v", action="store_true", default=_env_flag("TICKETHUB_RUN_VERBOSE"),
                        help="show the web server's and the worker's logs here instead of in <state>/logs")
    parser.add_argument("--demo-dir", type=Path, default=DEMO_TICKETS,
                        help="folder of ticket bundles to submit (default demo/tickets)")
    parser.add_argument("--stop-timeout", type=float, default=10.0,
                        help="seconds a running verification may take to finish on Ctrl-C before it is "
                             "interrupted (default 10)")
    parser.add_argument("--start-timeout", type=float, default=120.0,
                        help="seconds to wait for the web server to answer (default 120)")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return RunOptions(
        host=args.host, port=args.port, state_dir=args.state_dir.expanduser().resolve(), seed=not args.no_seed,
        concurrency=args.concurrency, verbose=args.verbose, demo_dir=args.demo_dir.resolve(),
        stop_timeout_s=args.stop_timeout, start_timeout_s=args.start_timeout,
    )


# --- output ---------------------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def stamp() -> str:
    return time.strftime("%H:%M:%S")


def percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


# --- environment ----------------------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    """An SQLite URL whose options let the web server and the worker write concurrently: WAL journal, a
    30 s busy timeout, and write transactions that take the lock up front (no deadlocked upgrades)."""
    return (f"sqlite:///{path}?timeout=30&transaction_mode=IMMEDIATE"
            "&init_command=PRAGMA+journal_mode%3DWAL%3BPRAGMA+synchronous%3DNORMAL")


def child_env(opts: RunOptions) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    state = opts.state_dir
    env.update({
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "TICKETHUB_VAR_DIR": str(state),
        "DATABASE_URL": sqlite_url(state / "hub.sqlite3"),
        "CELERY_BROKER_URL": "filesystem://",
        "TICKETHUB_BROKER_DIR": str(state / "broker"),
        "TICKETHUB_STORAGE": "fs",
        "TICKETHUB_MEDIA_ROOT": str(state / "media"),
        "VERIFIER_QUEUE": env.get("VERIFIER_QUEUE") or "verify",
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    })
    # Small networks train fastest on one torch thread per process (the worker runs a verification's
    # trainings in parallel processes); several threads per process on a busy machine spin against each other.
    env.setdefault("VERIFIER_TORCH_THREADS", "1")
    if opts.host not in ("127.0.0.1", "localhost", "::1"):
        hosts = env.get("DJANGO_ALLOWED_HOSTS") or "localhost,127.0.0.1,[::1]"
        env["DJANGO_ALLOWED_HOSTS"] = "*" if opts.host in ("0.0.0.0", "::") else f"{hosts},{opts.host}"
    return env


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# --- child processes ------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it if the supervisor dies without stopping it (killed
    with SIGKILL, say), so no web server or worker outlives its supervisor. A no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Stopped(Exception):
    """Ctrl-C or SIGTERM arrived: unwind and stop the children."""


class ChildFailed(Exception):
    """A child process exited on its own, or a start-up step failed."""


@dataclass
class Child:
    """A child process in its own session (process group), so a terminal's Ctrl-C reaches only us and we
    stop the children in order."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None
    log_file: IO[bytes] | None = None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return text[-chars:]

    def signal_main(self, sig: signal.Signals) -> None:
        """Signal the child's main process only: gunicorn's master and Celery's main process stop their own
        workers (a signal to the whole group would kill Celery's pool processes under it, and it restarts them)."""
        try:
            self.popen.send_signal(sig)
        except ProcessLookupError:
            pass

    def signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout: float) -> bool:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def group_members(self) -> list[tuple[int, str]]:
        """(pid, command) of the live processes left in the child's process group (zombies, which only wait
        for their parent to reap them, do not count). Pool processes can outlive their parent briefly."""
        members = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            # fields after the command name in parentheses: state ppid pgrp ...
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == self.popen.pid and fields[0] != "Z":
                members.append((int(entry.name), cmd))
        return members

    def group_alive(self) -> bool:
        if not Path("/proc/self/stat").exists():  # not Linux: ask the kernel about the group as a whole
            try:
                os.killpg(self.popen.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return bool(self.group_members())

    def close(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


@dataclass
class Supervisor:
    opts: RunOptions
    env: dict[str, str]
    stop_requested: threading.Event = field(default_factory=threading.Event)
    children: list[Child] = field(default_factory=list)
    interrupts: int = 0

    # signals

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.interrupts += 1
        if self.interrupts > 1:
            say("\nsecond interrupt: killing everything now")
            for child in self.children:
                child.signal_group(signal.SIGKILL)
        self.stop_requested.set()

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up (raising Stopped) on Ctrl-C, and fail if a child died meanwhile."""
        if self.stop_requested.wait(seconds):
            raise Stopped
        self.check_children()

    def check_children(self) -> None:
        for child in self.children:
            if not child.alive():
                tail = child.log_tail()
                where = f" (log: {child.log_path})" if child.log_path else ""
                raise ChildFailed(f"the {child.name} exited with status {child.popen.returncode}{where}"
                                  + (f"; its last lines:\n{tail}" if tail else ""))

    # processes

    def spawn(self, name: str, cmd: list[str], log_name: str) -> Child:
        log_path: Path | None = None
        log_file: IO[bytes] | None = None
        if not self.opts.verbose:
            log_path = self.opts.state_dir / "logs" / log_name
            log_file = open(log_path, "ab")  # noqa: SIM115 - closed by Child.close()
        popen = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
            stdout=log_file if log_file is not None else None,
            stderr=subprocess.STDOUT if log_file is not None else None,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        child = Child(name=name, popen=popen, log_path=log_path, log_file=log_file)
        self.children.append(child)
        return child

    def run_step(self, what: str, cmd: list[str], log_name: str) -> float:
        """Run a start-up command to completion (interruptible); returns its duration in seconds."""
        started = time.monotonic()
        child = self.spawn(what, cmd, log_name)
        self.children.remove(child)
        try:
            while child.alive():
                if self.stop_requested.wait(0.2):
                    child.signal_group(signal.SIGTERM)
                    if not child.wait(10):
                        child.signal_group(signal.SIGKILL)
                    raise Stopped
        finally:
            child.close()
        if child.popen.returncode != 0:
            tail = child.log_tail()
            raise ChildFailed(f"{what} failed with status {child.popen.returncode}"
                              + (f" (log: {child.log_path}):\n{tail}" if tail else ""))
        return time.monotonic() - started

    def stop_all(self) -> bool:
        """Stop the children, web server first; True when every process group is gone."""
        for child in self.children:
            if child.alive():
                child.signal_main(signal.SIGTERM)
        deadline = time.monotonic() + self.opts.stop_timeout_s
        for child in self.children:
            child.wait(max(0.1, deadline - time.monotonic()))
        for child in self.children:
            if child.alive():
                # Celery's cold shutdown: the running job is interrupted (its verification is picked up again
                # by the sweep, or requeued from the admin).
                say(f"  the {child.name} is still busy: interrupting it")
                child.signal_main(signal.SIGQUIT)
                if not child.wait(5):
                    child.signal_group(signal.SIGKILL)
                    child.wait(5)
        # Processes of a group whose leader has exited (a worker's pool or beat process) get a moment to
        # finish on their own, then SIGKILL.
        deadline = time.monotonic() + 5
        while any(child.group_alive() for child in self.children) and time.monotonic() < deadline:
            time.sleep(0.1)
        for child in self.children:
            if child.group_alive():
                child.signal_group(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(child.group_alive() for child in self.children) and time.monotonic() < deadline:
            time.sleep(0.1)
        clean = True
        for child in self.children:
            for pid, cmd in child.group_members() if child.group_alive() else []:
                say(f"  still running after SIGKILL: pid {pid}: {cmd[:120]}")
                clean = False
        for child in self.children:
            child.close()
        return clean


# --- the steps ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    token: str


def manage(sup: Supervisor, *args: str) -> str:
    """Run ``manage.py <args>`` to completion in the hub's environment; returns its standard output."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=sup.env, capture_output=True,
                            text=True, start_new_session=True, check=False)
    if result.returncode != 0:
        raise ChildFailed(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def ensure_demo_account(sup: Supervisor) -> DemoAccount:
    """The ``demo`` superuser and its API token (``manage.py demo_account``), kept in <state>/credentials.json:
    a restart on the same state folder keeps the token, so a stored ``ticket login`` keeps working."""
    creds_path = sup.opts.state_dir / "credentials.json"
    manage(sup, "demo_account", "--credentials", str(creds_path), "--username", DEMO_USERNAME,
           "--token-name", DEMO_TOKEN_NAME)
    creds = json.loads(creds_path.read_text())
    return DemoAccount(username=creds["username"], password=creds["password"], token=creds["token"])


def resume_unfinished_verifications(sup: Supervisor) -> int:
    """Resend the verifications a previous run left unfinished (``manage.py resume_verifications``). The state
    folder is this run's alone (locked) and no worker has started yet, so none of them has a live worker."""
    return int(manage(sup, "resume_verifications").strip().splitlines()[-1])


def start_web(sup: Supervisor) -> Child:
    cmd = [
        sys.executable, "-m", "gunicorn", "registry.wsgi:application",
        "--bind", f"{sup.opts.host}:{sup.opts.port}",
        "--workers", "1", "--threads", "8", "--timeout", "120", "--graceful-timeout", "5",
        "--access-logfile", "-", "--error-logfile", "-", "--log-level", "info",
        # no control socket in ~/.gunicorn: two local hubs (or a test run beside yours) must not collide
        "--no-control-socket",
    ]
    return sup.spawn("web server", cmd, "web.log")


def start_worker(sup: Supervisor) -> Child:
    state = sup.opts.state_dir
    cmd = [
        sys.executable, "-m", "celery", "-A", "verifier", "worker",
        "-Q", sup.env["VERIFIER_QUEUE"], "--concurrency", str(sup.opts.concurrency), "-P", "prefork",
        # beat embedded in the worker: the periodic sweep of stuck verifications
        "-B", "--schedule", str(state / "celerybeat-schedule"),
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel", "INFO", "-n", "verifier@%h",
    ]
    return sup.spawn("verifier worker", cmd, "worker.log")


def wait_until_serving(sup: Supervisor) -> float:
    """Poll the API until it answers 200; returns the seconds waited."""
    import requests

    started = time.monotonic()
    url = f"{sup.opts.base_url}/api/v1/tasks/"
    while True:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        if time.monotonic() - started > sup.opts.start_timeout_s:
            raise ChildFailed(f"the web server did not answer {url} within {sup.opts.start_timeout_s:.0f} s")
        sup.sleep(0.3)


@dataclass
class DemoTicket:
    name: str
    folder: Path
    claimed_accuracy: float | None = None
    density: float | None = None
    status: str = ""
    commit: str = ""
    run_seen: tuple[Any, Any] = (None, None)
    last_line: str = ""
    printed_at: float = 0.0


def demo_bundles(folder: Path) -> list[DemoTicket]:
    """The committed demo bundles, in the order of ``demo/tickets/ORDER`` if present, else by name."""
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir() if (p / "config.json").is_file())
    order_file = folder / "ORDER"
    if order_file.exists():
        wanted = [line.strip() for line in order_file.read_text().splitlines() if line.strip()]
        names = [n for n in wanted if n in names] + [n for n in names if n not in wanted]
    return [DemoTicket(name=n, folder=folder / n) for n in names]


def submit_demo_ticket(sup: Supervisor, account: DemoAccount, ticket: DemoTicket) -> None:
    """Submit the bundle with ``ticketclient.submit`` (like any client), unless a ticket of that name is there."""
    import ticketclient
    from ticketclient.errors import HubError, TicketNotFoundError

    where = {"token": account.token, "endpoint": sup.opts.base_url}
    try:
        existing = ticketclient.status(ticket.name, **where)
    except TicketNotFoundError:
        pass
    else:
        ticket.status, ticket.density, ticket.claimed_accuracy = existing.status, existing.density, \
            existing.claimed_accuracy
        verified = f", {percent(existing.verified_accuracy)} test accuracy" if existing.verified else ""
        say(f"[{stamp()}] {ticket.name:<24} already here ({ticket.status}{verified}); not submitted again")
        return
    try:
        submission = ticketclient.submit(ticket.folder, name=ticket.name, message="demo ticket (scripts/run)",
                                         **where)
    except HubError as err:
        raise ChildFailed(f"the registry refused demo ticket {ticket.name}: {err}") from err
    ticket.status, ticket.commit = submission.status or "pending", submission.commit
    ticket.density, ticket.claimed_accuracy = submission.body.get("density"), submission.body.get("claimed_accuracy")
    say(f"[{stamp()}] {ticket.name:<24} submitted   density {percent(ticket.density)}, "
        f"claims {percent(ticket.claimed_accuracy)} test accuracy")


def say_progress(ticket: DemoTicket, progress: dict[str, Any], every_s: float = 10.0) -> None:
    """A progress line when a training run finishes, and every ``every_s`` seconds while one trains."""
    done, total = progress.get("runs_done"), progress.get("runs_total")
    iteration, iterations = progress.get("iteration"), progress.get("iterations")
    # e.g. "5 runs trained together in lane 1 of 2: ticket seed 0, ..." or "ticket seed 0 (run 1 of 3 ...)":
    # the part before the colon or the parenthesis is enough here
    current = str(progress.get("current_run") or "").split(" (", 1)[0].split(":", 1)[0]
    if len(current) > 48:
        current = current[:45] + "..."
    parts = [f"{done}/{total} training runs done"] if total else []
    if current:
        parts.append(f"now: {current}" + (f", iteration {iteration}/{iterations}" if iterations else ""))
    line = "; ".join(parts) or "started"
    now = time.monotonic()
    if (done, total) != ticket.run_seen or (line != ticket.last_line and now - ticket.printed_at >= every_s):
        say(f"[{stamp()}] {ticket.name:<24} verifying   {line}")
        ticket.run_seen, ticket.last_line, ticket.printed_at = (done, total), line, now


def follow_demo_ticket(sup: Supervisor, account: DemoAccount, ticket: DemoTicket) -> None:
    """Read the ticket's verification (``ticketclient.status``) and print what changed since the last look."""
    import ticketclient
    from ticketclient.errors import HubError

    try:
        result = ticketclient.status(ticket.name, token=account.token, endpoint=sup.opts.base_url)
    except HubError:
        return
    status = "pending" if result.failed else result.status  # the hub retries a failed verification
    if status == "verifying":
        say_progress(ticket, result.progress)
    elif status != ticket.status and status in FINAL_STATUSES:
        if result.verified:
            margin = ((result.record or {}).get("decision") or {}).get("margin")
            if result.winning and margin is not None:
                verdict = f"winning: beats its best control by {100 * margin:+.1f} points"
            elif result.winning is False:
                verdict = "not winning: a control did as well"
            else:
                verdict = ""
            claimed = ticket.claimed_accuracy if result.claimed_accuracy is None else result.claimed_accuracy
            say(f"[{stamp()}] {ticket.name:<24} VERIFIED    {percent(result.verified_accuracy)} test accuracy "
                f"(claimed {percent(claimed)}){', ' + verdict if verdict else ''} -> "
                f"{sup.opts.base_url}/tickets/{ticket.name}/")
        else:
            say(f"[{stamp()}] {ticket.name:<24} {status.upper():<11} {result.reason}")
    ticket.status = status


def print_banner(opts: RunOptions, account: DemoAccount, migrate_s: float, serve_s: float, example: str) -> None:
    base = opts.base_url
    logs = "shown above" if opts.verbose else f"{opts.state_dir / 'logs'}/web.log, worker.log"
    say()
    say(f"The lottery-ticket hub is running ({migrate_s:.1f} s to migrate, {serve_s:.1f} s to start serving):")
    say(f"  catalog        {base}/")
    say(f"  REST API       {base}/api/v1/tickets/      docs: {base}/api/docs/")
    say(f"  admin          {base}/admin/   user {account.username}, password {account.password}")
    say(f"  API token      {account.token}   (also in {opts.state_dir / 'credentials.json'})")
    say(f"  state, logs    {opts.state_dir}   ({logs})")
    say(f"  pull a ticket  TICKETHUB_ENDPOINT={base} .venv/bin/python -c \"import ticketclient as tc; "
        f"print(tc.pull('{example}').describe())\"")
    say("Ctrl-C stops the hub.")
    say()


def lock_state_dir(state_dir: Path) -> IO[str] | None:
    """An exclusive lock on ``<state>/run.lock`` for as long as this run lives (released by the kernel when
    the process exits); None when another scripts/run holds it: two hubs must not share one state folder."""
    import fcntl

    handle = open(state_dir / "run.lock", "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def run(opts: RunOptions) -> int:
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_state_dir(opts.state_dir)
    if lock is None:
        say(f"scripts/run: another scripts/run is using {opts.state_dir}; stop it, or give this one its own "
            "folder: TICKETHUB_VAR_DIR=/tmp/hub2 PORT=8001 scripts/run")
        return 2
    (opts.state_dir / "logs").mkdir(exist_ok=True)
    for sub in ("broker/queue", "broker/processed", "media", "static"):
        (opts.state_dir / sub).mkdir(parents=True, exist_ok=True)
    sup = Supervisor(opts=opts, env=child_env(opts))
    sup.install_signal_handlers()
    if not port_is_free(opts.host, opts.port):
        say(f"scripts/run: port {opts.port} on {opts.host} is in use; choose another: PORT=8001 scripts/run")
        return 2
    say(f"Starting the lottery-ticket hub (SQLite, filesystem broker, state in {opts.state_dir})")
    rc = 0
    try:
        say("  migrating the database ...")
        migrate_s = sup.run_step("migrate", [sys.executable, "manage.py", "migrate", "--noinput"], "migrate.log")
        # tasks added to ticketclient since this state folder was made
        migrate_s += sup.run_step("sync_tasks", [sys.executable, "manage.py", "sync_tasks"], "migrate.log")
        account = ensure_demo_account(sup)
        resumed = resume_unfinished_verifications(sup)
        if resumed:
            say(f"  resuming {resumed} verification(s) the last run left unfinished")
        say(f"  starting the web server on {opts.base_url} and a verifier worker (concurrency {opts.concurrency})")
        start_web(sup)
        start_worker(sup)
        serve_s = wait_until_serving(sup)
        tickets = demo_bundles(opts.demo_dir) if opts.seed else []
        print_banner(opts, account, migrate_s, serve_s, tickets[0].name if tickets else "<ticket name>")
        if opts.seed and not tickets:
            say(f"(no demo tickets in {opts.demo_dir})")
        if tickets:
            say(f"Submitting {len(tickets)} demo tickets through POST /api/v1/tickets/; the worker verifies them "
                "one at a time (each is retrained over several seeds, with controls):")
            for ticket in tickets:
                submit_demo_ticket(sup, account, ticket)
        announced = False
        while True:
            for ticket in tickets:
                if ticket.status not in FINAL_STATUSES:
                    follow_demo_ticket(sup, account, ticket)
            if tickets and not announced and all(t.status in FINAL_STATUSES for t in tickets):
                verified = sum(t.status == "verified" for t in tickets)
                say(f"[{stamp()}] {verified} of {len(tickets)} demo tickets verified; browse {opts.base_url}/ "
                    "(Ctrl-C stops the hub)")
                announced = True
            sup.sleep(1.0)
    except Stopped:
        say("\nStopping the hub ...")
    except ChildFailed as err:
        say(f"\nscripts/run: {err}")
        rc = 1
    finally:
        clean = sup.stop_all()
    if not clean:
        say("scripts/run: some child processes would not stop")
        return rc or 1
    if rc == 0:
        say("Stopped.")
    return rc


def main(argv: list[str] | None = None) -> int:
    return run(parse_options(argv))


if __name__ == "__main__":
    sys.exit(main())
