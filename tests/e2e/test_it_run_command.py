"""The README's run command, as a new user runs it: start it, watch a demo ticket verify, pull it, Ctrl-C.

The command line is read from the README's "two commands" block, so the test runs exactly what the README
tells people to run. It gets a temporary state folder and a free port through the environment (``PORT``,
``TICKETHUB_VAR_DIR``), and a shell environment without the test suite's PostgreSQL/Redis settings: the
run must work with its embedded defaults alone (SQLite, kombu's filesystem transport).

Then: wait until the REST API lists a verified demo ticket, pull it with ``ticketclient.pull`` into a fresh
cache and check its files are the committed bundle, send SIGINT to the command's process group (what Ctrl-C
in a terminal does), and check that it exits 0 and that no process of this run is left (slow: a minute or two).

A quick test checks the committed demo bundles themselves (valid, found by IMP, named by measured density).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "tickets"
VERIFY_TIMEOUT_S = float(os.environ.get("RUN_TEST_VERIFY_TIMEOUT_S", "900"))

#: The test suite's own settings; a user's shell has none of them.
_NOT_IN_A_USERS_SHELL = ("DATABASE_URL", "CELERY_BROKER_URL", "TEST_DB_SUFFIX", "VERIFIER_BROKER_PREFIX",
                         "TICKETHUB_MEDIA_ROOT", "TICKETHUB_BROKER_DIR", "TICKETHUB_STORAGE", "DJANGO_SETTINGS_MODULE",
                         "TICKETHUB_ENDPOINT", "TICKETHUB_TOKEN", "TICKETHUB_CACHE")


def readme_run_command() -> list[str]:
    """The run command of the README's "The two commands" block (the line starting with scripts/run)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    for line in block.splitlines():
        command = line.split("#", 1)[0].strip()
        if command.startswith("scripts/run"):
            return shlex.split(command)
    raise AssertionError("README.md's 'The two commands' block has no scripts/run line")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_of_run(state_dir: Path) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose environment names this run's state folder."""
    marker = f"TICKETHUB_VAR_DIR={state_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append((int(entry.name), cmdline))
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_for_verified_ticket(base: str, proc: subprocess.Popen[bytes], log: Path) -> dict:
    deadline = time.monotonic() + VERIFY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"scripts/run exited (status {proc.returncode}) early:\n{log.read_text()[-5000:]}")
        try:
            response = requests.get(f"{base}/api/v1/tickets/", params={"status": "verified"}, timeout=10)
        except requests.RequestException:
            response = None
        if response is not None and response.status_code == 200:
            results = response.json().get("results") or []
            if results:
                return results[0]
        time.sleep(2)
    raise AssertionError(f"no demo ticket verified within {VERIFY_TIMEOUT_S:.0f} s:\n{log.read_text()[-5000:]}")


def interrupt(proc: subprocess.Popen[bytes], state: Path) -> int | None:
    """SIGINT to the command's process group (Ctrl-C in a terminal); its exit status, or None when it did
    not stop within 90 s (then everything of this run is killed)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        for pid, _ in processes_of_run(state):
            os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return None


def test_demo_tickets_are_valid_imp_bundles_named_by_their_measured_density() -> None:
    """What scripts/run submits: every committed bundle passes the registry's validation, was found by IMP,
    and its name states the density measured from its mask (the names are what the catalog shows)."""
    import json

    from ticketclient import format, validation

    folders = sorted(p for p in DEMO.iterdir() if (p / "config.json").is_file())
    order = (DEMO / "ORDER").read_text().split()
    assert sorted(order) == [p.name for p in folders]
    assert sum(f.stat().st_size for p in folders for f in p.iterdir()) < 3_000_000
    tasks_seen = set()
    for folder in folders:
        files = {part: (folder / name).read_bytes()
                 for part, name in (("config", "config.json"), ("init", "init.safetensors"), ("mask", "mask.safetensors"))}
        checked = validation.validate_bundle(**files)
        density, _ = format.measure_density(format.TicketBundle.load(folder).mask)
        assert checked.density == pytest.approx(density)
        label = folder.name.rsplit("-", 1)[1].removesuffix("pct")
        assert float(label) == pytest.approx(100 * density, abs=0.5 if density >= 0.1 else 0.05), folder.name
        config = json.loads(files["config"])
        assert config["provenance"]["method"] == "imp"
        assert 0.0 < config["claims"]["test_accuracy"] <= 1.0
        tasks_seen.add(config["task"])
    # A LeNet-300-100 ticket at the paper's 15-round sparsity, and more than one task for the catalog.
    assert any(p.name.startswith("lenet-") and json.loads((p / "config.json").read_text())["provenance"]["rounds"] == 15
               for p in folders)
    assert len(tasks_seen) >= 2


@pytest.mark.slow
def test_run_command_verifies_demo_tickets_serves_them_and_stops_cleanly(tmp_path: Path) -> None:
    command = readme_run_command()
    assert command[0] == "scripts/run"
    demo_names = sorted(p.name for p in DEMO.iterdir() if (p / "config.json").is_file())
    assert demo_names, "no demo tickets committed under demo/tickets/"

    state, port = tmp_path / "state", free_port()
    env = {k: v for k, v in os.environ.items() if k not in _NOT_IN_A_USERS_SHELL and not k.startswith("PYTEST_")}
    env.update(PORT=str(port), TICKETHUB_VAR_DIR=str(state))
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        listed = wait_for_verified_ticket(base, proc, log)
        name = listed["name"]
        assert name in demo_names
        assert listed["published"] is True and listed["verified_accuracy"] is not None

        # The catalog page and the API docs answer too.
        assert requests.get(f"{base}/", timeout=10).status_code == 200
        assert requests.get(f"{base}/api/docs/", timeout=10).status_code == 200

        # Embedded defaults: the run's own SQLite database and filesystem broker, under its state folder.
        assert (state / "hub.sqlite3").is_file()
        assert (state / "broker").is_dir()
        running = processes_of_run(state)
        commands = " | ".join(cmd for _, cmd in running)
        assert "gunicorn" in commands and "celery" in commands, commands

        import ticketclient

        ticket = ticketclient.pull(name, endpoint=base, cache_dir=tmp_path / "cache")
        assert ticket.name == name
        assert ticket.source == "network" and ticket.path is not None
        assert ticket.verified_accuracy == pytest.approx(listed["verified_accuracy"])
        # Byte for byte the committed bundle that scripts/run submitted.
        for filename in ("config.json", "init.safetensors", "mask.safetensors"):
            assert sha256(ticket.path / filename) == sha256(DEMO / name / filename), filename
        assert ticket.density == pytest.approx(listed["density"])

        # The terminal showed the URLs and the verification (it polls the API every second).
        verified_line = re.compile(rf"{re.escape(name)}\s+VERIFIED")
        deadline = time.monotonic() + 30
        while not verified_line.search(log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.5)
        output = log.read_text()
        assert verified_line.search(output), output[-3000:]
        assert f"{base}/admin/" in output and f"{base}/api/docs/" in output
    finally:
        rc = interrupt(proc, state)

    assert rc is not None, f"scripts/run did not stop within 90 s of SIGINT:\n{log.read_text()[-5000:]}"
    assert rc == 0, log.read_text()[-5000:]
    time.sleep(0.5)
    left = processes_of_run(state)
    assert left == [], f"processes left after Ctrl-C: {left}"
    assert "Stopped." in log.read_text()
