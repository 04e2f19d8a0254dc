"""Plain JSON values from what ticketclient returns (dataclasses, tuples, numpy scalars)."""

from __future__ import annotations

import dataclasses
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as JSON-serialisable data: dataclasses and dicts to dicts, tuples to lists, numpy scalars
    to Python numbers. Anything else is returned as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    return value
