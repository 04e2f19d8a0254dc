"""Strict checks of untrusted JSON values (no torch): the helpers ``spec``, ``recipe`` and ``config`` share.

Every check names the field at fault (``recipe.lr``, ``architecture.layers[3].out_features``) and raises
a :class:`~ticketclient.errors.BundleError` (``SpecError`` for architectures) with a stable ``code``.
``check_int``/``check_float`` check one value; the ``field_*`` helpers read one key of a JSON object
(required, or optional with a default, where null means absent).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from ticketclient.errors import BundleError, SpecError

#: Control characters (C0 except tab, newline and carriage return; DEL; C1) and lone UTF-16 surrogates:
#: refused in every string of a config (and header), whatever database stores it later.
BAD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: A ticket name (the registry's rule too): lower-case letters and digits with ``.``, ``_``, ``-`` inside.
TICKET_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
TICKET_NAME_LENGTH = (3, 96)


def type_name(value: Any) -> str:
    """How an error names a JSON value's type: ``null``, ``a boolean``, ``an integer``, ``a string``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_int(value: Any, where: str, *, low: int | None = None, high: int | None = None,
              error: type[BundleError] = SpecError) -> int:
    """``value`` as an int: a JSON integer (not a bool, not a float), within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error("wrong_type", where, f"expected an integer, got {type_name(value)} ({value!r:.40})")
    if low is not None and value < low:
        raise error("out_of_range", where, f"must be at least {low}, got {value}")
    if high is not None and value > high:
        raise error("out_of_range", where, f"must be at most {high:,}, got {value:,}")
    return int(value)


def check_float(value: Any, where: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, error: type[BundleError] = SpecError) -> float:
    """``value`` as a float: a JSON number (int or float, not a bool), finite, within the bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error("wrong_type", where, f"expected a number, got {type_name(value)} ({value!r:.40})")
    value = float(value)
    if not math.isfinite(value):
        raise error("out_of_range", where, f"must be a finite number, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise error("out_of_range", where, f"must be {'greater than' if low_open else 'at least'} {low}, got {value}")
    if high is not None and value > high:
        raise error("out_of_range", where, f"must be at most {high}, got {value}")
    return float(value)


def bad_character(text: str) -> str | None:
    """A description of the first control character or lone surrogate in ``text`` (None if clean)."""
    m = BAD_CHARACTERS.search(text)
    if m is None:
        return None
    return f"U+{ord(m.group()):04X} at position {m.start()}"


def check_ticket_name(name: str, field_: str = "name") -> str:
    """``name`` if it is a canonical ticket name (see :data:`TICKET_NAME`), else a BundleError."""
    lo, hi = TICKET_NAME_LENGTH
    if bad_character(name):
        raise BundleError("bad_character", field_, f"the name contains a control character ({bad_character(name)})")
    if not (lo <= len(name) <= hi and TICKET_NAME.fullmatch(name)) or "--" in name or ".." in name:
        raise BundleError("bad_value", field_,
                          f"{name!r:.120} is not a ticket name: {lo} to {hi} lower-case letters, digits and "
                          f"'.', '_', '-' inside (no '--' or '..'), starting and ending with a letter or digit")
    return name


# --- one key of a JSON object (BundleError) ----------------------------------------------------------------


def field_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _absent(d: Mapping[str, Any], key: str, where: str, default: Any) -> bool:
    """True when ``key`` is absent (or null, for an optional field) so ``default`` applies."""
    if key not in d:
        if default is ...:
            raise BundleError("missing_field", field_path(where, key), f"'{key}' is required")
        return True
    return d[key] is None and default is not ...  # null means absent for an optional field


def field_int(d: Mapping[str, Any], key: str, where: str, default: Any = ..., **bounds: Any) -> Any:
    if _absent(d, key, where, default):
        return default
    return check_int(d[key], field_path(where, key), error=BundleError, **bounds)


def field_float(d: Mapping[str, Any], key: str, where: str, default: Any = ..., **bounds: Any) -> Any:
    if _absent(d, key, where, default):
        return default
    return check_float(d[key], field_path(where, key), error=BundleError, **bounds)


def field_accuracy(d: Mapping[str, Any], key: str, where: str, default: Any = ...) -> Any:
    """An accuracy: a fraction in [0, 1]."""
    return field_float(d, key, where, default, low=0.0, high=1.0)


def field_choice(d: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: Any = ...) -> Any:
    if _absent(d, key, where, default):
        return default
    value = d[key]
    if not isinstance(value, str) or value not in choices:
        raise BundleError("bad_value", field_path(where, key),
                          f"must be one of {', '.join(choices)}, got {value!r:.40}")
    return value


def field_str(d: Mapping[str, Any], key: str, where: str, default: Any = ..., max_len: int = 500) -> Any:
    if _absent(d, key, where, default):
        return default
    value = d[key]
    if not isinstance(value, str):
        raise BundleError("wrong_type", field_path(where, key), f"expected a string, got {type_name(value)}")
    if len(value) > max_len:
        raise BundleError("out_of_range", field_path(where, key),
                          f"at most {max_len} characters, got {len(value)}")
    return value


def as_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BundleError("wrong_type", where, f"expected an object, got {type_name(value)}")
    return value


def known_keys(d: Mapping[str, Any], cls: type, where: str) -> None:
    """Refuse a key of ``d`` that is not a field of the dataclass ``cls``."""
    allowed = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in allowed:
            path = field_path(where, str(key))
            raise BundleError("unknown_field", path,
                              f"unknown field {key!r:.60} (allowed: {', '.join(sorted(allowed))})")


def string_map(d: Mapping[str, Any], key: str, where: str, max_items: int = 8) -> dict[str, str] | None:
    """An optional object of at most ``max_items`` short string keys and string values (null = absent)."""
    value = d.get(key)
    if value is None:
        return None
    value = as_object(value, field_path(where, key))
    if len(value) > max_items:
        raise BundleError("out_of_range", field_path(where, key), f"at most {max_items} entries")
    for k, v in value.items():
        if not isinstance(k, str) or len(k) > 64 or not isinstance(v, str) or len(v) > 200:
            raise BundleError("wrong_type", field_path(where, key),
                              "keys (64 characters at most) and values (200 at most) must be strings")
    return dict(value)


__all__ = [
    "type_name", "check_int", "check_float", "bad_character", "check_ticket_name", "TICKET_NAME",
    "BAD_CHARACTERS", "field_path", "field_int", "field_float", "field_accuracy", "field_choice", "field_str",
    "as_object", "known_keys", "string_map",
]
