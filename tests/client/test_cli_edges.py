"""The ``ticket`` command's edges: options checked before any work, pipes, names, list/search/whoami/withdraw,
readable info with the verdict in words, and a verification the hub could not finish."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import ticketclient
from django.utils import timezone
from ticketclient import api, cli

from registry.tickets.models import Revision, Status, Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(hub_env, monkeypatch):
    monkeypatch.setenv("TICKETHUB_ENDPOINT", hub_env["endpoint"])
    monkeypatch.setenv("TICKETHUB_CACHE", str(hub_env["cache_dir"]))
    return hub_env


@pytest.mark.parametrize("argv, message", [
    (["--rounds", "0"], "--rounds: must be at least 1"),
    (["--rate", "1.5"], "--rate: must be a fraction in (0, 1)"),
    (["--rate", "0"], "--rate: must be a fraction"),
    (["--output-rate", "-0.1"], "--output-rate: must be a fraction in [0, 1)"),
    (["--iterations", "0"], "--iterations: must be at least 1"),
    (["--arch", "{not json"], "--arch: not valid JSON"),
])
def test_find_refuses_a_bad_option_before_any_work(argv, message, tmp_path: Path, capsys, monkeypatch) -> None:
    from ticketclient import pruning

    monkeypatch.setattr(pruning, "find_ticket", lambda *a, **k: pytest.fail("trained before checking options"))
    with pytest.raises(SystemExit) as info:
        cli.main(["find", "--task", "mnist1d", "--out", str(tmp_path / "out"), *argv])
    assert info.value.code == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_find_refuses_a_layer_list_without_a_recipe_and_an_unknown_task(tmp_path: Path, capsys, monkeypatch) -> None:
    from ticketclient import pruning

    monkeypatch.setattr(pruning, "find_ticket", lambda *a, **k: pytest.fail("trained before checking options"))
    layers = json.dumps({"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]})
    assert cli.main(["find", "--task", "mnist1d", "--arch", layers, "--out", str(tmp_path / "o")]) == cli.EXIT_ERROR
    assert "layer list has no default recipe: pass --recipe" in capsys.readouterr().err
    assert cli.main(["find", "--task", "mnist-1d", "--out", str(tmp_path / "o")]) == cli.EXIT_ERROR
    assert "known tasks: mnist1d" in capsys.readouterr().err
    with pytest.raises(ValueError, match="layer list"):
        ticketclient.find("mnist1d", {"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]})


def test_find_uses_the_tasks_default_recipe_and_the_familys_pruning(tmp_path: Path, monkeypatch) -> None:
    from ticketclient import pruning, spec

    seen = {}
    monkeypatch.setattr(pruning, "find_ticket", lambda task, arch, recipe, **kw: seen.update(
        task=task, arch=arch, recipe=recipe, **kw) or [])
    assert cli.main(["find", "--task", "mnist1d", "--out", str(tmp_path / "o"), "--quiet"]) == cli.EXIT_OK
    assert seen["recipe"].iterations == 2_000  # the task's recipe, not the family's 50,000
    assert seen["strategy"] == pruning.Layerwise(0.2, 0.1)
    assert seen["device"] == "cpu" or seen["device"] is not None
    cli.main(["find", "--task", "cifar10", "--family", "vgg-11", "--out", str(tmp_path / "v"), "--quiet"])
    assert isinstance(seen["strategy"], pruning.Global)  # VGG/ResNet prune globally (spec.FAMILIES)
    assert seen["recipe"].iterations == spec.FAMILIES["vgg-11"].default_recipe.iterations
    cli.main(["find", "--task", "mnist1d", "--rate", "0.3", "--iterations", "50", "--out", str(tmp_path / "r"),
              "--quiet"])
    assert seen["strategy"] == pruning.Layerwise(0.3, 0.1) and seen["recipe"].iterations == 50


def test_find_help_shows_every_default_task_and_an_estimate(capsys) -> None:
    from ticketclient import tasks

    with pytest.raises(SystemExit):
        cli.main(["find", "--help"])
    out = capsys.readouterr().out
    for info in tasks.all():
        assert f"  {info.name} " in out
    assert "2,000 iterations" in out and "a training" in out and "default: 5" in out


def run_into_a_closed_pipe(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose stdout's reader is gone before it writes (``| head``)."""
    import os

    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ))
    proc.stdout.close()  # the reader goes away at once
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err.decode())


