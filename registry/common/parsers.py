"""The API's JSON parser: strict like config.json (ticketclient.format.strict_json_loads).

A key given twice, an integer literal over 40 digits, NaN/Infinity, nesting too deep, or a control character
or lone surrogate in any key or string: 400 ``parse_error`` naming the field, whatever the database would do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        from ticketclient.errors import BundleError
        from ticketclient.format import check_json_tree, strict_json_loads

        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - the body is not {encoding} text.") from exc
        try:
            data = strict_json_loads(text, "body")
            check_json_tree(data)
        except BundleError as exc:
            where = f" ({exc.field})" if exc.field and exc.field != "body" else ""
            raise ParseError(f"JSON parse error{where} - {exc.message}") from exc
        return data


