"""Bundle limits from ``ticketclient.validation.Limits.from_env()`` (the one definition of the limits)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def get_limits() -> Any:
    from ticketclient import validation

    return validation.Limits.from_env()


def clear_limits_cache() -> None:
    """Re-read the limits from the environment at the next use (tests that change them call this)."""
    get_limits.cache_clear()


#: Room for the multipart boundaries, part headers and the small form fields.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


def max_request_bytes() -> int:
    """The largest request body accepted: ``TICKETHUB_MAX_UPLOAD_BYTES``, or what the limits allow."""
    from django.conf import settings

    if settings.TICKETHUB_MAX_UPLOAD_BYTES is not None:
        return int(settings.TICKETHUB_MAX_UPLOAD_BYTES)
    limits = get_limits()
    return limits.max_config_bytes + 2 * limits.max_file_bytes + MULTIPART_OVERHEAD_BYTES


def max_part_bytes(part: str) -> int:
    """The size limit of one uploaded file: ``config`` or a tensor file (``init``, ``mask``)."""
    limits = get_limits()
    return limits.max_config_bytes if part == "config" else limits.max_file_bytes
