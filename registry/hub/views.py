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
runs) once its verification has finished, built once and stored (registry.hub.documents), and a verified or
rejected one a model card ``README.md`` (registry.catalog.modelcard: Hugging Face front matter, verdict,
controls, dense comparison, recipe; cached). Downloads are counted once per GET of ``config.json``.

The views are thin: what a request names and may see is in registry.hub.selectors, the generated files in
registry.hub.documents, the JSON bodies in registry.hub.payloads, the error type in registry.hub.errors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, QueryDict
from django.views.decorators.http import require_http_methods
from rest_framework import exceptions

from registry.accounts.authentication import ApiTokenAuthentication
from registry.catalog.modelcard import CARD_FILE
from registry.hub import selectors
from registry.hub.documents import VERIFICATION_FILE, card_content, document_content, files_of
from registry.hub.documents import revision_files as revision_files  # the catalog's ticket page lists them
from registry.hub.errors import HubError, bad_request, entry_not_found
from registry.hub.payloads import model_dict, tree_entries
from registry.hub.selectors import HubFile, ModelFilters
from registry.tickets.models import Revision, Status, Ticket
from registry.tickets.services import record_download

INCLUDE_UNPUBLISHED_HEADER = "HTTP_X_TICKET_INCLUDE_UNPUBLISHED"
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000

HubView = Callable[..., HttpResponseBase]


def hub_view(methods: list[str]) -> Callable[[HubView], HubView]:
    """Allow ``methods``, authenticate the registry token (passed on as ``user``, None when anonymous), and
    turn :class:`HubError` into responses."""

    def decorate(view: HubView) -> HubView:
        @require_http_methods(methods)
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                return view(request, *args, user=_authenticate(request), **kwargs)
            except HubError as err:
                return err.response()

        return wrapped

    return decorate


def _authenticate(request: HttpRequest) -> AbstractBaseUser | None:
    try:
        result = ApiTokenAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed as err:
        # This exact message keeps huggingface_hub from reporting a 401 as "repository not found".
        raise HubError(401, None, "Invalid credentials in Authorization header", slug="invalid_token") from err
    return result[0] if result else None


def _wants_unpublished(request: HttpRequest) -> bool:
    return request.META.get(INCLUDE_UNPUBLISHED_HEADER, "").strip().lower() in ("1", "true", "yes")


def _named(request: HttpRequest, name: str, revision: str, user: AbstractBaseUser | None) -> tuple[Ticket, Revision]:
    include = _wants_unpublished(request)
    ticket = selectors.get_ticket(name, revision, include_unpublished=include)
    return ticket, selectors.served_revision(ticket, revision, user=user, include_unpublished=include)


def base_url(request: HttpRequest) -> str:
    """The registry's address as this request names it (the model card's pull snippets use it)."""
    return request.build_absolute_uri("/").rstrip("/")


# --- model info ---------------------------------------------------------------------------------------


@hub_view(["GET"])
def model_info(request: HttpRequest, name: str, revision: str = "main", *,
               user: AbstractBaseUser | None) -> JsonResponse:
    """``GET /api/models/<name>[/revision/<rev>]``."""
    ticket, found = _named(request, name, revision, user)
    return JsonResponse(model_dict(ticket, found, revision_files(found, base_url(request))))


@hub_view(["GET"])
def tree(request: HttpRequest, name: str, revision: str, *, user: AbstractBaseUser | None) -> JsonResponse:
    """``GET /api/models/<name>/tree/<rev>``: every file (a revision has no folders)."""
    _ticket, found = _named(request, name, revision, user)
    return JsonResponse(tree_entries(revision_files(found, base_url(request))), safe=False)


# --- resolve ------------------------------------------------------------------------------------------


def _generated_file(request: HttpRequest, found: Revision, path: str) -> HubFile | None:
    if path not in (VERIFICATION_FILE, CARD_FILE):
        return None
    base = base_url(request)
    listed = next((f for f in files_of([found], base=base if path == CARD_FILE else None)[found.pk]
                   if f.path == path), None)  # verification.json never builds the card
    if listed is None or request.method != "GET":
        return listed
    content = document_content(found, listed) if path == VERIFICATION_FILE else card_content(found, base=base)
    return HubFile(path, listed.sha256, listed.size, content)


def _content_type(path: str) -> str:
    if path.endswith(".json"):
        return "application/json"
    return "text/markdown; charset=utf-8" if path.endswith(".md") else "application/octet-stream"


