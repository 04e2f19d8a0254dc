"""Refuse oversized and malformed requests before anything reads them; JSON errors under /api/."""

from __future__ import annotations

import logging
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
        from registry.common.errors import ApiError

        if isinstance(exception, ApiError) and exception.code == "file_too_large":
            # raised while a part streams in (registry/tickets/uploads.py), also under plain Django views
            if request.path.startswith("/api/"):
                return json_error(exception.code, str(exception.detail), exception.status_code, exception.field)
            return HttpResponse(str(exception.detail), status=exception.status_code, content_type="text/plain")
        if isinstance(exception, TooManyFilesSent):
            return json_error("too_many_files", str(exception) or "Too many files in one request.", 400)
        if isinstance(exception, SuspiciousOperation) and request.path.startswith("/api/"):
            return json_error("bad_request", str(exception) or "Malformed request.", 400)
        return None


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _bad_text(text: str) -> str | None:
    from ticketclient.format import bad_character

    return bad_character(text)


class RequestSanityMiddleware:
    """Refuse, before any view or database sees them, requests no view could answer sensibly:

    - a control character (NUL...) or lone surrogate in the URL path: 404 (no resource has such a name);
    - one in a query parameter name or value: 400 (PostgreSQL cannot even compare such a string);
    - a body sent with ``Transfer-Encoding: chunked`` and no Content-Length on POST/PUT/PATCH: 411 (WSGI
      would read it as empty and the view would answer a misleading "no config.json").
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.http import HttpResponseBadRequest, HttpResponseNotFound

        if _bad_text(request.path_info):
            if _is_api(request):
                return json_error("not_found", "No such resource: the URL path contains a control character.", 404)
            return HttpResponseNotFound("Not found: the URL path contains a control character.")
        for key, values in request.GET.lists():
            bad = _bad_text(key) or next((b for b in map(_bad_text, values) if b), None)
            if bad:
                detail = f"The query parameter {key!r:.40} contains the control character {bad}."
                if _is_api(request):
                    return json_error("bad_character", detail, 400, field=None if _bad_text(key) else key)
                return HttpResponseBadRequest(detail)
        if (request.method in ("POST", "PUT", "PATCH") and not request.META.get("CONTENT_LENGTH")
                and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()):
            return json_error("length_required", "Send the request with a Content-Length header; chunked "
                              "request bodies are not accepted (uploads are size-checked before they are read).",
                              411)
        return self.get_response(request)


_STATUS_CODES = {400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 410: "gone", 411: "length_required",
                 413: "upload_too_large", 415: "unsupported_media_type", 429: "throttled", 500: "server_error",
                 502: "bad_gateway", 503: "unavailable"}


class ApiJsonErrorsMiddleware:
    """Under /api/, every error answer is the JSON ``{error, field, detail}``, also with DEBUG on.

    An exception a view did not handle is logged with its traceback (``django.request``) and answered with a
    JSON 500 that reveals nothing internal; an HTML error page (Django's 404/405/500, debug pages) is
    replaced by the JSON shape with the same status.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not _is_api(request) or response.status_code < 400:
            return response
        if "json" in response.get("Content-Type", ""):
            return response
        status = response.status_code
        code = _STATUS_CODES.get(status, "error")
        detail = {404: f"No such resource: {request.path}",
                  405: f"Method {request.method} is not allowed on {request.path}.",
                  500: "Internal server error; it was logged and will be looked at."}.get(
            status, f"The request failed ({status}).")
        converted = json_error(code, detail, status)
        for header in ("Allow", "Retry-After"):
            if header in response:
                converted[header] = response[header]
        return converted

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_api(request) or isinstance(exception, RequestDataTooBig | SuspiciousOperation):
            return None
        from django.http import Http404

        if isinstance(exception, Http404):
            return json_error("not_found", f"No such resource: {request.path}", 404)
        logging.getLogger("django.request").error(
            "Internal Server Error: %s", request.path, exc_info=exception,
            extra={"status_code": 500, "request": request},
        )
        return json_error("server_error", "Internal server error; it was logged and will be looked at.", 500)
