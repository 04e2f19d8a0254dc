"""Submitting, following a verification and logging in, through the library and the ``ticket`` command,
against a live registry. (The verifier's worker is replaced here by the service it calls to record a
result; the end-to-end test runs a real worker.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import ticketclient
from ticketclient import api, cli
from ticketclient.errors import BundleError, TicketNotFoundError, UnauthorizedError

from registry.tickets.models import Revision, Status
from registry.tickets.services import set_revision_status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def account(make_user, user_token):
    user = make_user("submitter")
    return user, user_token(user)


def record_status_later(name: str, status: str, delay: float = 1.5, accuracy: float | None = None) -> threading.Thread:
    """What a worker does at the end of a verification, from another thread after ``delay`` seconds."""

    def run() -> None:
        from django.db import connection

        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                revision = Revision.objects.filter(ticket__name=name).order_by("-number").first()
                if revision is not None:
                    time.sleep(delay)
                    set_revision_status(revision.pk, status, verified_accuracy=accuracy)
                    return
                time.sleep(0.1)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_login_checks_and_stores_the_token(hub_env, account, tmp_path: Path) -> None:
    user, token = account
    me = ticketclient.login(token, endpoint=hub_env["endpoint"])
    assert me["username"] == "submitter"
    assert api.token_file().read_text().strip() == token
    assert api.token_file().stat().st_mode & 0o077 == 0
    assert ticketclient.whoami(endpoint=hub_env["endpoint"])["username"] == "submitter"  # the stored token
    with pytest.raises(UnauthorizedError):
        ticketclient.login("wrong-token", endpoint=hub_env["endpoint"])
    assert cli.main(["login", "--token", "wrong-token", "--endpoint", hub_env["endpoint"]]) == cli.EXIT_ERROR
    assert cli.main(["login", "--token", token, "--endpoint", hub_env["endpoint"]]) == cli.EXIT_OK


def test_submit_status_wait(registry_tasks, hub_env, account, make_bundle, tmp_path: Path) -> None:
    _, token = account
    folder = make_bundle(density=0.3, seed=4).write(tmp_path / "bundle")
    sub = ticketclient.submit(folder, name="mlp-submitted", token=token, endpoint=hub_env["endpoint"])
    assert sub.name == "mlp-submitted" and len(sub.commit) == 40 and sub.status == "pending" and sub.created

    state = ticketclient.status("mlp-submitted", endpoint=hub_env["endpoint"])
    assert state.status == "pending" and not state.finished and state.commit == sub.commit

    record_status_later("mlp-submitted", Status.VERIFIED, accuracy=0.5)
    seen: list[str] = []
    result = ticketclient.wait("mlp-submitted", sub.commit, endpoint=hub_env["endpoint"], timeout=60,
                               progress=lambda r: seen.append(r.status))
    assert result.verified and result.verified_accuracy == pytest.approx(0.5)
    assert seen[0] == "pending" and seen[-1] == "verified"

    # now published: pullable by name
    assert ticketclient.pull("mlp-submitted", **hub_env).commit == sub.commit


def test_submit_refuses_without_a_token_or_with_a_bad_bundle(registry_tasks, hub_env, account, make_bundle,
                                                             tmp_path: Path, request_log) -> None:
    _, token = account
    folder = make_bundle(seed=5).write(tmp_path / "bundle")
    with pytest.raises(UnauthorizedError):
        ticketclient.submit(folder, name="mlp-x", token="", endpoint=hub_env["endpoint"])
    with pytest.raises(UnauthorizedError):
        ticketclient.submit(folder, name="mlp-x", token="wrong", endpoint=hub_env["endpoint"])
    (folder / "mask.safetensors").write_bytes(b"not safetensors at all")
    request_log.clear()
    with pytest.raises(BundleError):
        ticketclient.submit(folder, name="mlp-x", token=token, endpoint=hub_env["endpoint"])
    assert request_log == []  # refused locally, nothing sent
    with pytest.raises(BundleError):
        ticketclient.submit(tmp_path / "nowhere", token=token, endpoint=hub_env["endpoint"])
    with pytest.raises(TicketNotFoundError):
        ticketclient.status("no-such-ticket", endpoint=hub_env["endpoint"])


def test_cli_submit_wait_exit_status_follows_the_verification(registry_tasks, hub_env, account, make_bundle,
                                                              tmp_path: Path, monkeypatch, capsys) -> None:
    _, token = account
    monkeypatch.setenv("TICKETHUB_ENDPOINT", hub_env["endpoint"])
    monkeypatch.setenv("TICKETHUB_TOKEN", token)
    monkeypatch.setenv("TICKETHUB_CACHE", str(hub_env["cache_dir"]))

    good = make_bundle(density=0.3, seed=6).write(tmp_path / "good")
    record_status_later("mlp-good", Status.VERIFIED, accuracy=0.55)
    assert cli.main(["submit", str(good), "--name", "mlp-good", "--wait", "--timeout", "60"]) == cli.EXIT_OK
    assert "verified" in capsys.readouterr().out

    bad = make_bundle(density=0.3, seed=7).write(tmp_path / "bad")
    record_status_later("mlp-bad", Status.REJECTED)
    assert cli.main(["submit", str(bad), "--name", "mlp-bad", "--wait", "--timeout", "60"]) == cli.EXIT_REJECTED
    assert "rejected" in capsys.readouterr().out

    assert cli.main(["status", "mlp-bad", "--json"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["status"] == "rejected"

    assert cli.main(["pull", "mlp-good", "--json"]) == cli.EXIT_OK
    pulled = json.loads(capsys.readouterr().out)
    assert pulled["name"] == "mlp-good" and pulled["status"] == "verified"
    assert cli.main(["info", "mlp-good", "--offline"]) == cli.EXIT_OK
    assert "mlp-good" in capsys.readouterr().out
    assert cli.main(["pull", "mlp-bad"]) == cli.EXIT_ERROR
    assert "TicketNotVerifiedError" in capsys.readouterr().err
    assert cli.main(["compact", "mlp-good"]) == cli.EXIT_OK
    assert "parameters" in capsys.readouterr().out
