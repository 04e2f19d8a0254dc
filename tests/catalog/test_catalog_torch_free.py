"""Rendering every catalog page and badge (plots, the architecture table from a real mask, the policy
text) in a fresh web interpreter never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from catalog_rows import make_ticket

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys
import django
django.setup()
from django.test import Client
client = Client()
urls = sys.argv[1:]
for url in urls:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    print("OK", url, len(response.content))
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH_MODULES", leaked, "matplotlib" in sys.modules)
sys.exit(1 if leaked else 0)
"""


@pytest.mark.django_db(transaction=True)
def test_rendering_pages_plots_and_badges_does_not_import_torch(settings, owner, task, make_bundle,
                                                                 isolated_storage):
    from registry.tickets.services import BundleUpload, set_revision_status, submit_bundle

    bundle = make_bundle(task="mnist1d", family="mlp", hidden=[32, 16], density=0.2, seed=0)
    submission = submit_bundle(user=owner, upload=BundleUpload(config=bundle.config, init=bundle.init,
                                                               mask=bundle.mask), name="real-mlp-ticket")
    set_revision_status(submission.revision, "verified", verified_accuracy=0.6)
    verified = make_ticket("row-ticket", task=task, owner=owner)
    verification = verified.latest_revision.verifications.get()
    urls = ["/", "/tickets/", "/tickets/?verified=on&sort=accuracy", "/tasks/", "/tasks/mnist1d/",
            "/tasks/mnist1d/frontier.svg", "/tickets/real-mlp-ticket/", "/tickets/row-ticket/",
            f"/tickets/row-ticket/curves/{verification.pk}.svg", "/tickets/row-ticket/progress.json",
            "/badges/real-mlp-ticket.svg", "/badges/real-mlp-ticket.json", "/submit/", "/signup/", "/login/"]
    db = settings.DATABASES["default"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry.settings",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "TICKETHUB_MEDIA_ROOT": str(isolated_storage), "TICKETHUB_STORAGE": "fs"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *urls], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    assert proc.stdout.count("OK ") == len(urls)
    assert "TORCH_MODULES [] True" in proc.stdout  # matplotlib drew, torch stayed out
