"""The Hugging Face Hub read protocol for tickets, so ``huggingface_hub`` downloads and caches them.

Endpoints (all GET, plus HEAD on resolve; see docs in /work/shared/notes/hub-protocol.md):

- ``GET /api/models?search=&author=&filter=task:mnist1d&task=&max_density=&sort=&direction=&limit=``
- ``GET /api/models/<name>`` and ``GET /api/models/<name>/revision/<rev>``: model info (``id``, ``sha``,
  ``siblings`` with the sha256 of every file, ``downloads``, ``tags``, ``cardData``) plus ``ticket``, our
  own record (status, measured density, verified accuracy, ...).
- ``GET /api/models/<name>/tree/<rev>``: the file list with sha256 (``lfs.oid``).
- ``HEAD|GET /<name>/resolve/<rev>/<path>``: the file, with ``X-Repo-Commit`` (the revision's 40-hex commit
  id) and ``ETag`` (the file's sha256, which becomes huggingface_hub's cache blob name).

What is served: a ticket that is not withdrawn, at a *verified* revision. ``main`` is its latest verified
revision; a 40-hex commit id names any verified revision. Anything else answers 404 with
``X-Error-Code: RevisionNotFound`` (or ``RepoNotFound`` for an unknown name, ``EntryNotFound`` for a missing
file) and ``X-Ticket-Status`` (``withdrawn``, ``pending``, ``verifying``, ``rejected``) so a client can say
why; huggingface_hub raises ``RevisionNotFound`` even over a warm cache, so withdrawals reach clients.

A client asks for unpublished revisions with the header ``X-Ticket-Include-Unpublished: 1``: then ``main``
is the latest revision whatever its status. Pending, verifying and rejected revisions are shown only to
the ticket's owner and staff (``Authorization: Bearer <registry token>``); withdrawn tickets to anyone
who asks (their files were public). An invalid token is a 401.

Each revision also has a generated ``verification.json`` (the verification summary: policy, decision,
runs) once its verification has finished, and a verified or rejected one a model card ``README.md``
(registry.catalog.modelcard: Hugging Face front matter, verdict, controls, dense comparison, recipe). Downloads are counted once per GET of ``config.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.core.files.storage import default_storage
from django.db.models import F, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods
from rest_framework import exceptions
from ticketclient.constants import COMMIT_RE

from registry.accounts.authentication import ApiTokenAuthentication
from registry.tickets.blobs import blob_key, sha256_hex
from registry.tickets.models import Revision, RevisionFile, Status, Ticket
from registry.tickets.selectors import may_see_unpublished, rows_in_order
from registry.tickets.services import record_download

INCLUDE_UNPUBLISHED_HEADER = "HTTP_X_TICKET_INCLUDE_UNPUBLISHED"
VERIFICATION_FILE = "verification.json"
#: Size of a git-lfs pointer file; huggingface_hub requires the field in ``lfs`` entries.
LFS_POINTER_SIZE = 134
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000
_COMMIT = COMMIT_RE
#: Statuses whose files only the owner and staff may pull.
PRIVATE_STATUSES = {Status.PENDING, Status.VERIFYING, Status.REJECTED}


class HubError(Exception):
    """An answer in the Hub's error shape: status, ``X-Error-Code``, ``X-Error-Message``."""

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
        response["X-Error-Message"] = _header_safe(self.message)
        if self.ticket_status:
            response["X-Ticket-Status"] = self.ticket_status
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


def _header_safe(text: str) -> str:
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")[:500]


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def hub_view(methods: list[str]):
    """Allow ``methods``, authenticate the registry token, and turn :class:`HubError` into responses."""

    def decorate(view):
        @require_http_methods(methods)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                request.hub_user = _authenticate(request)
                return view(request, *args, **kwargs)
            except HubError as err:
                return err.response()

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorate


def _authenticate(request: HttpRequest) -> Any:
    try:
        result = ApiTokenAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed as err:
        # This exact message keeps huggingface_hub from reporting a 401 as "repository not found".
        raise HubError(401, None, "Invalid credentials in Authorization header", slug="invalid_token") from err
    return result[0] if result else None


def _wants_unpublished(request: HttpRequest) -> bool:
    return request.META.get(INCLUDE_UNPUBLISHED_HEADER, "").strip().lower() in ("1", "true", "yes")


