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

from django.db.models import F, Prefetch, QuerySet
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


def get_ticket(name: str, *, with_revisions: bool = True) -> Ticket:
    """The ticket called ``name`` with its task, owner and (``with_revisions``) its served and latest
    revisions joined: one query. :class:`HubError` ``RepoNotFound`` if there is none."""
    related = ["task", "owner"] + (["served_revision", "latest_revision"] if with_revisions else [])
    ticket = Ticket.objects.select_related(*related).filter(name=name).first()
    if ticket is None:
        raise repo_not_found(name)
    return ticket


def _named_revision(ticket: Ticket, ref: str, *, include_unpublished: bool) -> Revision:
    if ref == "main":
        found = ticket.latest_revision if include_unpublished else ticket.served_revision
        if found is None:
            raise not_served(ticket, None, ref)
    elif COMMIT_RE.match(ref):
        served = ticket.served_revision
        found = served if served is not None and served.commit == ref else (
            ticket.revisions.filter(commit=ref).first())
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
    if is_published(found):
        return found
    if not include_unpublished:
        raise not_served(ticket, found, ref)
    if found.status in PRIVATE_STATUSES and not may_see_unpublished(user, ticket):
        if user is None:
            raise HubError(401, None, f"Log in (a registry token) to pull unpublished revisions of {ticket.name!r}.",
                           slug="not_authenticated", ticket_status=str(found.status))
        raise HubError(403, "GatedRepo", f"Only the owner of {ticket.name!r} may pull its unpublished revisions.",
                       slug="permission_denied", ticket_status=str(found.status))
    return found


# --- files and verifications ------------------------------------------------------------------------------


def stored_files(revisions: Sequence[Revision]) -> dict[int, list[HubFile]]:
    """The uploaded files of each revision (blobs in storage), by revision id, in one query."""
    found: dict[int, list[HubFile]] = {r.pk: [] for r in revisions}
    for f in RevisionFile.objects.filter(revision__in=[r.pk for r in revisions]):
        found[f.revision_id].append(_blob(f))
    return found


def stored_file(revision: Revision, path: str) -> HubFile | None:
    f = RevisionFile.objects.filter(revision=revision, path=path).first()
    return _blob(f) if f is not None else None


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
#: Columns of a listed revision and its ticket that neither a model dict nor a model card reads.
LISTING_DEFERRED = ("architecture", "budget", "ticket__layer_densities")


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
    rows = rows_in_order(ids, published_revisions().defer(*LISTING_DEFERRED))
    return rows[:size], len(rows) > size
