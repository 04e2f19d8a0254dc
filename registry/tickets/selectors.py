"""Every read of tickets: listing with filters and sorting, lookups by name and commit, files."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.shortcuts import get_object_or_404
from ticketclient.constants import COMMIT_RE

from registry.common.errors import ApiError
from registry.tickets.models import Revision, RevisionFile, Status, Task, Ticket

# --- who may see an unpublished revision: the one rule --------------------------------------------------
# A revision is published when it is verified and its ticket is not withdrawn. Everyone sees published ones;
# the ticket's owner and staff also see the others (pending, verifying, rejected, withdrawn). The catalog
# pages, the REST API, the verification records and the Hub protocol all ask these functions.


def is_staff(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_staff)


def may_see_unpublished(user: Any, ticket: Ticket) -> bool:
    """The ticket's owner and staff see its unpublished revisions (and may act on the ticket)."""
    return is_staff(user) or bool(user is not None and user.is_authenticated and ticket.owner_id == user.pk)


def is_published(revision: Revision) -> bool:
    return revision.status == Status.VERIFIED and revision.ticket.status != Status.WITHDRAWN


def can_see_revision(user: Any, revision: Revision) -> bool:
    return is_published(revision) or may_see_unpublished(user, revision.ticket)


def visible_revisions_q(user: Any, prefix: str = "") -> Q:
    """The same rule as a filter on revisions (``prefix``: the lookup path to a revision, e.g. ``revision__``)."""
    if is_staff(user):
        return Q()
    public = Q(**{f"{prefix}status": Status.VERIFIED}) & ~Q(**{f"{prefix}ticket__status": Status.WITHDRAWN})
    if user is not None and user.is_authenticated:
        return public | Q(**{f"{prefix}ticket__owner": user})
    return public


def visible_revisions(user: Any) -> QuerySet[Revision]:
    return Revision.objects.filter(visible_revisions_q(user))


#: ``sort`` values: each in its natural direction (best, sparsest, newest, most first); ``-x`` reverses.
SORTS: dict[str, list[Any]] = {
    "accuracy": [
        F("verified_accuracy").desc(nulls_last=True),
        F("claimed_accuracy").desc(nulls_last=True),
        "-created_at",
    ],
    "density": [F("density").asc(nulls_last=True), "-created_at"],
    "newest": ["-created_at", "-id"],
    "downloads": ["-downloads", "-created_at"],
}


def _reverse(term: Any) -> Any:
    if isinstance(term, str):
        return term[1:] if term.startswith("-") else f"-{term}"
    return term.copy().reverse_ordering() if hasattr(term, "reverse_ordering") else term


def _sort_terms(sort: str) -> list[Any]:
    key = sort.lstrip("-")
    if key not in SORTS:
        raise ApiError(
            "invalid_sort", f"Unknown sort {sort!r}; use one of {', '.join(SORTS)} (prefix '-' to reverse).",
            field="sort",
        )
    terms = SORTS[key]
    return [_reverse(t) for t in terms] if sort.startswith("-") else list(terms)


@dataclass(frozen=True)
class TicketFilters:
    task: str | None = None
    architecture: str | None = None
    density_min: float | None = None
    density_max: float | None = None
    statuses: tuple[str, ...] = ()
    owner: str | None = None
    search: str | None = None
    sort: str = "newest"
    #: True: only tickets whose served (latest verified) revision was found winning; False: only published
    #: ones that are not winning; None: no condition.
    winning: bool | None = None


def ticket_list(filters: TicketFilters) -> QuerySet[Ticket]:
    """Tickets matching ``filters``; withdrawn ones only when asked for by status."""
    qs: QuerySet[Ticket] = Ticket.objects.select_related("owner", "task", "latest_revision")
    if filters.statuses:
        qs = qs.filter(status__in=filters.statuses)
    else:
        qs = qs.exclude(status=Status.WITHDRAWN)
    if filters.task:  # task_id = (the id): a condition on the ticket row, which its indexes can serve
        qs = qs.filter(task=Subquery(Task.objects.filter(name=filters.task).order_by().values("pk")[:1]))
    if filters.architecture:
        qs = qs.filter(family=filters.architecture)
    if filters.density_min is not None:
        qs = qs.filter(density__gte=filters.density_min)
    if filters.density_max is not None:
        qs = qs.filter(density__lte=filters.density_max)
    if filters.owner:
        qs = qs.filter(owner__username=filters.owner)
    if filters.search:
        for word in filters.search.split():
            qs = qs.filter(_search_q(word))
    if filters.winning is not None:
        qs = _winning(qs, filters.winning)
    terms = _sort_terms(filters.sort)
    if filters.search and connection.vendor == "postgresql":
        terms = [_not_by_index(terms[0]), *terms[1:]]
    return qs.order_by(*terms)


def _not_by_index(term: Any) -> Any:
    """The sort term as an expression no index matches (``column + 0``, same order). A search's matches come
    from a bitmap of index scans; with a plain column PostgreSQL may instead walk that column's index,
    filtering every ticket in turn while hoping to meet the few matches early (33 ms at 10,000 tickets for
    10 matches, 0.4 ms from the bitmap), depending on its row estimate."""
    if isinstance(term, str):
        term = F(term[1:]).desc() if term.startswith("-") else F(term).asc()
    column = getattr(getattr(term, "expression", None), "name", None)
    if not isinstance(term, OrderBy) or column not in _NUMERIC_SORT_COLUMNS:
        return term
    wrapped = term.copy()
    wrapped.expression = ExpressionWrapper(F(column) + Value(0), output_field=FloatField())
    return wrapped


