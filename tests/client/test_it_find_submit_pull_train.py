"""The whole path a user walks: ``ticket find`` on mnist1d -> ``ticket submit --wait`` (a real verifier
worker retrains it) -> ``ticketclient.pull`` -> ``ticket.train()`` reaches the verified accuracy within the
policy's tolerance. The CLI runs as real subprocesses against a live registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ticketclient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(900)]

ARCH = {"family": "mlp", "args": {"hidden": [64, 32]}}


def run_cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ticketclient.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_find_submit_wait_pull_train(live_server, registry_tasks, hub_env, make_user, user_token, verifier_worker,
                                     tmp_path: Path) -> None:
    token = user_token(make_user("finder"))
    env = {**os.environ, "TICKETHUB_ENDPOINT": live_server.url, "TICKETHUB_TOKEN": token,
           "TICKETHUB_CACHE": str(hub_env["cache_dir"]), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "find"

    found = run_cli("find", "--task", "mnist1d", "--arch", json.dumps(ARCH), "--rounds", "2",
                    "--iterations", "600", "--out", str(out), "--quiet", env=env)
    assert found.returncode == 0, found.stderr[-3000:]
    rounds = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(rounds) >= 2
    bundle = rounds[-1]
    assert {"config.json", "init.safetensors", "mask.safetensors"} <= {p.name for p in bundle.iterdir()}

    worker = verifier_worker()
    submitted = run_cli("submit", str(bundle), "--name", "mlp-mnist1d-e2e", "--wait", "--timeout", "600", env=env)
    assert submitted.returncode == 0, f"{submitted.stdout}\n{submitted.stderr[-3000:]}\n{worker.log[-3000:]}"
    assert "verified" in submitted.stdout

    ticket = ticketclient.pull("mlp-mnist1d-e2e", **hub_env)
    assert ticket.status == "verified" and ticket.verification["verified"] is True
    # one local run against the verifier's median of 3: the policy's tolerance for a one-run figure
    tolerance = float(ticket.verification["policy"]["tolerance"])
    assert tolerance >= float(ticket.verification["decision"]["tolerance"])
    result = ticket.train(progress=False)
    assert abs(result.final_test_accuracy - ticket.verified_accuracy) <= tolerance, (
        result.final_test_accuracy, ticket.verified_accuracy, tolerance)

    # every recorded run reproduces locally from the seeds the verifier drew and published afterwards
    record = ticketclient.status("mlp-mnist1d-e2e", endpoint=live_server.url).record
    assert record["seeds"] and len(record["seeds"]["data_order"]) == 3
    reproduced = run_cli("reproduce", "mlp-mnist1d-e2e", "--run", "1", "--json", env=env)
    assert reproduced.returncode == 0, reproduced.stderr[-3000:]
    side_by_side = json.loads(reproduced.stdout)
    recorded = next(r for r in record["runs"] if r["role"] == "ticket" and r["seed"] == 1)
    assert side_by_side["data_seed"] == recorded["data_seed"] == record["seeds"]["data_order"][1]
    assert side_by_side["recorded_accuracy"] == recorded["final_test_accuracy"]
    # the stacked engine batches the same arithmetic: at most a test example or two apart
    assert abs(side_by_side["difference"]) <= 0.002, side_by_side

    from ticketclient.reproduce import reproduce

    control = reproduce("mlp-mnist1d-e2e", run=0, role="reinit", endpoint=live_server.url, token=token,
                        progress=False)
    assert control.control_seed == record["seeds"]["reinit"][0]
    assert abs(control.difference) <= 0.002, control.describe()
    assert "recorded" in control.describe() and "local" in control.describe()
