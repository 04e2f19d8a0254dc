"""Fuzzing fixtures: throttles opened wide (the fuzzers measure answers, not rates), a counter of cases and
of 5xx answers printed at the end of the run.

``TICKETHUB_FUZZ_EXAMPLES=N`` multiplies the default number of examples of every fuzz test by
``N / 100`` (default 100: the suite's ~1,000+ cases in about two minutes); the long run is documented in
tests/fuzz/README.md.
"""

from __future__ import annotations

import pytest
from fuzzstats import FUZZ_STATS


@pytest.fixture
def open_throttles(settings):
    from rest_framework.throttling import SimpleRateThrottle

    old = SimpleRateThrottle.THROTTLE_RATES
    wide = {key: "1000000/min" for key in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
    SimpleRateThrottle.THROTTLE_RATES = wide
    settings.TICKETHUB_MAX_QUEUED_PER_USER = 1_000_000
    yield
    SimpleRateThrottle.THROTTLE_RATES = old


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if FUZZ_STATS:
        terminalreporter.write_sep("-", "fuzzing")
        for key in sorted(FUZZ_STATS):
            terminalreporter.write_line(f"{key}: {FUZZ_STATS[key]}")


@pytest.fixture
def wsgi_in_test_transaction():
    """Calls to the WSGI app keep the test's database connection (as django.test.Client does): Django
    closes connections at each request's start and end, which would end the test transaction."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
