"""Exceptions of the verification services (Django-free, so the verifier can import them at module level)."""

from __future__ import annotations


class AnotherWorkerIsRunning(Exception):
    """A second delivery found the verification held by a worker whose heartbeat is fresh."""

    def __init__(self, retry_in_s: float) -> None:
        self.retry_in_s = retry_in_s
        super().__init__(f"another worker holds this verification; look again in {retry_in_s:.0f}s")
