"""Reads of the web catalog. Every page runs a fixed number of queries whatever the number of tickets:
lists are paginated in SQL, per-row facts (the winning flag, control statistics) come from subqueries in
the same SELECT, and plots read one column set once per change of their data.

Filtering and sorting reuse :func:`registry.tickets.selectors.ticket_list` (one vocabulary with the API).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.core.cache import cache
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import Count, F, JSONField, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import JSONObject
from ticketclient.policy import ROLES

from registry.catalog.plots import FrontierPoint, RunCurve
from registry.tickets.models import Revision, RevisionFile, Status, Task, Ticket
from registry.tickets.selectors import TicketFilters, rows_in_order, ticket_list
from registry.verifications.models import Verification, VerificationRun

CATALOG_PAGE_SIZE = 25
LEADERBOARD_PAGE_SIZE = 50
NEWEST_ON_HOME = 8
#: The columns a list row shows. Rows never join the revisions table (the ticket row carries the latest
#: revision's density and accuracies), so PostgreSQL sorts and limits tickets alone before joining owners.
LIST_FIELDS = ("name", "owner__username", "task__name", "family", "status", "latest_revision_id", "density",
               "claimed_accuracy", "verified_accuracy", "downloads", "created_at", "updated_at")


def _list_rows(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    return qs.select_related(None).select_related("owner", "task").only(*LIST_FIELDS)


#: A list row's attribute -> where it is in the latest revision's own verification (column or decision key).
VERIFICATION_COLUMNS: dict[str, str | tuple[str, ...]] = {
    "winning": "winning", "v_status": "status", "v_outcome": ("outcome",), "dense_accuracy": ("dense_statistic",),
    "reinit_accuracy": ("control_statistics", "reinit"), "random_mask_accuracy": ("control_statistics", "random_mask"),
}


def _json_path(path: str | tuple[str, ...]) -> Any:
    if isinstance(path, str):
        return F(path)
    expression: Any = "decision"
    for key in path:
        expression = KeyTransform(key, expression)
    return expression


def with_verification_columns(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Annotate each ticket with ``own``: its latest revision's own verification's ``winning``, status,
    decision outcome, dense parent's statistic and control statistics as one JSON object, from one subquery
    in the same SELECT (no query per row; one index lookup a row). :func:`verification_rows` spreads it
    into the attributes a row's template reads (``VERIFICATION_COLUMNS``)."""
    return qs.annotate(own=_own_json(VERIFICATION_COLUMNS))


def _own_json(paths: dict[str, str | tuple[str, ...]]) -> Subquery:
    """The latest revision's own verification's values at ``paths`` (name -> column or decision keys) as
    one JSON object, for ``annotate``: one subquery, whatever the number of values."""
    own = Verification.objects.filter(revision=OuterRef("latest_revision"), kind=Verification.Kind.OWN)
    columns = JSONObject(**{name: _json_path(path) for name, path in paths.items()})
    return Subquery(own.annotate(columns=columns).values("columns")[:1], output_field=JSONField())


def verification_rows(rows: Iterable[Ticket]) -> list[Ticket]:
    """``rows`` of :func:`with_verification_columns` with ``winning``, ``v_status``, ``v_outcome``,
    ``dense_accuracy``, ``reinit_accuracy`` and ``random_mask_accuracy`` set (None when not recorded)."""
    out = list(rows)
    for row in out:
        own = getattr(row, "own", None) or {}
        for name in VERIFICATION_COLUMNS:
            setattr(row, name, own.get(name))
    return out


# --- home ---------------------------------------------------------------------------------------------


#: Seconds the task summaries are kept under one version of the tickets table (see task_summaries).
SUMMARY_CACHE_SECONDS = 60


def task_summaries() -> list[Task]:
    """Every task with its number of verified (published) tickets and of all listed tickets and its best
    verified accuracy, from the cache under the tickets' version: the newest ``updated_at`` and the largest
    id, read from their indexes (one query; the aggregate over every ticket runs only when they move). A
    ticket's every status or accuracy change saves ``updated_at`` (tickets.services), a new ticket is a new
    id; only a deleted ticket or an edited task (the admin) goes unseen, for at most ``SUMMARY_CACHE_SECONDS``."""
    version = Ticket.objects.aggregate(changed=Max("updated_at"), last_id=Max("id"))
    changed = version["changed"].isoformat() if version["changed"] else "-"
    key = f"catalog:task-summaries:v1:{changed}:{version['last_id']}"
    summaries = cache.get_or_set(key, _task_summaries, SUMMARY_CACHE_SECONDS)
    return summaries if isinstance(summaries, list) else _task_summaries()


def _task_summaries() -> list[Task]:
    return list(Task.objects.annotate(
        verified_count=Count("tickets", filter=Q(tickets__status=Status.VERIFIED)),
        listed_count=Count("tickets", filter=~Q(tickets__status=Status.WITHDRAWN)),
        best_accuracy=Max("tickets__verified_accuracy", filter=Q(tickets__status=Status.VERIFIED)),
    ).order_by("name"))