def test_status_json_into_a_closed_pipe_does_not_raise(env, publish) -> None:
    publish("mlp-piped")
    # the test can fail: a plain print into the same closed pipe does raise
    plain = run_into_a_closed_pipe("import time; time.sleep(0.5); print('x' * 100)")
    assert "BrokenPipeError" in plain.stderr
    proc = run_into_a_closed_pipe("import sys, time; time.sleep(0.5); from ticketclient import cli; "
                                  "sys.exit(cli.main(['status', 'mlp-piped', '--json']))")
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.returncode == cli.EXIT_OK


def test_submit_takes_the_name_from_config_json(env, registry_tasks, make_user, user_token, make_bundle,
                                                tmp_path: Path, monkeypatch, capsys) -> None:
    token = user_token(make_user("namer"))
    monkeypatch.setenv("TICKETHUB_TOKEN", token)
    unnamed = make_bundle(density=0.3, seed=11).write(tmp_path / "unnamed")
    assert cli.main(["submit", str(unnamed)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "no ticket name" in err and "--name" in err and "mnist1d" in err  # with a suggestion

    named = make_bundle(density=0.3, seed=12).write(tmp_path / "named")
    config = json.loads((named / "config.json").read_text())
    (named / "config.json").write_text(json.dumps({**config, "name": "mlp-from-config"}))
    assert cli.main(["submit", str(named)]) == cli.EXIT_OK
    assert "submitted mlp-from-config" in capsys.readouterr().out
    assert Ticket.objects.filter(name="mlp-from-config").exists()


def test_a_typod_name_gets_did_you_mean(env, publish, capsys) -> None:
    publish("lenet-mnist1d-3.9pct")
    assert cli.main(["pull", "lenet-mnist1d-3.8pct"]) == cli.EXIT_ERROR
    assert "Did you mean 'lenet-mnist1d-3.9pct'?" in capsys.readouterr().err
    assert cli.main(["info", "lenet-mnst1d-3.9pct"]) == cli.EXIT_ERROR
    assert "Did you mean 'lenet-mnist1d-3.9pct'?" in capsys.readouterr().err


def test_list_search_whoami_withdraw(env, publish, make_user, user_token, monkeypatch, capsys) -> None:
    owner = make_user("olga")
    publish("mlp-winner", density=0.05, accuracy=0.7, seed=1, owner=owner)
    publish("mlp-not-winning", density=0.05, accuracy=0.8, seed=2, owner=owner, winning=False)
    publish("lenet-other", density=0.1, accuracy=0.6, seed=3, task="digits")

    names = [t["name"] for t in ticketclient.list_tickets(endpoint=env["endpoint"])]
    assert names == ["mlp-not-winning", "mlp-winner", "lenet-other"]  # highest verified accuracy first
    assert [t["name"] for t in ticketclient.list_tickets(winning=True, endpoint=env["endpoint"])] == \
        ["mlp-winner", "lenet-other"]
    assert [t["name"] for t in ticketclient.list_tickets(winning=False, endpoint=env["endpoint"])] == \
        ["mlp-not-winning"]
    assert [t["name"] for t in ticketclient.list_tickets(task="digits", endpoint=env["endpoint"])] == ["lenet-other"]

    assert cli.main(["list", "--task", "mnist1d", "--winning"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "mlp-winner" in out and "mlp-not-winning" not in out and "70.00%" in out
    assert cli.main(["search", "lenet", "--json"]) == cli.EXIT_OK
    assert [t["name"] for t in json.loads(capsys.readouterr().out)] == ["lenet-other"]

    monkeypatch.setenv("TICKETHUB_TOKEN", user_token(owner))
    assert cli.main(["whoami"]) == cli.EXIT_OK
    assert capsys.readouterr().out.startswith("olga on ")
    monkeypatch.setenv("TICKETHUB_TOKEN", user_token(make_user("mallory")))
    assert cli.main(["withdraw", "mlp-winner"]) == cli.EXIT_ERROR  # not the owner
    monkeypatch.setenv("TICKETHUB_TOKEN", user_token(owner))
    assert cli.main(["withdraw", "mlp-winner", "--reason", "superseded"]) == cli.EXIT_OK
    assert "withdrew mlp-winner" in capsys.readouterr().out
    assert Ticket.objects.get(name="mlp-winner").status == Status.WITHDRAWN


def test_info_is_readable_and_says_the_verdict_in_words(env, publish, capsys) -> None:
    from registry.verifications.models import Verification

    revision, _ = publish("mlp-verdict", density=0.05, accuracy=0.62)
    Verification.objects.filter(revision=revision).update(
        outcome="winning", matching=True, beats_controls=True,
        decision={"verified": True, "ticket_statistic": 0.62, "dense_statistic": 0.63, "dense_gap": -0.01,
                  "tolerance": 0.02, "control_statistics": {"reinit": 0.5, "random_mask": 0.48}})
    assert cli.main(["info", "mlp-verdict"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "verdict:          winning ticket" in out
    assert "matches the dense network: ticket 62.00% vs dense 63.00%, -1.00 points" in out
    assert "beats the controls: random_mask 48.00%, reinit 50.00%" in out
    assert "units=None" not in out and "{'" not in out  # no raw dumps
    assert "layers.1  linear" in out

    publish("mlp-plain", density=0.05, accuracy=0.6, seed=4, winning=False)  # an old record: no outcome
    assert cli.main(["info", "mlp-plain"]) == cli.EXIT_OK
    assert "verdict:          verified, not winning" in capsys.readouterr().out
    assert repr(ticketclient.pull("mlp-plain", **env).compact()).count("\n") == 0  # a short repr


def test_submit_wait_stops_on_a_failed_verification_and_shows_only_the_submitters_reason(
        env, registry_tasks, make_user, user_token, make_bundle, tmp_path: Path, monkeypatch, capsys) -> None:
    import threading
    import time

    from django.db import connection

    from registry.verifications.models import Verification

    monkeypatch.setenv("TICKETHUB_TOKEN", user_token(make_user("unlucky")))
    folder = make_bundle(density=0.3, seed=13).write(tmp_path / "b")

    def fail_later() -> None:
        try:
            for _ in range(300):
                revision = Revision.objects.filter(ticket__name="mlp-failed").first()
                if revision is not None:
                    time.sleep(1.0)
                    Verification.objects.update_or_create(
                        revision=revision, kind="own", defaults={
                            "task": "mnist1d", "status": "failed", "outcome": "failed",
                            "reason": "The hub could not finish this verification; it will be retried.",
                            "error_detail": "FileNotFoundError: /srv/secret/datasets/mnist1d.pkl (operator only)",
                            "finished_at": timezone.now()})
                    return
                time.sleep(0.1)
        finally:
            connection.close()

    threading.Thread(target=fail_later, daemon=True).start()
    started = time.monotonic()
    code = cli.main(["submit", str(folder), "--name", "mlp-failed", "--wait", "--timeout", "120"])
    assert code == cli.EXIT_ERROR and time.monotonic() - started < 60
    out = capsys.readouterr().out
    assert "verification failed" in out and "could not finish" in out and "retried" in out
    assert "/srv/secret" not in out and "FileNotFoundError" not in out

    result = api.status("mlp-failed")
    assert result.failed and result.finished and not result.verified
    assert cli.main(["status", "mlp-failed"]) == cli.EXIT_OK
    assert "/srv/secret" not in capsys.readouterr().out
