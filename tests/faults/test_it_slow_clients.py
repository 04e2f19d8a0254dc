"""Slow clients against the production front door: nginx (docker/nginx.conf, as shipped) buffering in front
of gunicorn (2 processes x 4 threads). 60 connections each send one byte every 2 s (slow headers and slow
bodies); meanwhile ``/healthz`` and a ticket page must answer within 1 s through nginx (issue 12, finding 4
and build item 2). The same load sent straight to gunicorn is measured too, to show what nginx prevents.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from factories import default_config, make_bundle
from faults_stack import ROOT, Proc, free_port, port_open, wait_until

pytestmark = [pytest.mark.timeout(300)]

SLOW_CONNECTIONS = 60
BYTE_EVERY_S = 2.0
PHASE_S = 14.0
ANSWER_WITHIN_S = 1.0


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def front_door_config(upstream_port: int, port: int, runtime: Path) -> str:
    """docker/nginx.conf with only its addresses and paths rewritten for a loopback run."""
    text = (ROOT / "docker" / "nginx.conf").read_text()
    user = "user root;" if os.geteuid() == 0 else ""
    replacements = {
        "user www-data;": user,
        "pid /run/nginx.pid;": f"pid {runtime}/nginx.pid;",
        "server web:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 8080;": f"listen 127.0.0.1:{port};",
        "access_log /dev/stdout;": "access_log off;",
        "error_log /dev/stderr warn;": f"error_log {runtime}/error.log warn;",
    }
    for old, new in replacements.items():
        assert old in text, f"docker/nginx.conf no longer has {old!r}; update this test with it"
        text = text.replace(old, new)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (runtime / name).mkdir(parents=True, exist_ok=True)
        text = text.replace(f"/var/lib/nginx/{name};", f"{runtime}/{name};")
    return text


@pytest.fixture
def front_door(stack, tmp_path):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (scripts/services installs it with apt-get)")
    runtime = tmp_path / "nginx"
    runtime.mkdir()
    port = free_port()
    conf = runtime / "nginx.conf"
    conf.write_text(front_door_config(stack.web_port, port, runtime))
    check = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = Proc([binary, "-c", str(conf), "-g", "daemon off;"], dict(os.environ), runtime / "stdout.log")
    try:
        wait_until(lambda: port_open(port), 20, "nginx to listen")
        yield port
    finally:
        proc.stop()


class SlowClients:
    """Connections that dribble a request one byte every ``BYTE_EVERY_S`` (half slow headers, half slow bodies)."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _payload(self, i: int) -> bytes:
        if i % 2:
            return b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 400 + b"\r\n\r\n"
        head = b"POST /api/v1/tickets/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 400\r\n\r\n"
        return head + b"b" * 400

    def _run(self) -> None:
        conns = []
        for i in range(self.count):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.setblocking(False)
            payload = self._payload(i)
            # slow bodies send their headers at once (the body is what dribbles)
            sent = payload.index(b"\r\n\r\n") + 4 if i % 2 == 0 else 0
            if sent:
                s.send(payload[:sent])
            conns.append([s, payload, sent, True])
        while not self._stop.wait(BYTE_EVERY_S):
            for c in conns:
                s, payload, sent, open_ = c
                if not open_ or sent >= len(payload):
                    continue
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                except OSError:
                    c[3] = False
                    self.closed_by_server += 1
                    continue
                try:
                    s.send(payload[sent:sent + 1])
                    c[2] = sent + 1
                except OSError:
                    c[3] = False
                    self.closed_by_server += 1
        for s, *_ in conns:
            s.close()

    def __enter__(self) -> SlowClients:
        self._thread.start()
        time.sleep(1.0)  # every connection open and stalled
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def probe(port: int, paths: list[str], seconds: float) -> list[tuple[str, float | None, int]]:
    """GET each path in turn for ``seconds``: (path, seconds to answer or None on timeout, status)."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in paths:
            started = time.monotonic()
            try:
                r = requests.get(f"http://127.0.0.1:{port}{path}", timeout=3, headers={"Connection": "close"})
                out.append((path, time.monotonic() - started, r.status_code))
            except requests.RequestException:
                out.append((path, None, 0))
        time.sleep(0.5)
    return out


def test_fifty_slow_clients_do_not_stall_the_front_door(stack, token, front_door, record_property):
    config = default_config("mnist1d", {"family": "mlp", "args": {"hidden": [32, 16]}}, accuracy=0.2)
    name = "slow-client-page"
    if name not in stack.statuses():
        assert stack.submit(token, make_bundle(config=config, seed=77), name).status_code == 201
    paths = ["/healthz", f"/tickets/{name}/", f"/api/v1/tickets/{name}/"]
    for path in paths:  # warm: each answers 200 through nginx
        assert requests.get(f"http://127.0.0.1:{front_door}{path}", timeout=10).status_code == 200, path

    with SlowClients(stack.web_port, SLOW_CONNECTIONS):
        direct = probe(stack.web_port, paths[:1], 5.0)
    direct_ok = sum(1 for _, t, code in direct if t is not None and t <= ANSWER_WITHIN_S and code == 200)

    with SlowClients(front_door, SLOW_CONNECTIONS) as slow:
        proxied = probe(front_door, paths, PHASE_S)
    slowest = max((t or 99.0) for _, t, _ in proxied)
    late = [(p, t, c) for p, t, c in proxied if t is None or t > ANSWER_WITHIN_S or c != 200]
    print(f"\n[slow clients] {SLOW_CONNECTIONS} connections, one byte every {BYTE_EVERY_S:.0f} s for {PHASE_S:.0f} s: "
          f"through nginx {len(proxied) - len(late)}/{len(proxied)} answered 200 within {ANSWER_WITHIN_S:.0f} s "
          f"(slowest {slowest:.3f} s), nginx closed {slow.closed_by_server} stalled connections; straight to "
          f"gunicorn {direct_ok}/{len(direct)}")
    record_property("slow_clients_slowest_s", round(slowest, 3))
    record_property("slow_clients_direct_ok", f"{direct_ok}/{len(direct)}")
    assert late == [], f"{len(late)} of {len(proxied)} requests were late or failed behind nginx: {late[:5]}"
    assert len(proxied) >= 3 * len(paths)