def newest_verified(limit: int = NEWEST_ON_HOME) -> list[Ticket]:
    """The most recently verified published tickets (their status changed last); two queries: the ids on the
    ticket table alone (the ``(updated_at, id)`` index of migration tickets 0005), then their rows."""
    ids = Ticket.objects.filter(status=Status.VERIFIED).order_by("-updated_at", "-id").values_list("pk", flat=True)
    return verification_rows(rows_in_order(ids[:limit], with_verification_columns(_list_rows(Ticket.objects.all()))))


# --- catalog ------------------------------------------------------------------------------------------


#: The catalog counts the tickets that match exactly up to this many and says "more than" beyond: a count
#: reads every matching row (3 ms at 10,000 tickets, growing with the catalog), this at most COUNT_CAP + 1.
COUNT_CAP = 1000


class CappedPaginator(Paginator):
    """A paginator that counts at most ``COUNT_CAP + 1`` rows. Beyond the cap the number of pages is open:
    any page number is served (one past the end is empty and says so), and "next" shows while pages are full."""

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if isinstance(object_list, QuerySet):
            return object_list[: COUNT_CAP + 1].count()  # SELECT COUNT(*) FROM (... LIMIT COUNT_CAP + 1)
        return len(object_list)

    @property
    def capped(self) -> bool:
        return self.count > COUNT_CAP

    def validate_number(self, number: Any) -> int:
        if not self.capped:
            return super().validate_number(number)
        try:
            value = int(number)
        except (TypeError, ValueError) as err:
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from err
        if value < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return value

    def page(self, number: Any) -> Page:
        if not self.capped:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return CappedPage(self.object_list[bottom:bottom + self.per_page], number, self)


class CappedPage(Page):
    """A page of a capped count: its end and its successor come from its own rows."""

    def has_next(self) -> bool:
        return len(self.object_list) == self.paginator.per_page

    def end_index(self) -> int:
        return self.start_index() + len(self.object_list) - 1


def catalog_page(filters: TicketFilters, page_number: int | str, *, empty: bool = False) -> Page:
    """One page of the catalog; three queries (a count capped at ``COUNT_CAP``, the page's ids, its rows).
    ``empty`` short-cuts contradictory filters."""
    qs = ticket_list(filters)
    if empty:
        qs = qs.none()
    return _page(qs, CATALOG_PAGE_SIZE, page_number, paginator=CappedPaginator)


def _page(qs: QuerySet[Ticket], size: int, page_number: int | str, *,
          paginator: type[Paginator] = Paginator) -> Page:
    """A page chosen on the tickets' own columns (count, then the page's ids), then its rows with their
    owners, tasks and verification columns (one more query): PostgreSQL would otherwise join and sort every
    matching row with those columns before the LIMIT."""
    page = paginator(qs.values_list("pk", flat=True), size).get_page(page_number)
    page.object_list = verification_rows(
        rows_in_order(page.object_list, with_verification_columns(_list_rows(Ticket.objects.all()))))
    return page


def architectures() -> list[str]:
    """Architecture families of listed tickets, for the filter menu; one query."""
    return list(
        Ticket.objects.exclude(status=Status.WITHDRAWN).exclude(family="")
        .order_by("family").values_list("family", flat=True).distinct()
    )


#: Seconds the catalog's filter menus (task names, architecture families) are kept: a new family appears in
#: the menu at most this late; no row, count, status or accuracy comes from it.
MENU_CACHE_SECONDS = 60


@dataclass(frozen=True)
class FilterMenus:
    tasks: list[str]
    architectures: list[str]


def filter_menus() -> FilterMenus:
    """The catalog's task and architecture menus, from the cache (two queries every ``MENU_CACHE_SECONDS``:
    the families are a DISTINCT over every ticket)."""
    def build() -> FilterMenus:
        return FilterMenus(tasks=list(Task.objects.order_by("name").values_list("name", flat=True)),
                           architectures=architectures())

    menus = cache.get_or_set("catalog:filter-menus:v1", build, MENU_CACHE_SECONDS)
    return menus if isinstance(menus, FilterMenus) else build()


# --- leaderboards -------------------------------------------------------------------------------------


def leaderboard_queryset(task: Task) -> QuerySet[Ticket]:
    """The verified tickets of ``task``, best verified accuracy first, then the sparser, then the older (the
    page's rows get their verification columns in :func:`_page`)."""
    return Ticket.objects.filter(task=task, status=Status.VERIFIED).order_by(
        "-verified_accuracy", "density", "created_at", "id")


def leaderboard_page(task: Task, page_number: int | str) -> Page:
    return _page(leaderboard_queryset(task), LEADERBOARD_PAGE_SIZE, page_number)


