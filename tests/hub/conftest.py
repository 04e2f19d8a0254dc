"""Hub-protocol fixtures: the catalog's row helpers (tests/catalog/catalog_rows.py), a task, an empty cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "catalog"))

from catalog_rows import make_task  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_cache(settings):
    """The manifests, document sizes and model cards live in Django's cache; every test starts without them,
    and without the process's memo in front of it (off here, so clearing the cache makes a route cold)."""
    from django.core.cache import cache

    from registry.hub.documents import clear_memo

    settings.TICKETHUB_HUB_MEMO_SECONDS = 0
    clear_memo()
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def task(db):
    return make_task("mnist1d", baseline=0.62)
