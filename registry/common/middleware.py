"""Refuse oversized request bodies before anything reads them."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFilesSent
from django.http import HttpRequest, HttpResponse

from registry.common.errors import json_error
from registry.tickets.limits import max_request_bytes


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


class UploadLimitMiddleware:
    """413 JSON for a Content-Length over the request limit (``TICKETHUB_MAX_UPLOAD_BYTES``, or derived from
    ticketclient's Limits), decided from the header alone.

    Django reads no more than Content-Length bytes, so a body without one is read as empty. Also turns
    Django's own body-size errors (DATA_UPLOAD_MAX_MEMORY_SIZE, too many files) into JSON for the API.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return json_error("bad_content_length", f"Content-Length is not a number: {raw!r}.", 400)
        limit = max_request_bytes()
        if length > limit:
            return json_error(
                "upload_too_large",
                f"The request body is {_mib(length)} ({length} bytes); the limit is {_mib(limit)} ({limit} bytes).",
                413,
            )
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            return json_error(
                "upload_too_large",
                f"A form field is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; send tensors and "
                "config as files (multipart file parts).",
                413,
            )
        if isinstance(exception, TooManyFilesSent):
            return json_error("too_many_files", str(exception) or "Too many files in one request.", 400)
        if isinstance(exception, SuspiciousOperation) and request.path.startswith("/api/"):
            return json_error("bad_request", str(exception) or "Malformed request.", 400)
        return None