def frontier_version(task: Task, *, count: int | None = None) -> dict[str, Any]:
    """What the task's plot depends on (its cache key is made from it): the number of its verified tickets
    and the newest ``updated_at`` among them (one entry of the ``(task_id, status, updated_at)`` index; a
    ticket that becomes verified, changes accuracy or leaves saves ``updated_at``). ``count``: that number
    when the caller has it already (the leaderboard's paginator counted the same tickets)."""
    verified = Ticket.objects.filter(task=task, status=Status.VERIFIED)
    changed = verified.order_by("-updated_at").values_list("updated_at", flat=True).first()
    return {"task": task.name, "baseline": task.dense_baseline_accuracy,
            "n": verified.count() if count is None else count, "changed": changed}


def frontier_points(task: Task) -> list[FrontierPoint]:
    """Every verified ticket of ``task`` with its controls' and its dense parent's statistics and its
    outcome; one query."""
    from django.urls import reverse

    from registry.badges.badge import outcome_key

    own = _own_json({"controls": ("control_statistics",), "dense": ("dense_statistic",), "outcome": ("outcome",),
                     "winning": "winning"})
    rows = (
        Ticket.objects.filter(task=task, status=Status.VERIFIED, density__isnull=False,
                              verified_accuracy__isnull=False)
        .annotate(own=own)
        .order_by("id")
        .values_list("name", "density", "verified_accuracy", "own")
    )
    points = []
    for name, density, accuracy, own_columns in rows:
        if density is None or accuracy is None:  # excluded by the query; narrows the types
            continue
        own_columns = own_columns or {}
        controls, dense, outcome, winning = (own_columns.get(k) for k in ("controls", "dense", "outcome", "winning"))
        stats = {role: float(v) for role, v in (controls or {}).items()
                 if role in ("reinit", "random_mask") and isinstance(v, int | float)}
        points.append(FrontierPoint(
            name=name, density=density, accuracy=accuracy, controls=stats,
            dense=float(dense) if isinstance(dense, int | float) else None,
            outcome=outcome_key("verified", winning=winning, outcome=outcome if isinstance(outcome, str) else None),
            url=reverse("catalog:ticket", kwargs={"name": name}),
        ))
    return points


# --- ticket page --------------------------------------------------------------------------------------


def ticket_revisions(ticket: Ticket) -> list[Revision]:
    return list(ticket.revisions.defer("config", "architecture", "layer_densities", "budget").order_by("-number"))


def files_of(revision: Revision) -> list[RevisionFile]:
    return list(revision.files.order_by("path"))


@dataclass(frozen=True)
class RoleSummary:
    """The runs of one role in a verification, summarised for the page."""

    role: str
    label: str
    accuracies: list[float]
    statistic: float | None
    spread: float | None
    mean: float | None
    std: float | None

    @property
    def low(self) -> float | None:
        return min(self.accuracies) if self.accuracies else None

    @property
    def high(self) -> float | None:
        return max(self.accuracies) if self.accuracies else None


ROLE_ORDER = list(ROLES)  # ticket, dense parent, then the controls


def role_summaries(verification: Verification) -> list[RoleSummary]:
    """Per role: its runs' final test accuracies, the policy's statistic and spread (from the decision),
    and the plain mean and standard deviation over seeds."""
    decision = verification.decision or {}
    statistics = dict(decision.get("control_statistics") or {})
    if decision.get("ticket_statistic") is not None:
        statistics["ticket"] = decision["ticket_statistic"]
    if decision.get("dense_statistic") is not None:
        statistics["dense"] = decision["dense_statistic"]
    spreads = decision.get("spreads") or {}
    by_role: dict[str, list[float]] = {}
    for run in verification.runs.all():
        by_role.setdefault(run.role, []).append(run.final_test_accuracy)
    labels = {"dense": "dense parent (its own init, every weight)", **dict(VerificationRun.Role.choices)}
    out = []
    for role in sorted(set(by_role) | set(statistics), key=lambda r: ROLE_ORDER.index(r) if r in ROLE_ORDER else 9):
        values = by_role.get(role, [])
        mean = std = None
        if values:
            mean = average = sum(values) / len(values)
            std = (sum((v - average) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else None
        out.append(RoleSummary(role=role, label=labels.get(role, role), accuracies=values,
                               statistic=statistics.get(role), spread=spreads.get(role), mean=mean, std=std))
    return out


def run_curves(verification: Verification) -> list[RunCurve]:
    curves = []
    for run in verification.runs.all():
        points = [p for p in (run.curve or []) if isinstance(p, dict) and "iteration" in p]
        curves.append(RunCurve(role=run.role, seed=run.seed, iterations=[int(p["iteration"]) for p in points],
                               accuracies=[float(p.get("test_accuracy") or 0.0) for p in points]))
    return curves


def curve_version(verification: Verification) -> dict[str, Any]:
    return {"verification": verification.pk, "updated": verification.updated_at,
            "runs": [(r.pk, r.role, r.seed) for r in verification.runs.all()]}


def tickets_of(user: Any) -> list[Ticket]:
    """Every ticket ``user`` owns, withdrawn ones included, newest first, with their verification columns."""
    qs = _list_rows(Ticket.objects.filter(owner=user)).order_by("-created_at", "-id")
    return verification_rows(with_verification_columns(qs))
