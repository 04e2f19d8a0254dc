"""The web process never imports torch: load every registry module and validate a bundle, in a fresh
interpreter, and check sys.modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib, pkgutil, sys
import django
django.setup()
import registry
from django.urls import get_resolver
get_resolver().url_patterns  # the whole URLconf, every app's views
for mod in pkgutil.walk_packages(registry.__path__, "registry."):
    if ".migrations" in mod.name or mod.name.endswith(".tests"):
        continue
    importlib.import_module(mod.name)
sys.path.insert(0, "tests")
from factories import make_bundle
from registry.tickets.services import BundleUpload, validate_upload
b = make_bundle()
v = validate_upload(BundleUpload(config=b.config, init=b.init, mask=b.mask))
assert 0 < v.density < 1
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH_MODULES", leaked)
sys.exit(1 if leaked else 0)
"""


def test_registry_and_validation_do_not_import_torch():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry.settings"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "TORCH_MODULES []" in proc.stdout
