"""OpenAPI schema post-processing: the error answers every operation can give, in the one error shape.

Added to each operation unless it documents the status itself: 400 (bad input), 401 (bad or missing
credentials), 403 (not allowed), 404 (no such resource), 429 (throttled), and for writes 409 (conflict),
411 (no Content-Length), 413 (too large), 415 (media type); each refers to the ``Error`` component
``{error, field, detail}`` (``fields`` too for serializer errors).
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every API error: a short code, the field at fault (or null) and a sentence for a person.",
    "properties": {
        "error": {"type": "string", "description": "A short stable code, e.g. not_found, shape_mismatch."},
        "field": {"type": "string", "nullable": True, "description": "The form, config or tensor field at fault."},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "fields": {"type": "object", "nullable": True, "additionalProperties": True,
                   "description": "Serializer errors: every invalid field and its messages."},
    },
    "required": ["error", "field", "detail"],
}

_READ = {"400": "Invalid parameters.", "401": "Invalid or missing credentials.", "403": "Not allowed.",
         "404": "No such resource.", "429": "Too many requests (see Retry-After)."}
_WRITE = {**_READ, "409": "Conflict with the current state (name taken, unchanged, cap reached).",
          "411": "No Content-Length.", "413": "Too large.", "415": "Unsupported media type."}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in (_READ if method == "get" else _WRITE).items():
                responses.setdefault(status, {"description": description,
                                              "content": {"application/json": {"schema": ref}}})
    return result