# --- what a request names -----------------------------------------------------------------------------


def _ticket(name: str) -> Ticket:
    ticket = Ticket.objects.select_related("task", "owner").filter(name=name).first()
    if ticket is None:
        raise HubError(404, "RepoNotFound", f"Ticket {name!r} does not exist.", slug="ticket_not_found")
    return ticket


def _not_served(ticket: Ticket, revision: Revision | None, what: str) -> HubError:
    status = Status.WITHDRAWN if ticket.is_withdrawn else (revision.status if revision else ticket.status)
    if status == Status.WITHDRAWN:
        reason = f" ({ticket.withdrawn_reason})" if ticket.withdrawn_reason else ""
        message = f"Ticket {ticket.name!r} was withdrawn{reason}; it is no longer served as published."
    elif revision is None:
        message = f"Ticket {ticket.name!r} has no verified revision yet (status: {status})."
    else:
        message = f"Revision {what} of ticket {ticket.name!r} is {status}, not verified."
    return HubError(404, "RevisionNotFound", message, slug="not_published", ticket_status=str(status))


def _revision(request: HttpRequest, ticket: Ticket, revision: str) -> Revision:
    """The revision ``main`` or a commit id names, if this request may see it (see module docstring)."""
    include = _wants_unpublished(request)
    user = getattr(request, "hub_user", None)
    if revision == "main":
        if include:
            found = ticket.revisions.order_by("-number").first()
        else:
            found = ticket.revisions.filter(status=Status.VERIFIED).order_by("-number").first()
        if found is None:
            raise _not_served(ticket, None, revision)
    elif _COMMIT.match(revision):
        found = ticket.revisions.filter(commit=revision).first()
        if found is None:
            raise HubError(404, "RevisionNotFound", f"Ticket {ticket.name!r} has no revision {revision}.",
                           slug="revision_not_found")
    else:
        raise HubError(404, "RevisionNotFound",
                       f"Unknown revision {revision!r}: use 'main' or a 40-character commit id.",
                       slug="revision_not_found")
    published = found.status == Status.VERIFIED and not ticket.is_withdrawn
    if published:
        return found
    if not include:
        raise _not_served(ticket, found, revision)
    if found.status in PRIVATE_STATUSES and not may_see_unpublished(user, ticket):
        if user is None:
            raise HubError(401, None, f"Log in (a registry token) to pull unpublished revisions of {ticket.name!r}.",
                           slug="not_authenticated", ticket_status=str(found.status))
        raise HubError(403, "GatedRepo", f"Only the owner of {ticket.name!r} may pull its unpublished revisions.",
                       slug="permission_denied", ticket_status=str(found.status))
    return found


# --- the files of a revision --------------------------------------------------------------------------


@dataclass(frozen=True)
class HubFile:
    path: str
    sha256: str
    size: int
    content: bytes | None = None  # generated files carry their bytes; stored ones are read from storage


def finished_verifications(revisions: list[Revision]) -> dict[int, Any]:
    """The finished own-task verification of each revision (with its runs), by revision id, in one query."""
    if not revisions or not apps.is_installed("registry.verifications"):
        return {}
    from django.db.models import Prefetch

    from registry.verifications.models import Verification, VerificationRun

    runs = Prefetch("runs", queryset=VerificationRun.objects.defer("curve"))  # no reader of these needs curves
    found = Verification.objects.filter(revision__in=revisions, kind=Verification.Kind.OWN,
                                        status__in=Verification.FINISHED).prefetch_related(runs)
    return {v.revision_id: v for v in found}


_UNSET: Any = object()


