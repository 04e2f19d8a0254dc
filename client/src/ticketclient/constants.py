"""Environment variables and their defaults, in one place (like ``huggingface_hub.constants``).

| variable | default | meaning |
| --- | --- | --- |
| ``TICKETHUB_ENDPOINT`` | ``http://127.0.0.1:8000`` | the registry's base URL |
| ``TICKETHUB_TOKEN`` | (none; else the token file) | API token sent as ``Authorization: Bearer`` |
| ``TICKETHUB_TOKEN_PATH`` | ``~/.config/tickethub/token`` | where ``ticket login`` stores the token |
| ``TICKETHUB_CACHE`` | ``~/.cache/tickethub`` | downloaded tickets, in the huggingface_hub cache layout |
| ``TICKETHUB_OFFLINE`` | off | ``1``/``true``/``yes``/``on``: make no network request, use the cache |
| ``TICKETHUB_DATA`` | ``~/.cache/tickethub/datasets`` | dataset files (one folder per task) |
| ``TICKETHUB_DATA_CHECK`` | on | ``0``/``false``/``no``/``off``: skip the size and hash checks of dataset files |
| ``TICKETHUB_DATA_URL`` | (none) | a mirror holding ``<task>/<file>`` for every task, tried before the public ones |
| ``TICKETHUB_TORCH_THREADS`` | (chosen from the network's size) | torch threads of CPU training (``ticket.train()``, ``ticket find``, the verifier's ``training.cpu_threads``) |

The functions read the environment at each call, so a test or a long-lived process sees changes.
The bundle limits (``TICKETHUB_MAX_*``) are read by ``ticketclient.validation.Limits.from_env``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

ENDPOINT_ENV = "TICKETHUB_ENDPOINT"
TOKEN_ENV = "TICKETHUB_TOKEN"
TOKEN_PATH_ENV = "TICKETHUB_TOKEN_PATH"
CACHE_ENV = "TICKETHUB_CACHE"
OFFLINE_ENV = "TICKETHUB_OFFLINE"
DATA_ENV = "TICKETHUB_DATA"
DATA_CHECK_ENV = "TICKETHUB_DATA_CHECK"
DATA_URL_ENV = "TICKETHUB_DATA_URL"
TORCH_THREADS_ENV = "TICKETHUB_TORCH_THREADS"

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
DEFAULT_TOKEN_PATH = "~/.config/tickethub/token"
DEFAULT_CACHE = "~/.cache/tickethub"
DEFAULT_DATA = "~/.cache/tickethub/datasets"

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})

#: A revision's commit: 40 lowercase hex digits (the registry's check constraint, the Hub routes, pulls).
COMMIT_PATTERN = r"[0-9a-f]{40}"
COMMIT_RE = re.compile(rf"^{COMMIT_PATTERN}$")


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or ``default`` when it is unset or blank."""
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else default


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    return default if value is None else value.lower() in TRUE_VALUES


def env_int(name: str, default: int) -> int:
    """An integer variable (``1_000`` and ``1e6`` style values accepted); ValueError names the variable."""
    value = env_str(name)
    return default if value is None else parse_int(name, value)


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    return default if value is None else float(value)


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated variable as a list of its non-blank items."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_json_dict(name: str) -> dict[str, float]:
    """A JSON object of names to numbers (e.g. ``VERIFIER_TOLERANCES``); unset or blank: empty."""
    value = env_str(name)
    if value is None:
        return {}
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object mapping task name to tolerance, got {value!r}")
    return {str(k): float(v) for k, v in parsed.items()}


def parse_int(name: str, value: str) -> int:
    """``value`` of variable ``name`` as an integer (``1_000``, ``1e6`` accepted); ValueError names it."""
    value = value.strip()
    try:
        return int(value.replace("_", ""))
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not an integer") from None
        if not number.is_integer():
            raise ValueError(f"{name}={value!r} is not an integer") from None
        return int(number)


def env_path(name: str, default: str) -> Path:
    return Path(env_str(name, default) or default).expanduser()


def endpoint() -> str:
    return (env_str(ENDPOINT_ENV, DEFAULT_ENDPOINT) or DEFAULT_ENDPOINT).rstrip("/")


def token_path() -> Path:
    return env_path(TOKEN_PATH_ENV, DEFAULT_TOKEN_PATH)


def token() -> str | None:
    """``TICKETHUB_TOKEN``, else the token stored by ``ticket login``, else None."""
    value = env_str(TOKEN_ENV)
    if value:
        return value
    try:
        stored = token_path().read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return stored or None


def cache_dir() -> Path:
    return env_path(CACHE_ENV, DEFAULT_CACHE)


def offline() -> bool:
    return env_bool(OFFLINE_ENV)


def data_dir() -> Path:
    return env_path(DATA_ENV, DEFAULT_DATA)


def torch_threads() -> int | None:
    """``TICKETHUB_TORCH_THREADS`` as a positive integer, or None when unset (then chosen per network)."""
    value = env_str(TORCH_THREADS_ENV)
    if value is None:
        return None
    return max(1, parse_int(TORCH_THREADS_ENV, value))


__all__ = ["torch_threads", "endpoint", "token", "token_path", "cache_dir", "offline", "data_dir", "env_str", "env_bool",
           "env_int", "env_float", "env_list", "env_json_dict", "env_path", "parse_int",
           "COMMIT_PATTERN", "COMMIT_RE"]
