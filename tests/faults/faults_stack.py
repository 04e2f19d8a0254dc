"""A production-like hub on loopback that a test can break: its own PostgreSQL cluster and Redis server
(started here on free ports, so the shared ones stay up), gunicorn (2 processes x 4 threads, persistent
database connections), a verifier worker and a torch-free sweeper worker with the beat embedded.

Everything is a real process; faults are real too: SIGKILL, ``pg_ctl restart``, a Redis killed and started
again empty (it keeps nothing on disk), a storage folder taken away. The test talks to the stack over HTTP
and reads PostgreSQL directly (psycopg) to check what was stored.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from process_group import ROOT, GroupProcess

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def missing_tools() -> str | None:
    """Why this stack cannot start here, or None."""
    if not shutil.which("redis-server"):
        return "redis-server is not installed"
    for tool in ("initdb", "pg_ctl"):
        if not pg_bin(tool):
            return f"PostgreSQL's {tool} is not installed (looked in /usr/lib/postgresql/*/bin)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser (initdb refuses root)"
    return None


#: A child process of the stack in its own process group, its output in a log file.
Proc = GroupProcess


class PrivateRedis:
    """``redis-server`` on its own port, nothing on disk: a restart loses every queued message."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = Proc(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(self.workdir)], dict(os.environ),
                         self.workdir / f"redis-{self.port}.log")
        wait_until(lambda: port_open(self.port), 20, "redis-server to listen")

    def stop(self) -> None:
        """A crash: SIGKILL, whatever it held is gone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.stop()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class PrivatePostgres:
    """A PostgreSQL cluster made with initdb in a temporary folder, on its own port (trust auth)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tickethub-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_owner:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/tickethub"

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self._as_owner, *args], check=True, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def init(self) -> None:
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        self.start()
        self._run(pg_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "tickethub")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off " \
                  f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
                  *extra, action)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        try:
            self._pg_ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self):
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=tickethub", autocommit=True,
                               connect_timeout=5)

    def query(self, sql: str, *params: Any) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()


