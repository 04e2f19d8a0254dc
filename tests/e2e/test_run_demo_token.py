"""scripts/run keeps the demo account's API token across restarts of the same state folder (a stored
``ticket login`` keeps working), and replaces it only when it is no longer active."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]


def load_run_hub():
    spec = importlib.util.spec_from_file_location("run_hub", ROOT / "scripts" / "run_hub.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_hub"] = module
    spec.loader.exec_module(module)
    return module


def test_the_demo_token_is_stable_across_restarts_of_one_state_folder(tmp_path: Path) -> None:
    run_hub = load_run_hub()
    state = tmp_path / "state"
    state.mkdir()
    opts = SimpleNamespace(state_dir=state, host="127.0.0.1")
    env = run_hub.child_env(opts)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    sup = SimpleNamespace(opts=opts, env=env)

    first = run_hub.ensure_demo_account(sup)
    second = run_hub.ensure_demo_account(sup)  # a restart of the same state folder
    assert second.token == first.token and second.password == first.password
    assert json.loads((state / "credentials.json").read_text())["token"] == first.token

    # a token revoked meanwhile (or a credentials file from another database) is replaced
    revoke = ("import django, sys; django.setup(); from registry.accounts.models import ApiToken; "
              "ApiToken.objects.update(revoked_at='2020-01-01T00:00:00Z')")
    subprocess.run([sys.executable, "-c", revoke], cwd=ROOT, env=env, check=True, capture_output=True)
    third = run_hub.ensure_demo_account(sup)
    assert third.token != first.token
    assert run_hub.ensure_demo_account(sup).token == third.token
