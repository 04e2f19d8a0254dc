"""Counters of the fuzz tests (cases run, 5xx seen) and the example budget (``TICKETHUB_FUZZ_EXAMPLES``)."""

from __future__ import annotations

import os
from collections import Counter

#: cases run and 5xx seen, per fuzzer (printed by tests/fuzz/conftest.py at the end of the run)
FUZZ_STATS: Counter[str] = Counter()


def scaled(default: int) -> int:
    """``default`` examples, scaled by ``TICKETHUB_FUZZ_EXAMPLES`` (percent of the default run)."""
    percent = int(os.environ.get("TICKETHUB_FUZZ_EXAMPLES", "100") or "100")
    return max(1, default * percent // 100)


def count(fuzzer: str, status: int | None = None) -> None:
    FUZZ_STATS[f"{fuzzer} cases"] += 1
    if status is not None and status >= 500:
        FUZZ_STATS[f"{fuzzer} 5xx"] += 1