class Stack:
    """The hub wired to a private PostgreSQL and Redis; ``start_web()``, ``start_worker()``, faults."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        self.media = workdir / "media"
        self.media.mkdir(parents=True, exist_ok=True)
        self.pg = PrivatePostgres()
        self.redis = PrivateRedis(workdir)
        self.web_port = free_port()
        self.web: Proc | None = None
        self.workers: list[Proc] = []
        self.sweeper: Proc | None = None
        self.extra_env = env

    # --- lifecycle ----------------------------------------------------------------------------------

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "TEST_DB"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "DJANGO_SECRET_KEY": "faults-" + uuid.uuid4().hex,
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.pg.url,
            "DATABASE_CONN_MAX_AGE": "60",
            "CELERY_BROKER_URL": f"{self.redis.url}/0",
            "CACHE_URL": f"{self.redis.url}/1",
            "TICKETHUB_STORAGE": "fs",
            "TICKETHUB_MEDIA_ROOT": str(self.media),
            "TICKETHUB_VAR_DIR": str(self.workdir / "var"),
            "TICKETHUB_THROTTLE_ANON": "1000000/min",
            "TICKETHUB_THROTTLE_USER": "1000000/min",
            "TICKETHUB_THROTTLE_SUBMIT": "1000000/hour",
            "TICKETHUB_THROTTLE_TOKENS": "1000000/hour",
            "TICKETHUB_THROTTLE_SUBMIT_IP": "1000000/hour",
            "TICKETHUB_THROTTLE_TOKENS_IP": "1000000/hour",
            "TICKETHUB_THROTTLE_SIGNUP": "1000000/hour",
            "TICKETHUB_THROTTLE_SIGNUP_IP": "1000000/hour",
            "TICKETHUB_MAX_QUEUED_PER_USER": "1000",
            "VERIFIER_SEEDS": "2",
            "VERIFIER_TORCH_THREADS": "1",
            "TICKETHUB_TORCH_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "VERIFIER_HEARTBEAT_STALE_S": "15",
            "VERIFIER_SWEEP_INTERVAL_S": "5",
            "VERIFIER_SWEEP_QUEUE": "verify-sweep",
            # only the sweeper may recover a lost message: Redis's own redelivery would wait an hour
            "VERIFIER_VISIBILITY_TIMEOUT": "3600",
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        })
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True,
                                text=True, timeout=timeout)
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self) -> None:
        self.pg.init()
        self.redis.start()
        self.manage("migrate", "--noinput")
        self.manage("sync_tasks")

    def start_web(self, workers: int = 2, threads: int = 4) -> None:
        self.web = Proc([PYTHON, "-m", "gunicorn", "registry.wsgi:application", "--bind",
                         f"127.0.0.1:{self.web_port}", "--worker-class", "gthread", "--workers", str(workers),
                         "--threads", str(threads), "--timeout", "60", "--error-logfile", "-"],
                        self.env(), self.workdir / "gunicorn.log")
        wait_until(lambda: self._healthz_answers(), 90, "gunicorn to serve /healthz")

    def _healthz_answers(self) -> bool:
        import requests

        if self.web is not None and not self.web.alive():
            raise AssertionError(f"gunicorn exited:\n{self.web.log[-3000:]}")
        try:
            return requests.get(self.url("/healthz"), timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False

    def start_worker(self, **env: str) -> Proc:
        name = f"verifier{len(self.workers)}-{uuid.uuid4().hex[:6]}"
        w = Proc([PYTHON, "-m", "celery", "-A", "verifier", "worker", "-Q", "verify", "--concurrency", "1",
                  "-P", "prefork", "--loglevel", "INFO", "-n", f"{name}@%h", "--without-gossip",
                  "--without-mingle", "--without-heartbeat"], self.env(**env), self.workdir / f"{name}.log")
        self.workers.append(w)
        return w

    def start_sweeper(self) -> None:
        """The torch-free sweeper: a solo worker on the sweep queue with the beat embedded (5 s interval)."""
        self.sweeper = Proc([PYTHON, "-m", "celery", "-A", "verifier", "worker", "-B", "-Q", "verify-sweep",
                             "-P", "solo", "--concurrency", "1", "--loglevel", "INFO", "-n", "sweeper@%h",
                             "--without-gossip", "--without-mingle", "--without-heartbeat", "--schedule",
                             str(self.workdir / "beat-schedule")],
                            self.env(VERIFIER_WORKER_ROLE="sweeper"), self.workdir / "sweeper.log")

    def sweep_once(self) -> list[int]:
        out = self.manage("shell", "-c", "from verifier import sweeper; print(sweeper.sweep())")
        import ast

        return ast.literal_eval(out.strip().splitlines()[-1])

    def stop(self) -> None:
        for p in [*self.workers, self.sweeper, self.web]:
            if p is not None:
                p.stop()
        self.redis.stop()
        self.pg.destroy()

    # --- talking to it ------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def create_user(self, username: str) -> str:
        """A user and an API token (made with the ORM, so that sign-up limits play no part); the key."""
        code = ("from django.contrib.auth import get_user_model; from registry.accounts.services import "
                f"create_token; u = get_user_model().objects.create_user(username={username!r}, "
                "password='correct-horse-battery'); print(create_token(user=u, name='faults').key)")
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    def submit(self, token: str, bundle: Any, name: str, timeout: float = 30) -> Any:
        import requests

        files = {field: (filename, data) for field, filename, data in (
            ("config", "config.json", bundle.config), ("init", "init.safetensors", bundle.init),
            ("mask", "mask.safetensors", bundle.mask))}
        return requests.post(self.url("/api/v1/tickets/"), data={"name": name}, files=files, timeout=timeout,
                             headers={"Authorization": f"Bearer {token}"})

    def statuses(self) -> dict[str, tuple[str, str | None]]:
        """Ticket name -> (revision status, own verification status or None), from PostgreSQL."""
        rows = self.pg.query(
            "SELECT t.name, r.status, v.status FROM tickets_revision r JOIN tickets_ticket t ON t.id = r.ticket_id "
            "LEFT JOIN verifications_verification v ON v.revision_id = r.id AND v.kind = 'own'")
        return {name: (rev, ver) for name, rev, ver in rows}

    def duplicate_runs(self) -> int:
        return self.pg.query("SELECT count(*) - count(DISTINCT (verification_id, role, seed)) "
                             "FROM verifications_verificationrun")[0][0]
