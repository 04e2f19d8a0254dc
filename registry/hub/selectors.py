"""Reads of the Hub protocol: which ticket and revision a request names and may see, their files, their
finished verifications, and the listing. Who may see an unpublished revision is registry.tickets.selectors'
rule (:func:`~registry.tickets.selectors.is_published`, :func:`~registry.tickets.selectors.may_see_unpublished`).

A request for ``main`` reads the ticket and the revision it serves in one query: the served revision is
stored on the ticket (``Ticket.served_revision``, kept by the tickets' services), and ``main`` with
``X-Ticket-Include-Unpublished`` is the latest revision, also stored (``Ticket.latest_revision``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet
from ticketclient.constants import COMMIT_RE

from registry.hub.errors import HubError, not_served, repo_not_found, revision_not_found
from registry.tickets.models import Revision, RevisionFile, Status, Ticket
from registry.tickets.selectors import is_published, may_see_unpublished, rows_in_order
from registry.verifications.models import Verification, VerificationRun

#: Statuses whose files only the owner and staff may pull (a withdrawn ticket's verified files were public).
PRIVATE_STATUSES = frozenset({Status.PENDING, Status.VERIFYING, Status.REJECTED})


@dataclass(frozen=True)
class HubFile:
    """A file of a revision as the protocol lists it; ``content`` for generated files built in memory,
    ``storage_key`` for bytes in the file storage (a blob, a stored verification document)."""

    path: str
    sha256: str
    size: int
    content: bytes | None = None
    storage_key: str | None = None


# --- what a request names -----------------------------------------------------------------------------


def _which(ref: str, *, include_unpublished: bool) -> str | None:
    """The ticket's stored revision that ``ref`` names (``served_revision`` or ``latest_revision``), if any."""
    if ref != "main":
        return None
    return "latest_revision" if include_unpublished else "served_revision"


def get_ticket(name: str, ref: str = "main", *, include_unpublished: bool = False) -> Ticket:
    """The ticket called ``name`` with its task and owner and, for ``main``, the revision it names joined:
    one query. :class:`HubError` ``RepoNotFound`` if there is none."""
    related, columns = ["task", "owner"], list(TICKET_COLUMNS)
    if which := _which(ref, include_unpublished=include_unpublished):
        related.append(which)
        columns += [which, *(f"{which}__{c}" for c in REVISION_COLUMNS)]
    try:
        return Ticket.objects.select_related(*related).only(*columns).get(name=name)
    except Ticket.DoesNotExist:
        raise repo_not_found(name) from None


def _named_revision(ticket: Ticket, ref: str, *, include_unpublished: bool) -> Revision:
    if which := _which(ref, include_unpublished=include_unpublished):
        found = getattr(ticket, which)
        if found is None:
            raise not_served(ticket, None, ref)
    elif COMMIT_RE.match(ref):
        found = ticket.revisions.filter(commit=ref).first()
        if found is None:
            raise revision_not_found(f"Ticket {ticket.name!r} has no revision {ref}.")
    else:
        raise revision_not_found(f"Unknown revision {ref!r}: use 'main' or a 40-character commit id.")
    found.ticket = ticket  # the ticket is loaded: no query to read it back
    return found


def served_revision(ticket: Ticket, ref: str, *, user: Any, include_unpublished: bool) -> Revision:
    """The revision ``ref`` (``main`` or a 40-hex commit id) names, if this request may have it.

    Published revisions (see :func:`registry.tickets.selectors.is_published`) go to everyone; the others
    only to requests that ask with ``include_unpublished``, and pending, verifying and rejected ones only to
    the ticket's owner and staff (401 for an anonymous request, 403 for anyone else).
    """
    found = _named_revision(ticket, ref, include_unpublished=include_unpublished)
    check_may_have(found, ref, user=user, include_unpublished=include_unpublished)
    return found


def check_may_have(revision: Revision, ref: str, *, user: Any, include_unpublished: bool) -> None:
    """Raise the :class:`HubError` that refuses ``revision`` (named ``ref``) to this request, if any."""
    if is_published(revision):
        return
    ticket = revision.ticket
    if not include_unpublished:
        raise not_served(ticket, revision, ref)
    if revision.status in PRIVATE_STATUSES and not may_see_unpublished(user, ticket):
        if user is None:
            raise HubError(401, None, f"Log in (a registry token) to pull unpublished revisions of {ticket.name!r}.",
                           slug="not_authenticated", ticket_status=str(revision.status))
        raise HubError(403, "GatedRepo", f"Only the owner of {ticket.name!r} may pull its unpublished revisions.",
                       slug="permission_denied", ticket_status=str(revision.status))


def stored_file_named(name: str, ref: str, path: str, *, user: Any,
                      include_unpublished: bool) -> tuple[Revision, HubFile] | None:
    """The fast path of ``resolve`` for an uploaded file: the revision ``ref`` names and its file ``path`` in one
    query (file, revision and ticket joined), if this request may have it. None when that finds no row (an
    unknown name, revision or path, or a generated file): the caller then asks step by step, for the precise
    error or the generated file."""
    which = _which(ref, include_unpublished=include_unpublished)
    if which is not None:
        condition = Q(**{f"revision__ticket__{which}": F("revision")})
    elif COMMIT_RE.match(ref):
        condition = Q(revision__commit=ref)
    else:
        return None
    rows = RevisionFile.objects.select_related("revision", "revision__ticket")
    try:
        row = rows.get(condition, revision__ticket__name=name, path=path)
    except RevisionFile.DoesNotExist:
        return None
    check_may_have(row.revision, ref, user=user, include_unpublished=include_unpublished)
    return row.revision, _blob(row)