#: Sort keys ``+ 0`` applies to (``created_at``, a timestamp, has no index to avoid).
_NUMERIC_SORT_COLUMNS = frozenset({"verified_accuracy", "claimed_accuracy", "density", "downloads"})


def _search_q(word: str) -> Q:
    """Tickets whose name, architecture family or task contains ``word``, or whose owner is ``word``.

    Every branch is a condition on the ticket row itself (the task and owner matches are ids looked up
    once), so on PostgreSQL the OR is a ``BitmapOr`` of index scans (the ``pg_trgm`` indexes of migration
    tickets 0005 for the ``icontains``) instead of a join and a filter over every ticket.
    """
    tasks = Task.objects.filter(name__icontains=word).order_by().values("pk")
    owners = get_user_model().objects.filter(username__iexact=word).order_by().values("pk")
    return (Q(name__icontains=word) | Q(family__icontains=word)
            | _id_in("task_id", tasks) | _id_in("owner_id", owners))


def _id_in(column: str, ids: QuerySet[Any]) -> Q:
    """``column IN (ids)``; on PostgreSQL ``column = ANY(ARRAY(ids))``: the subquery runs once (an InitPlan)
    and the condition stays an index condition inside an OR, where ``IN (subquery)`` is a per-row filter."""
    if connection.vendor != "postgresql":
        return Q(**{f"{column}__in": ids})
    return Q(_EqualsAnyOf(F(column), Subquery(ids)))


class _EqualsAnyOf(Func):
    """``column = ANY(ARRAY(subquery))`` (PostgreSQL); the subquery renders with its own parentheses."""

    arg_joiner = " = ANY(ARRAY"
    template = "(%(expressions)s))"
    output_field = BooleanField()
    conditional = True


def rows_in_order(ids: Iterable[int] | None, rows: QuerySet[Any]) -> list[Any]:
    """The rows of ``rows`` whose pk is in ``ids``, in the order of ``ids``; one query.

    A page is chosen first on a narrow query (``qs.values_list("pk", flat=True)``: filters and sort keys only),
    then only its rows are joined and loaded: PostgreSQL otherwise joins (and carries through the sort) every
    matching row with its owner, task and revision columns before the LIMIT, whatever its statistics say.
    """
    wanted = list(ids or ())
    found = {row.pk: row for row in rows.filter(pk__in=wanted)} if wanted else {}
    return [found[i] for i in wanted if i in found]


def _winning(qs: QuerySet[Ticket], winning: bool) -> QuerySet[Ticket]:
    """Published tickets whose served revision (the latest verified one) has a winning own verification
    (``winning``) or has not (``not winning``)."""
    qs = qs.filter(status=Status.VERIFIED)
    if not apps.is_installed("registry.verifications"):
        return qs if not winning else qs.none()
    from registry.verifications.models import Verification

    won = Verification.objects.filter(revision=OuterRef("served_revision"), kind=Verification.Kind.OWN, winning=True)
    return qs.filter(Exists(won) if winning else ~Exists(won))


#: Columns a list row never shows: JSON documents a row does not need to carry.
_ROW_DEFERRED = ("layer_densities", "latest_revision__config", "latest_revision__architecture",
                 "latest_revision__layer_densities", "latest_revision__budget")


def ticket_rows() -> QuerySet[Ticket]:
    """Tickets with what a list row shows (owner, task, latest revision) joined; for :func:`rows_in_order`."""
    return Ticket.objects.select_related("owner", "task", "latest_revision").defer(*_ROW_DEFERRED)


def get_ticket(name: str) -> Ticket:
    return get_object_or_404(Ticket.objects.select_related("owner", "task", "latest_revision"), name=name)


_COMMIT = COMMIT_RE


def get_revision(ticket: Ticket, ref: str) -> Revision:
    """A revision by 40-hex commit id, ``latest``, or ``verified`` (the newest verified one)."""
    revisions = ticket.revisions.select_related("ticket")
    if ref == "latest":
        revision = revisions.order_by("-number").first()
    elif ref == "verified":
        revision = revisions.filter(status=Status.VERIFIED).order_by("-number").first()
    elif _COMMIT.match(ref):
        revision = revisions.filter(commit=ref).first()
    else:
        raise ApiError(
            "invalid_revision", f"A revision is a 40-hex commit id, 'latest' or 'verified'; got {ref!r}.",
            field="revision", status_code=404,
        )
    if revision is None:
        raise ApiError("revision_not_found", f"{ticket.name} has no revision {ref!r}.", field="revision",
                       status_code=404)
    return revision


def revision_files(revision: Revision) -> QuerySet[RevisionFile]:
    return revision.files.order_by("path")


def get_revision_file(revision: Revision, path: str) -> RevisionFile:
    file = revision.files.filter(path=path).first()
    if file is None:
        raise ApiError("file_not_found", f"Revision {revision.commit} has no file {path!r}.", field="path",
                       status_code=404)
    return file


def task_list() -> QuerySet[Task]:
    return Task.objects.order_by("name")
