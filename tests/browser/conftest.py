"""Browser fixtures: Debian's headless Chromium driven by Playwright against pytest-django's live server.

Never downloads a browser: ``scripts/browser`` apt-installs ``chromium``; Playwright launches it from
``/usr/bin/chromium``. Screenshots go to ``test-artifacts/browser/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# The catalog's row helpers (tests/catalog/catalog_rows.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "catalog"))
# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between page
# actions are ordinary synchronous calls, which Django would otherwise refuse under a running loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("TICKETHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(autouse=True)
def _broker_goes_nowhere(settings):
    """Submissions made here enqueue their verification on kombu's in-memory transport: no worker is
    meant to run them, and nothing lands in a shared Redis queue."""
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"No Chromium at {CHROMIUM}: run scripts/browser (apt-get install chromium) first.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (cookies, clipboard permission) on the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.js_errors = errors
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def shot():
    """``shot(page, "name")`` saves a full-page screenshot to test-artifacts/browser/name.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(tab, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take
