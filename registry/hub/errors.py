"""The Hub protocol's error type: every refusal is a :class:`HubError`, answered in the Hub's shape."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from registry.tickets.models import Revision, Status, Ticket


class HubError(Exception):
    """An answer in the Hub's error shape: status, ``X-Error-Code``, ``X-Error-Message``.

    huggingface_hub reads ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``,
    ``GatedRepo``) to pick its exception; ``X-Ticket-Status`` says why a revision is not served.
    """

    def __init__(self, status: int, error_code: str | None, message: str, *, slug: str,
                 ticket_status: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.slug = slug
        self.ticket_status = ticket_status

    def response(self) -> JsonResponse:
        body: dict[str, Any] = {"error": self.slug, "field": None, "detail": self.message}
        if self.ticket_status:
            body["ticket_status"] = self.ticket_status
        response = JsonResponse(body, status=self.status)
        if self.error_code:
            response["X-Error-Code"] = self.error_code
        response["X-Error-Message"] = header_safe(self.message)
        if self.ticket_status:
            response["X-Ticket-Status"] = self.ticket_status
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


def header_safe(text: str) -> str:
    """``text`` on one latin-1 line of at most 500 characters (an HTTP header value)."""
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")[:500]


def bad_request(message: str) -> HubError:
    return HubError(400, None, message, slug="invalid_query")


def repo_not_found(name: str) -> HubError:
    return HubError(404, "RepoNotFound", f"Ticket {name!r} does not exist.", slug="ticket_not_found")


def revision_not_found(message: str) -> HubError:
    return HubError(404, "RevisionNotFound", message, slug="revision_not_found")


def entry_not_found(ticket: Ticket, revision: Revision, path: str) -> HubError:
    return HubError(404, "EntryNotFound", f"Revision {revision.commit} of {ticket.name!r} has no file {path!r}.",
                    slug="file_not_found")


def not_served(ticket: Ticket, revision: Revision | None, what: str) -> HubError:
    """Why ``revision`` (None: the ticket has no verified one) is not served as published."""
    status = Status.WITHDRAWN if ticket.is_withdrawn else (revision.status if revision else ticket.status)
    if status == Status.WITHDRAWN:
        reason = f" ({ticket.withdrawn_reason})" if ticket.withdrawn_reason else ""
        message = f"Ticket {ticket.name!r} was withdrawn{reason}; it is no longer served as published."
    elif revision is None:
        message = f"Ticket {ticket.name!r} has no verified revision yet (status: {status})."
    else:
        message = f"Revision {what} of ticket {ticket.name!r} is {status}, not verified."
    return HubError(404, "RevisionNotFound", message, slug="not_published", ticket_status=str(status))
