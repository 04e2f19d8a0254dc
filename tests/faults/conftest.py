"""Fixtures of the fault tests: one production-like stack (private PostgreSQL + Redis, gunicorn, workers)
for the whole session, started only when a fault test runs."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator

import pytest
from faults_stack import Stack, missing_tools


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    why = missing_tools()
    if why:
        pytest.skip(f"fault tests need private PostgreSQL and Redis servers: {why}")
    s = Stack(tmp_path_factory.mktemp("stack"))
    # a SIGTERM (CI's or a timeout's) must still stop the servers this fixture started in their own sessions
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        s.start()
        s.start_web()
        s.start_sweeper()
        yield s
    finally:
        s.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def token(stack: Stack) -> str:
    return stack.create_user("fault-tester")


def pytest_terminal_summary(terminalreporter) -> None:
    """The figures the fault and slow-client tests recorded (recovery times, errors), shown without ``-s``."""
    lines = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "") == "call" and "tests/faults/" in report.nodeid and report.user_properties:
                figures = ", ".join(f"{k}={v}" for k, v in report.user_properties)
                lines.append(f"{report.nodeid.rsplit('::', 1)[-1]} ({outcome}): {figures}")
    if lines:
        terminalreporter.section("fault and slow-client figures")
        for line in lines:
            terminalreporter.write_line(line)
