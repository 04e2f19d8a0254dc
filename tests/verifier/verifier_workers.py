"""Real ``celery worker`` processes for the verifier tests, against the test database and Redis.

Each test session uses its own Redis key prefix (kombu's ``global_keyprefix``), so parallel sessions on one
Redis never consume each other's messages; the worker gets the pytest-django test database through
``DATABASE_URL`` and the test's storage location through ``TICKETHUB_MEDIA_ROOT``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from process_group import GroupProcess

REDIS_URL = os.environ.get("TEST_CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"

#: Fast fault-tolerance settings for tests: an unacknowledged message of a lost worker is handed out again
#: after 8 s (checked every second), and a heartbeat older than 4 s counts as a dead worker.
FAST_RECOVERY_ENV = {
    "VERIFIER_VISIBILITY_TIMEOUT": "8",
    "VERIFIER_RESTORE_INTERVAL": "1",
    "VERIFIER_HEARTBEAT_STALE_S": "4",
}


def worker_environment(broker_prefix: str, **overrides: str) -> dict[str, str]:
    """The environment of a worker that sees this test's database (pytest-django's test database),
    file storage and broker key prefix, with the fast-recovery settings; ``overrides`` come last."""
    from django.core.files.storage import default_storage
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(FAST_RECOVERY_ENV)
    env.update({
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "VERIFIER_BROKER_PREFIX": broker_prefix,
        "PYTHONUNBUFFERED": "1",
    })
    location = getattr(default_storage, "location", None)
    if location:
        env["TICKETHUB_MEDIA_ROOT"] = str(location)
        env["TICKETHUB_STORAGE"] = "fs"
    env.update(overrides)
    return env


class WorkerProcess(GroupProcess):
    """One ``celery -A verifier worker -Q verify --concurrency 1 -P prefork`` in its own process group."""

    stop_timeout_s = 20.0

    def __init__(self, env: dict[str, str], log_path: Path, name: str) -> None:
        cmd = [
            sys.executable, "-m", "celery", "-A", "verifier", "worker", "-Q", env.get("VERIFIER_QUEUE", "verify"),
            "--concurrency", "1", "-P", "prefork", "--loglevel", "INFO", "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        super().__init__(cmd, env, log_path)


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.25,
             workers: list[WorkerProcess] | None = None) -> object:
    """Poll until ``predicate()`` is truthy; on timeout fail with the workers' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for w in workers or []:
            if not w.alive():
                raise AssertionError(f"worker exited (rc {w.proc.returncode}) while waiting for {what}:\n{w.log[-4000:]}")
        time.sleep(interval)
    logs = "\n".join(w.log[-4000:] for w in workers or [])
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


def purge_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


class TcpProxy:
    """A TCP forwarder to PostgreSQL that a test can take down and bring back (a database restart, as the
    worker sees it: connections drop and new ones are refused, then accepted again)."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        import socket

        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server = None
        self._sockets: list = []

    def start(self) -> None:
        import socket
        import threading

        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def stop(self) -> None:
        import socket

        if self._server is not None:
            try:  # wake the thread blocked in accept(): close() alone leaves the socket listening
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self._sockets.clear()