def verification_document(revision: Revision, verification: Any = _UNSET) -> bytes | None:
    """The finished own-task verification of a revision as canonical JSON bytes (None if unfinished).

    ``verification`` is the record when the caller loaded it already (None: there is none).
    """
    if verification is _UNSET:
        verification = finished_verifications([revision]).get(revision.pk)
    if verification is None:
        return None
    from registry.verifications.models import Verification
    runs = [
        {
            "role": run.role, "seed": run.seed, "data_seed": run.data_seed, "control_seed": run.control_seed,
            "final_test_accuracy": run.final_test_accuracy,
            "final_val_accuracy": run.final_val_accuracy, "early_stop_iteration": run.early_stop_iteration,
            "early_stop_test_accuracy": run.early_stop_test_accuracy, "iterations": run.iterations,
            "density": run.density, "device": run.device, "engine": run.engine, "wall_time_s": run.wall_time_s,
        }
        for run in sorted(verification.runs.all(), key=lambda r: (r.role, r.seed))
    ]
    document = {
        "format": "lottery-ticket-verification/v1",
        "ticket": revision.ticket.name,
        "commit": revision.commit,
        "task": verification.task,
        "status": verification.status,
        "verified": verification.status == Verification.Status.VERIFIED,
        "outcome": verification.outcome,
        "winning": verification.winning,
        "matching": verification.matching,
        "beats_controls": verification.beats_controls,
        "seeds": verification.seeds,
        "reason": verification.reason,
        "verified_accuracy": revision.verified_accuracy,
        "claimed_accuracy": verification.claimed_accuracy,
        "claimed_density": verification.claimed_density,
        "measured_density": verification.measured_density,
        "policy": verification.policy,
        "decision": verification.decision,
        "runs": runs,
        "device": verification.device,
        "engine": verification.engine,
        "finished_at": _iso(verification.finished_at),
    }
    return json.dumps(document, sort_keys=True, indent=1).encode()


def base_url(request: HttpRequest) -> str:
    """The registry's address as this request names it (the model card's pull snippets use it)."""
    return request.build_absolute_uri("/").rstrip("/")


def generated_files(revision: Revision, verification: Any, base: str | None,
                    cards: dict[int, bytes] | None = None) -> list[HubFile]:
    """The files made from the finished verification: ``verification.json`` and, for a verified or
    rejected one, the model card ``README.md`` (registry.catalog.modelcard; deterministic bytes).
    ``cards``: model cards already read from the cache, by verification id (a list reads them at once)."""
    document = verification_document(revision, verification)
    if document is None:
        return []
    files = [HubFile(VERIFICATION_FILE, sha256_hex(document), len(document), document)]
    if base is not None and verification.status in ("verified", "rejected") and apps.is_installed("registry.catalog"):
        from registry.catalog.modelcard import CARD_FILE, model_card

        card = (cards or {}).get(verification.pk) or model_card(revision, verification, base_url=base)
        files.append(HubFile(CARD_FILE, sha256_hex(card), len(card), card))
    return files


def revision_files(revision: Revision, base: str | None = None) -> list[HubFile]:
    """Every file the protocol serves for ``revision``: the stored ones and the generated ones (the model
    card only when ``base``, the registry's address, is given)."""
    files = [HubFile(f.path, f.sha256, f.size) for f in RevisionFile.objects.filter(revision=revision)]
    files += generated_files(revision, finished_verifications([revision]).get(revision.pk), base)
    return sorted(files, key=lambda f: f.path)


# --- model info ---------------------------------------------------------------------------------------


def ticket_record(ticket: Ticket, revision: Revision) -> dict[str, Any]:
    """Our own fields, under ``ticket`` in every model dict (huggingface_hub keeps unknown keys)."""
    return {
        "name": ticket.name,
        "task": ticket.task.name,
        "family": revision.family or ticket.family,
        "status": str(ticket.status),
        "published": revision.status == Status.VERIFIED and not ticket.is_withdrawn,
        "revision": revision.number,
        "revision_status": str(revision.status),
        "commit": revision.commit,
        "density": revision.density,
        "layer_densities": revision.layer_densities,
        "num_parameters": revision.num_parameters,
        "claimed_accuracy": revision.claimed_accuracy,
        "verified_accuracy": revision.verified_accuracy,
        "downloads": ticket.downloads,
        "revision_downloads": revision.downloads,
        "owner": ticket.owner.get_username(),
        "created_at": _iso(revision.created_at),
        "withdrawn": ticket.is_withdrawn,
        "withdrawn_reason": ticket.withdrawn_reason or None,
    }


