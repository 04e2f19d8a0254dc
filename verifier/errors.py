"""Which failures are transient (retried with backoff) and which are the ticket's fault (fail once)."""

from __future__ import annotations

from kombu.exceptions import OperationalError as BrokerOperationalError


def _transient_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, BrokerOperationalError]
    try:
        from django.db import InterfaceError, OperationalError

        errors += [OperationalError, InterfaceError]
    except ImportError:  # pragma: no cover - Django is a dependency of the hub
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


#: Database or broker restarts: the job is retried with exponential backoff (bounded retries).
TRANSIENT_ERRORS = _transient_errors()
