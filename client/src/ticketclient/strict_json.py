"""Strict JSON for untrusted text (no torch): ``config.json`` and safetensors headers.

:func:`strict_json_loads` refuses NaN/Infinity, huge integer literals and nesting too deep for the parser,
and marks objects that give a key twice; :func:`check_json_tree` then refuses those duplicates and control
characters or lone surrogates in any key or string, naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ticketclient.checks import bad_character, field_path
from ticketclient.errors import BundleError

#: Longest integer literal accepted in config.json or a safetensors header (2**64 has 20 digits).
MAX_INT_DIGITS = 40


class _Pairs(dict[str, Any]):
    """A parsed JSON object that remembers the first key given twice (the last would win silently)."""

    duplicate: str | None = None


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    out = _Pairs()
    for key, value in pairs:
        if key in out and out.duplicate is None:
            out.duplicate = key
        out[key] = value
    return out


def _parse_int_literal(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BundleError("config_not_json", None, f"an integer literal has {len(text.lstrip('-')):,} digits; "
                                                   f"at most {MAX_INT_DIGITS} are accepted")
    return int(text)


def _reject_constant(name: str) -> Any:
    raise BundleError("config_not_json", "config.json", f"config.json contains {name}, which is not valid JSON")


def strict_json_loads(text: str, label: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity, integer literals over :data:`MAX_INT_DIGITS` digits, and
    nesting too deep for the parser; objects given a key twice are marked for :func:`check_json_tree`.
    Every refusal is a :class:`BundleError` with code ``config_not_json`` and field ``label``."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int_literal,
                          object_pairs_hook=_object_pairs)
    except BundleError as e:
        raise BundleError(e.code, label, f"{label} is not acceptable JSON: {e.message}") from None
    except (json.JSONDecodeError, RecursionError, ValueError) as e:
        raise BundleError("config_not_json", label, f"{label} is not valid JSON: {e}") from e


def check_json_tree(value: Any, where: str = "") -> None:
    """Refuse duplicate keys (marked by :func:`strict_json_loads`) and control characters or lone surrogates
    in any key or string of a parsed JSON value, naming the field. Iterative: any depth is safe."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            bad = bad_character(item)
            if bad:
                raise BundleError("bad_character", path or None,
                                  f"contains the control character or lone surrogate {bad}; text fields may hold "
                                  f"printable characters, tabs and newlines only")
        elif isinstance(item, Mapping):
            duplicate = getattr(item, "duplicate", None)
            if duplicate is not None:
                raise BundleError("duplicate_key", field_path(path, str(duplicate)),
                                  f"the key {duplicate!r:.60} is given twice (JSON objects need unique keys)")
            for key, sub in item.items():
                key_path = field_path(path, str(key))
                bad = bad_character(str(key))
                if bad:
                    raise BundleError("bad_character", path or None,
                                      f"a key contains the control character or lone surrogate {bad}")
                stack.append((sub, key_path))
        elif isinstance(item, list | tuple):
            stack.extend((sub, f"{path}[{j}]") for j, sub in enumerate(item))


__all__ = ["MAX_INT_DIGITS", "strict_json_loads", "check_json_tree"]