def model_dict(ticket: Ticket, revision: Revision, files: Iterable[HubFile]) -> dict[str, Any]:
    record = ticket_record(ticket, revision)
    tags = ["lottery-ticket", "ticketclient", f"task:{record['task']}", f"status:{record['status']}"]
    if record["family"]:
        tags.append(f"family:{record['family']}")
    return {
        "_id": f"ticket-{ticket.pk}",
        "id": ticket.name,
        "modelId": ticket.name,
        "author": record["owner"],
        "sha": revision.commit,
        "private": False,
        "gated": False,
        "disabled": False,
        "downloads": ticket.downloads,
        "likes": 0,
        "library_name": "ticketclient",
        "tags": tags,
        "createdAt": _iso(ticket.created_at),
        "lastModified": _iso(revision.created_at),
        "siblings": [
            {"rfilename": f.path, "size": f.size,
             "lfs": {"sha256": f.sha256, "size": f.size, "pointerSize": LFS_POINTER_SIZE}}
            for f in files
        ],
        "cardData": {
            "library_name": "ticketclient", "tags": tags, "task": record["task"], "density": record["density"],
            "verified_accuracy": record["verified_accuracy"],
        },
        "ticket": record,
    }


@hub_view(["GET"])
def model_info(request: HttpRequest, name: str, revision: str = "main") -> JsonResponse:
    """``GET /api/models/<name>[/revision/<rev>]``."""
    ticket = _ticket(name)
    found = _revision(request, ticket, revision)
    return JsonResponse(model_dict(ticket, found, revision_files(found, base_url(request))))


@hub_view(["GET"])
def tree(request: HttpRequest, name: str, revision: str) -> JsonResponse:
    """``GET /api/models/<name>/tree/<rev>``: every file (a revision has no folders)."""
    ticket = _ticket(name)
    found = _revision(request, ticket, revision)
    entries = [
        {"type": "file", "path": f.path, "oid": f.sha256, "size": f.size,
         "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": LFS_POINTER_SIZE}}
        for f in revision_files(found, base_url(request))
    ]
    return JsonResponse(entries, safe=False)


# --- resolve ------------------------------------------------------------------------------------------


@hub_view(["GET", "HEAD"])
def resolve(request: HttpRequest, name: str, revision: str, path: str) -> HttpResponse:
    """``HEAD|GET /<name>/resolve/<rev>/<path>``: a file with X-Repo-Commit and ETag (its sha256)."""
    ticket = _ticket(name)
    found = _revision(request, ticket, revision)
    stored = RevisionFile.objects.filter(revision=found, path=path).first()
    hub_file = HubFile(stored.path, stored.sha256, stored.size) if stored is not None else next(
        (f for f in generated_files(found, finished_verifications([found]).get(found.pk), base_url(request))
         if f.path == path), None)  # a stored file is one row: nothing is generated to serve it
    if hub_file is None:
        raise HubError(404, "EntryNotFound", f"Revision {found.commit} of {ticket.name!r} has no file {path!r}.",
                       slug="file_not_found")
    content_type = ("application/json" if path.endswith(".json") else
                    "text/markdown; charset=utf-8" if path.endswith(".md") else "application/octet-stream")
    if request.method == "HEAD":
        response = HttpResponse(content_type=content_type)
    elif hub_file.content is not None:
        response = HttpResponse(hub_file.content, content_type=content_type)
    else:
        try:
            handle = default_storage.open(blob_key(hub_file.sha256), "rb")
        except FileNotFoundError as err:
            raise HubError(500, None, f"The stored bytes of {path} ({hub_file.sha256}) are missing.",
                           slug="blob_missing") from err
        response = FileResponse(handle, content_type=content_type)
    response["X-Repo-Commit"] = found.commit
    response["ETag"] = f'"{hub_file.sha256}"'
    response["X-Linked-Size"] = str(hub_file.size)
    response["Content-Length"] = str(hub_file.size)
    response["Accept-Ranges"] = "none"
    response["Cache-Control"] = "public, max-age=0, must-revalidate" if revision == "main" else \
        "public, max-age=31536000, immutable"
    response["X-Ticket-Status"] = "withdrawn" if ticket.is_withdrawn else str(found.status)
    if request.method == "GET" and path == "config.json":
        record_download(found)
    return response


# --- listing ------------------------------------------------------------------------------------------

SORTS = {
    "downloads": "ticket__downloads",
    "lastModified": "created_at",
    "last_modified": "created_at",
    "createdAt": "ticket__created_at",
    "created_at": "ticket__created_at",
    "verified_accuracy": "verified_accuracy",
    "accuracy": "verified_accuracy",
    "density": "density",
    "name": "ticket__name",
    "id": "ticket__name",
}


