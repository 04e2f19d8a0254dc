"""The per-file size limits, enforced while a multipart upload streams in (not after it was read whole).

:class:`PartLimitUploadHandler` runs first in ``FILE_UPLOAD_HANDLERS``: it counts the bytes of each file
part as they arrive and, as soon as a part passes its limit (``config``: ``max_config_bytes``; ``init``,
``mask`` and anything else: ``max_file_bytes``), raises a 413 :class:`ApiError` naming the part, so the rest
of the body is never read. The request-level limit stays with ``UploadLimitMiddleware`` (Content-Length).
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler

from registry.common.errors import ApiError
from registry.tickets.limits import max_part_bytes

_FILENAMES = {"config": "config.json", "init": "init.safetensors", "mask": "mask.safetensors"}


class PartLimitUploadHandler(FileUploadHandler):
    """Refuse a file part the moment it grows past its limit; pass every chunk on unchanged otherwise."""

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        self._received = 0
        self._limit = max_part_bytes(field_name)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self._received += len(raw_data)
        if self._received > self._limit:
            name = _FILENAMES.get(self.field_name, self.field_name)
            raise ApiError(
                "file_too_large",
                f"{name} is over the limit of {self._limit:,} bytes (refused after {self._received:,} bytes, "
                f"without reading the rest).",
                field=str(self.field_name)[:40], status_code=413,
            )
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handlers (memory, then temporary file) build the UploadedFile