@hub_view(["GET", "HEAD"])
def resolve(request: HttpRequest, name: str, revision: str, path: str, *,
            user: AbstractBaseUser | None) -> HttpResponseBase:
    """``HEAD|GET /<name>/resolve/<rev>/<path>``: a file with X-Repo-Commit and ETag (its sha256)."""
    # An uploaded file: one query (file, revision, ticket). Otherwise step by step: the precise error, or
    # one of the generated files (verification.json, README.md: built once, then kept).
    fast = selectors.stored_file_named(name, revision, path, user=user, include_unpublished=_wants_unpublished(request))
    if fast is not None:
        found, hub_file = fast
        ticket = found.ticket
    else:
        ticket, found = _named(request, name, revision, user)
        generated = _generated_file(request, found, path)
        if generated is None:
            raise entry_not_found(ticket, found, path)
        hub_file = generated
    content_type = _content_type(path)
    response: HttpResponseBase
    if request.method == "HEAD":
        response = HttpResponse(content_type=content_type)
    elif hub_file.content is not None:
        response = HttpResponse(hub_file.content, content_type=content_type)
    else:
        response = FileResponse(_open_blob(hub_file), content_type=content_type)
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


def _open_blob(hub_file: HubFile) -> Any:
    from django.core.files.storage import default_storage

    try:
        return default_storage.open(hub_file.storage_key or "", "rb")
    except FileNotFoundError as err:
        raise HubError(500, None, f"The stored bytes of {hub_file.path} ({hub_file.sha256}) are missing.",
                       slug="blob_missing") from err


# --- listing ------------------------------------------------------------------------------------------


def _number(params: QueryDict, key: str) -> float | None:
    raw = params.get(key)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError as err:
        raise bad_request(f"{key} must be a number, got {raw!r}.") from err


def model_filters(params: QueryDict) -> ModelFilters:
    """``GET /api/models``' query: ``search``, ``author``, ``task``, ``family``, ``filter`` tags
    (``task:x``, ``family:x``, ``status:verified``), ``max_density``, ``min_density``, ``min_accuracy``,
    ``sort``, ``direction``."""
    tasks = params.getlist("task")
    families = params.getlist("family")
    nothing = False
    for value in params.getlist("filter"):
        for tag in value.split(","):
            key, _, val = tag.strip().partition(":")
            if key == "task" and val:
                tasks.append(val)
            elif key == "family" and val:
                families.append(val)
            elif key == "status" and val and val != Status.VERIFIED:
                nothing = True  # the listing holds published tickets only
            elif tag.strip() not in selectors.UNIVERSAL_TAGS:
                nothing = True  # an unknown tag matches nothing, as on the Hub
    if nothing:
        return ModelFilters(matches_nothing=True)
    sort = params.get("sort") or "lastModified"
    bounds = {key: _number(params, key) for key in ("max_density", "min_density", "min_accuracy")}
    if sort not in selectors.SORTS:
        raise bad_request(f"sort must be one of {', '.join(sorted(selectors.SORTS))}; got {sort!r}.")
    return ModelFilters(
        search=params.get("search") or None, author=params.get("author") or None, tasks=tuple(tasks),
        families=tuple(families), max_density=bounds["max_density"], min_density=bounds["min_density"],
        min_accuracy=bounds["min_accuracy"], sort=sort, descending=params.get("direction", "-1") != "1",
    )


def _int_param(request: HttpRequest, key: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise bad_request(f"{key} must be an integer, got {raw!r}.") from err
    return max(low, min(high, value))


@hub_view(["GET"])
def list_models(request: HttpRequest, *, user: AbstractBaseUser | None) -> JsonResponse:
    """``GET /api/models``: published tickets, filterable and sortable, paginated with a Link header."""
    filters = model_filters(request.GET)
    size = _int_param(request, "limit", PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX)
    page = _int_param(request, "page", 1, 1, 10**9)
    rows, has_next = selectors.listing_page(filters, page=page, size=size)
    files = files_of(rows, base=base_url(request))
    response = JsonResponse([model_dict(r.ticket, r, files[r.pk]) for r in rows], safe=False)
    if has_next:
        params = request.GET.copy()
        params["page"] = str(page + 1)
        params["limit"] = str(size)
        url = request.build_absolute_uri(request.path) + "?" + urlencode(list(params.lists()), doseq=True)
        response["Link"] = f'<{url}>; rel="next"'
    return response
