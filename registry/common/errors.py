"""One JSON shape for every API error: ``{"error": code, "field": name|null, "detail": sentence}``.

``error`` is a short stable slug (``not_authenticated``, ``name_taken``, ``shape_mismatch``...), ``field``
names the form field, config field or tensor at fault when there is one, and ``detail`` is written for a
person. Serializer validation errors also carry ``fields``: every invalid field and its messages.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """An API error with an explicit code, field and status."""

    def __init__(self, code: str, detail: str, *, field: str | None = None, status_code: int = 400) -> None:
        super().__init__(detail=detail, code=code)
        self.code = code
        self.field = field
        self.status_code = status_code


def error_body(code: str, detail: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": code, "field": field, "detail": detail, **extra}


def _first_message(detail: Any) -> tuple[str | None, str]:
    """The first (field, message) of a DRF ValidationError detail (dict, list or string)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field, message = _first_message(value)
            if key == "non_field_errors":
                return field, message
            return (f"{key}.{field}" if field else str(key)), message
        return None, "invalid request"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else (None, "invalid request")
    return None, str(detail)


def _first_code(codes: Any) -> str:
    if isinstance(codes, dict):
        return _first_code(next(iter(codes.values()))) if codes else "invalid"
    if isinstance(codes, list):
        return _first_code(codes[0]) if codes else "invalid"
    return str(codes)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        response.data = error_body(exc.code, str(exc.detail), exc.field)
    elif isinstance(exc, exceptions.ValidationError):
        field, message = _first_message(exc.detail)
        code = _first_code(exc.get_codes())
        fields = exc.detail if isinstance(exc.detail, dict) else None
        response.data = error_body(code if code != "invalid" else "invalid", message, field, fields=fields)
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = error_body(codes if isinstance(codes, str) else _first_code(codes), str(exc.detail))
    return response


def json_error(code: str, detail: str, status_code: int, field: str | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, detail, field), status=status_code)


def not_found_view(request, exception=None):
    """handler404: JSON under /api/, Django's page elsewhere (the catalog's web pages)."""
    if request.path.startswith("/api/"):
        return json_error("not_found", f"No such resource: {request.path}", status.HTTP_404_NOT_FOUND)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error_view(request):
    """handler500: JSON under /api/, Django's page elsewhere. (The traceback is logged by django.request.)"""
    if request.path.startswith("/api/"):
        return json_error("server_error", "Internal server error; it was logged and will be looked at.",
                          status.HTTP_500_INTERNAL_SERVER_ERROR)
    from django.views.defaults import server_error

    return server_error(request)
