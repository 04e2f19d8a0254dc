"""Production settings pass ``manage.py check --deploy``; no secret key is written in the source."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_for_production_settings(tmp_path):
    env = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(60), "DJANGO_HTTPS": "1", "DJANGO_DEBUG": "0",
           "DJANGO_ALLOWED_HOSTS": "hub.example.org", "TICKETHUB_VAR_DIR": str(tmp_path)}
    r = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no issues" in r.stdout


def test_production_refuses_to_start_without_a_secret_from_the_environment(tmp_path):
    r = _manage("check", env={"DJANGO_HTTPS": "1", "TICKETHUB_VAR_DIR": str(tmp_path)})
    assert r.returncode != 0 and "DJANGO_SECRET_KEY must be set" in r.stderr


def test_the_local_run_generates_its_key_once_into_the_var_dir(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    env = {"TICKETHUB_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "registry.settings"}
    keys = [_manage("shell", "-c", code, env=env).stdout.strip() for _ in range(2)]
    assert keys[0] == keys[1] and len(keys[0]) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert "insecure" not in keys[0]
    source = (ROOT / "registry" / "settings.py").read_text()
    assert "insecure-local-development-key" not in source
