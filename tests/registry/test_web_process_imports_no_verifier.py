"""The web process never imports the verifier (nor torch), so it never builds the worker's Celery app:
django.setup(), the URLconf and every registry app's views and serializers, in a fresh interpreter; and no
registry module has an ``import verifier`` anywhere (function-local imports included)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib, sys
import django
django.setup()
from django.apps import apps
import registry.urls
from django.urls import get_resolver
get_resolver().url_patterns
for app in apps.get_app_configs():
    if not app.name.startswith("registry."):
        continue
    for part in ("views", "serializers", "api", "selectors", "services"):
        try:
            importlib.import_module(f"{app.name}.{part}")
        except ModuleNotFoundError as e:
            if e.name != f"{app.name}.{part}":
                raise
from registry.verifications.config import current_policy
current_policy().text()
leaked = sorted(m for m in sys.modules if m in ("torch", "verifier") or m.startswith(("torch.", "verifier.")))
print("LEAKED", leaked)
sys.exit(1 if leaked else 0)
"""


def test_importing_the_web_process_imports_neither_torch_nor_verifier():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry.settings"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "LEAKED []" in proc.stdout


def test_no_registry_module_imports_verifier():
    offenders = []
    for path in sorted((ROOT / "registry").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if n == "verifier" or n.startswith("verifier.")]
    assert offenders == []