# --- files and verifications ------------------------------------------------------------------------------


def stored_files(revisions: Sequence[Revision]) -> dict[int, list[HubFile]]:
    """The uploaded files of each revision (blobs in storage), by revision id, in one query."""
    found: dict[int, list[HubFile]] = {r.pk: [] for r in revisions}
    for f in RevisionFile.objects.filter(revision__in=[r.pk for r in revisions]):
        found[f.revision_id].append(_blob(f))
    return found


def _blob(f: RevisionFile) -> HubFile:
    from registry.tickets.blobs import blob_key

    return HubFile(f.path, f.sha256, f.size, storage_key=blob_key(f.sha256))


def finished_verifications(revisions: Sequence[Revision]) -> dict[int, Verification]:
    """The finished own-task verification of each revision, by revision id, in one query (no runs: see
    :func:`with_runs`)."""
    if not revisions:
        return {}
    found = Verification.objects.filter(revision__in=[r.pk for r in revisions], kind=Verification.Kind.OWN,
                                        status__in=Verification.FINISHED)
    return {v.revision_id: v for v in found}


def with_runs(verifications: Iterable[Verification]) -> None:
    """Load the runs of ``verifications`` (without their curves) in one query; for the few that need them
    (a verification document or a model card built on a miss)."""
    from django.db.models import prefetch_related_objects

    todo = [v for v in verifications if not hasattr(v, "_prefetched_objects_cache")
            or "runs" not in v._prefetched_objects_cache]
    if todo:
        prefetch_related_objects(todo, Prefetch("runs", queryset=VerificationRun.objects.defer("curve")))


# --- the listing --------------------------------------------------------------------------------------

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
#: Tags that every listed ticket carries (a filter on them keeps everything).
UNIVERSAL_TAGS = frozenset({"", "lottery-ticket", "ticketclient", "status:verified"})
#: The columns a served revision and its ticket are read for: the model dict, the manifest's cache key, who
#: may have it and (on a cache miss) the model card (``config``). Any other column read would be one more
#: query (a row of the listing: one per row); tests/hub counts them.
REVISION_COLUMNS = (
    "ticket", "number", "commit", "family", "status", "status_changed_at", "density", "layer_densities",
    "num_parameters", "claimed_accuracy", "verified_accuracy", "downloads", "created_at", "config",
)
TICKET_COLUMNS = (
    "name", "family", "status", "downloads", "created_at", "withdrawn_reason", "owner", "task",
    "task__name", "owner__username",
)
LISTING_COLUMNS = REVISION_COLUMNS + tuple(f"ticket__{c}" for c in TICKET_COLUMNS)


@dataclass(frozen=True)
class ModelFilters:
    """What ``GET /api/models`` asks for (see :func:`registry.hub.views.model_filters`)."""

    search: str | None = None
    author: str | None = None
    tasks: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    max_density: float | None = None
    min_density: float | None = None
    min_accuracy: float | None = None
    sort: str = "lastModified"
    descending: bool = True
    #: A filter tag no published ticket carries (an unknown tag, a status other than verified).
    matches_nothing: bool = False


def published_revisions() -> QuerySet[Revision]:
    """The revision each published ticket serves as ``main``: its latest verified one (stored on the ticket as
    ``served_revision``), if not withdrawn. One join, no per-ticket subquery."""
    return (
        Revision.objects.filter(ticket__served_revision=F("pk")).exclude(ticket__status=Status.WITHDRAWN)
        .select_related("ticket", "ticket__task", "ticket__owner")
    )


def listed_revisions(filters: ModelFilters) -> QuerySet[Revision]:
    """Published revisions matching ``filters``, sorted (ties: newest first); ``filters.sort`` is a key of
    :data:`SORTS` (the view checks it)."""
    query = published_revisions()
    if filters.matches_nothing:
        return query.none()
    if filters.search:
        query = query.filter(ticket__name__icontains=filters.search)
    if filters.author:
        query = query.filter(ticket__owner__username=filters.author)
    for task in filters.tasks:
        query = query.filter(ticket__task__name=task)
    for family in filters.families:
        query = query.filter(family=family)
    if filters.max_density is not None:
        query = query.filter(density__lte=filters.max_density)
    if filters.min_density is not None:
        query = query.filter(density__gte=filters.min_density)
    if filters.min_accuracy is not None:
        query = query.filter(verified_accuracy__gte=filters.min_accuracy)
    key = SORTS[filters.sort]
    return query.order_by(f"-{key}" if filters.descending else key, "-pk")


def listing_page(filters: ModelFilters, *, page: int, size: int) -> tuple[list[Revision], bool]:
    """Page ``page`` (from 1) of ``size`` listed revisions, and whether a next page exists: the page's ids
    on the narrow query, then its rows (two queries, whatever the planner's statistics)."""
    ids = list(listed_revisions(filters).values_list("pk", flat=True)[(page - 1) * size: page * size + 1])
    rows = rows_in_order(ids, published_revisions().only(*LISTING_COLUMNS))
    return rows[:size], len(rows) > size
