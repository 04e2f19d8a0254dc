"""Every exception ticketclient raises, in one place (like ``huggingface_hub.errors``).

Catch :class:`TicketError` for anything from this library; catch a subclass for one cause.
"""

from __future__ import annotations


class TicketError(Exception):
    """Base class of every error raised by ticketclient."""


class BundleError(TicketError, ValueError):
    """A ticket bundle (config, init or mask) is malformed, unsafe or over a limit.

    ``code`` is a short stable slug (``shape_mismatch``, ``mask_not_boolean``, ``non_finite``...),
    ``field`` names the config field or tensor at fault (``recipe.lr``, ``mask.safetensors:layers.0.weight``),
    and the message is a sentence written for a person.
    """

    def __init__(self, code: str, field: str | None, message: str) -> None:
        self.code = code
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "field": self.field, "message": self.message}


class SpecError(BundleError):
    """An architecture spec is invalid (unknown layer, bad argument, too large)."""


class RecipeRequiredError(TicketError, ValueError):
    """An architecture given as a layer list has no default recipe: pass one (``recipe=``, ``--recipe``)."""


class UnknownTaskError(TicketError, KeyError):
    """No task of that name is registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown task"


class DatasetUnavailableError(TicketError):
    """A dataset is neither cached nor downloadable (offline, or no files where the user pointed)."""


class DatasetChecksumError(DatasetUnavailableError):
    """A dataset file (downloaded or placed by the user) is not the published file: wrong size or hash."""


class HubError(TicketError):
    """An error talking to a ticket registry."""


class TicketNotFoundError(HubError):
    """The registry has no ticket (or revision, or file) of that name."""


class TicketNotVerifiedError(HubError):
    """The ticket exists but is not published (pending, verifying, rejected or withdrawn)."""


class UnauthorizedError(HubError):
    """The token is missing, invalid, or does not allow this action."""


class OfflineError(HubError):
    """Offline mode is on (or the registry is unreachable) and the cache cannot answer."""


class ChecksumError(HubError):
    """A downloaded file's sha256 differs from the registry's record."""


class SubmissionRejectedError(HubError):
    """The registry refused a submission (a 4xx with a reason)."""

    def __init__(self, message: str, *, status: int | None = None, detail: object = None) -> None:
        self.status = status
        self.detail = detail
        super().__init__(message)