def published_revisions() -> QuerySet[Revision]:
    """The revision each published ticket serves as ``main``: its latest verified one (stored on the ticket as
    ``served_revision``), if not withdrawn. One join, no per-ticket subquery."""
    return (
        Revision.objects.filter(ticket__served_revision=F("pk")).exclude(ticket__status=Status.WITHDRAWN)
        .select_related("ticket", "ticket__task", "ticket__owner")
    )


def _bad_request(message: str) -> HubError:
    return HubError(400, None, message, slug="invalid_query")


def _filtered(request: HttpRequest) -> QuerySet[Revision]:
    query = published_revisions()
    params = request.GET
    if search := params.get("search"):
        query = query.filter(ticket__name__icontains=search)
    if author := params.get("author"):
        query = query.filter(ticket__owner__username=author)
    tasks = params.getlist("task")
    families: list[str] = params.getlist("family")
    for value in params.getlist("filter"):
        for tag in value.split(","):
            key, _, val = tag.strip().partition(":")
            if key == "task" and val:
                tasks.append(val)
            elif key == "family" and val:
                families.append(val)
            elif key == "status" and val and val != Status.VERIFIED:
                return query.none()  # the listing holds published tickets only
            elif tag.strip() not in ("", "lottery-ticket", "ticketclient", "status:verified"):
                return query.none()  # an unknown tag matches nothing, as on the Hub
    for task in tasks:
        query = query.filter(ticket__task__name=task)
    for family in families:
        query = query.filter(family=family)
    for key, lookup in (("max_density", "density__lte"), ("min_density", "density__gte"),
                        ("min_accuracy", "verified_accuracy__gte")):
        if raw := params.get(key):
            try:
                query = query.filter(**{lookup: float(raw)})
            except ValueError as err:
                raise _bad_request(f"{key} must be a number, got {raw!r}.") from err
    sort = params.get("sort") or "lastModified"
    if sort not in SORTS:
        raise _bad_request(f"sort must be one of {', '.join(sorted(SORTS))}; got {sort!r}.")
    descending = params.get("direction", "-1") != "1"
    field = SORTS[sort]
    return query.order_by(f"-{field}" if descending else field, "-pk")


def _int_param(request: HttpRequest, key: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise _bad_request(f"{key} must be an integer, got {raw!r}.") from err
    return max(low, min(high, value))


#: Columns of a listed revision and its ticket that neither a model dict nor a model card reads.
LISTING_DEFERRED = ("architecture", "budget", "ticket__layer_densities")


def _cached_cards(verifications: Iterable[Any], base: str) -> dict[int, bytes]:
    if not apps.is_installed("registry.catalog"):
        return {}
    from registry.catalog.modelcard import cached_model_cards

    return cached_model_cards([v for v in verifications if v.status in ("verified", "rejected")], base_url=base)


@hub_view(["GET"])
def list_models(request: HttpRequest) -> JsonResponse:
    """``GET /api/models``: published tickets, filterable and sortable, paginated with a Link header."""
    query = _filtered(request)
    size = _int_param(request, "limit", PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX)
    page = _int_param(request, "page", 1, 1, 10**9)
    ids = list(query.values_list("pk", flat=True)[(page - 1) * size: page * size + 1])  # narrow sort, then rows
    # Neither a model dict nor a model card built on a cache miss reads these JSON columns.
    rows = rows_in_order(ids, published_revisions().defer(*LISTING_DEFERRED))
    has_next = len(rows) > size
    rows = rows[:size]
    files_by_revision: dict[int, list[HubFile]] = {}
    for f in RevisionFile.objects.filter(revision__in=[r.pk for r in rows]):
        files_by_revision.setdefault(f.revision_id, []).append(HubFile(f.path, f.sha256, f.size))
    verifications = finished_verifications(rows)
    cards = _cached_cards(verifications.values(), base_url(request))
    body = []
    for revision in rows:
        files = files_by_revision.get(revision.pk, [])
        files += generated_files(revision, verifications.get(revision.pk), base_url(request), cards)
        body.append(model_dict(revision.ticket, revision, sorted(files, key=lambda f: f.path)))
    response = JsonResponse(body, safe=False)
    if has_next:
        params = request.GET.copy()
        params["page"] = str(page + 1)
        params["limit"] = str(size)
        url = request.build_absolute_uri(request.path) + "?" + urlencode(list(params.lists()), doseq=True)
        response["Link"] = f'<{url}>; rel="next"'
    return response
