"""Server-rendered pages of the catalog (see urls.py for the map). Reads go through selectors; writes
(sign-up, tokens) through the accounts services. Plots are SVG endpoints cached by a key of their data."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from ticketclient.constants import COMMIT_RE

from registry.accounts import services as account_services
from registry.accounts.models import ApiToken
from registry.badges.badge import outcome_key
from registry.catalog import plots, selectors
from registry.catalog.architecture import layer_rows
from registry.catalog.forms import (
    SORT_CHOICES,
    STATUS_CHOICES,
    CatalogFilterForm,
    SignUpForm,
    SubmitForm,
    TokenForm,
)
from registry.catalog.modelcard import client_install_line
from registry.common.errors import ApiError
from registry.common.throttling import web_throttle_wait
from registry.hub import views as hub_views
from registry.tickets.limits import max_part_bytes
from registry.tickets.models import Revision, Status, Task, Ticket
from registry.tickets.selectors import can_see_revision, may_see_unpublished
from registry.tickets.services import BundleUpload, submit_bundle
from registry.verifications.models import Verification, VerificationRun

LOGIN_URL = "catalog:login"
_COMMIT = COMMIT_RE


def _svg_response(svg: str, *, max_age: int = 300) -> HttpResponse:
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={max_age}"
    return response


def _task(name: str) -> Task:
    task = Task.objects.filter(name=name).first()
    if task is None:
        known = ", ".join(Task.objects.order_by("name").values_list("name", flat=True)[:20]) or "none yet"
        raise Http404(f"There is no task named “{name}” on this hub (tasks: {known}).")
    return task


def _ticket(qs: Any, name: str) -> Ticket:
    ticket = qs.filter(name=name).first()
    if ticket is None:
        raise Http404(f"There is no ticket named “{name}”. Search the catalog for a similar name.")
    return ticket


# --- home, catalog, leaderboards ----------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/home.html", {
        "tasks": list(selectors.task_summaries()),
        "newest": selectors.newest_verified(),
    })


@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    form = CatalogFilterForm(request.GET)
    filters, empty = form.to_filters()
    page = selectors.catalog_page(filters, request.GET.get("page") or 1, empty=empty)
    menus = selectors.filter_menus()
    return render(request, "catalog/catalog.html", {
        "form": form,
        "filters": filters,
        "page": page,
        "tasks": menus.tasks,
        "architectures": menus.architectures,
        "sorts": SORT_CHOICES,
        "statuses": STATUS_CHOICES,
        "count_cap": selectors.COUNT_CAP,
    })


@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/tasks.html", {"tasks": list(selectors.task_summaries())})


def _frontier_key(task: Task, *, count: int | None = None) -> str:
    return plots.data_key("frontier", selectors.frontier_version(task, count=count))


@require_GET
def leaderboard(request: HttpRequest, name: str) -> HttpResponse:
    task = _task(name)
    page = selectors.leaderboard_page(task, request.GET.get("page") or 1)
    return render(request, "catalog/leaderboard.html", {
        "task": task, "page": page, "rank_offset": page.start_index() - 1 if page.object_list else 0,
        "plot_version": _frontier_key(task, count=page.paginator.count).rsplit(":", 1)[-1][:12],
    })


def frontier_svg_for(task: Task, *, wide: bool = True, key: str | None = None) -> str:
    """The task's static frontier image, from the storage (drawn once per change of its data)."""
    key = f"{key or _frontier_key(task)}:{'wide' if wide else 'narrow'}"
    return plots.stored_plot(key, lambda: plots.frontier_svg(
        selectors.frontier_points(task), baseline=task.dense_baseline_accuracy, task=task.name, wide=wide))


@require_GET
def frontier_plot(request: HttpRequest, name: str) -> HttpResponse:
    """The static image (the no-JavaScript fallback of the chart); ``?size=narrow`` for phones."""
    task = _task(name)
    svg = frontier_svg_for(task, wide=request.GET.get("size") != "narrow")
    # The leaderboard links the plot with ?v=<digest of its data>: such a URL may be cached for a day.
    return _svg_response(svg, max_age=86400 if request.GET.get("v") else 300)


def frontier_spec_for(task: Task, *, key: str | None = None) -> str:
    """The chart's spec as JSON text, from the storage (built once per change of its data)."""
    key = f"{key or _frontier_key(task)}:spec"
    return plots.stored_plot(key, lambda: json.dumps(plots.frontier_spec(
        selectors.frontier_points(task), baseline=task.dense_baseline_accuracy, task=task.name),
        separators=(",", ":")), suffix="json")


@require_GET
def frontier_chart(request: HttpRequest, name: str) -> HttpResponse:
    """The interactive chart's Vega-Lite spec (JSON), cached by a digest of its data."""
    task = _task(name)
    response = HttpResponse(frontier_spec_for(task), content_type="application/json")
    response["Cache-Control"] = f"public, max-age={86400 if request.GET.get('v') else 60}"
    return response


# --- ticket page --------------------------------------------------------------------------------------


def _may_see_details(user: Any, ticket: Ticket, revision: Revision) -> bool:
    """Runs, seeds and curves of a verification: public once the revision is verified (and the ticket
    not withdrawn); always for the ticket's owner and for staff (the rule of verifications.selectors).
    The verdict itself (measured statistic, threshold, reason) is public once finished: see the page."""
    return can_see_revision(user, revision)


def _revision_for(request: HttpRequest, ticket: Ticket) -> Revision:
    ref = request.GET.get("revision") or ""
    revisions = ticket.revisions.select_related("created_by")
    if not ref:
        revision = revisions.order_by("-number").first()
    elif _COMMIT.match(ref):
        revision = revisions.filter(commit=ref).first()
    else:
        raise Http404(f"“{ref}” is not a revision of {ticket.name}: a revision is named by its 40-character "
                      "commit id (see the ticket's Revisions table).")
    if revision is None:
        raise Http404(f"The ticket {ticket.name} has no revision {ref}." if ref else
                      f"The ticket {ticket.name} has no revision yet.")
    return revision


def _verifications(revision: Revision) -> list[Verification]:
    return list(
        Verification.objects.filter(revision=revision)
        .prefetch_related(Prefetch("runs", queryset=VerificationRun.objects.order_by("role", "seed")))
        .order_by("kind", "task")
    )


@require_GET
def ticket_detail(request: HttpRequest, name: str) -> HttpResponse:
    ticket = _ticket(Ticket.objects.select_related("owner", "task"), name)
    revision = _revision_for(request, ticket)
    verifications = _verifications(revision)
    own = next((v for v in verifications if v.kind == Verification.Kind.OWN), None)
    transfers = [v for v in verifications if v.kind == Verification.Kind.TRANSFER]
    details = _may_see_details(request.user, ticket, revision)
    files = selectors.files_of(revision)
    rows, from_core = layer_rows(revision, ticket.task, files)
    base = request.build_absolute_uri("/").rstrip("/")
    revisions = selectors.ticket_revisions(ticket)
    latest_number = max((r.number for r in revisions), default=revision.number)
    claims = (revision.config or {}).get("claims") or {}
    published = revision.status == Status.VERIFIED and ticket.status != Status.WITHDRAWN
    published_revision = None if ticket.status == Status.WITHDRAWN else next(
        (r for r in revisions if r.status == Status.VERIFIED), None)
    shown_status = Status.WITHDRAWN if ticket.status == Status.WITHDRAWN else revision.status
    decision = (own.decision or {}) if own is not None else {}
    outcome = outcome_key(shown_status, winning=own.winning if own else None,
                          outcome=(own.outcome if own else "") or decision.get("outcome") or None,
                          verification_status=own.status if own else None)
    verdict = outcome_key(revision.status, winning=own.winning if own else None,
                          outcome=(own.outcome if own else "") or decision.get("outcome") or None,
                          verification_status=own.status if own else None)
    may_pull_unpublished = may_see_unpublished(request.user, ticket)  # the one rule: its owner and staff
    return render(request, "catalog/ticket.html", {
        "ticket": ticket,
        "revision": revision,
        "is_latest": revision.number == latest_number,
        "revisions": revisions,
        "published": published,
        "published_revision": published_revision,
        "files": hub_views.revision_files(revision, base),
        "own": own,
        "decision": decision,
        "outcome": outcome,
        "verdict": verdict,
        "finished": own is not None and own.finished,
        "may_pull_unpublished": may_pull_unpublished,
        "roles": selectors.role_summaries(own) if own and details else [],
        "transfers": [(v, selectors.role_summaries(v)) for v in transfers] if details else [],
        "details": details,
        "running": revision.status in (Status.PENDING, Status.VERIFYING) and ticket.status != Status.WITHDRAWN
        and not (own is not None and own.status == Verification.Status.FAILED),
        "layers": rows,
        "layers_from_core": from_core,
        "total_params": sum(r.params for r in rows if r.params) or None,
        "total_macs": sum(r.macs for r in rows if r.macs) or None,
        "total_sparse_macs": sum(r.sparse_macs for r in rows if r.sparse_macs) or None,
        "claims": claims,
        "recipe": (revision.config or {}).get("recipe") or {},
        "provenance": (revision.config or {}).get("provenance") or {},
        "base_url": base,
        "install_line": client_install_line(),
        "badge_latest": f"{base}{reverse('badges:latest', kwargs={'name': ticket.name, 'fmt': 'svg'})}",
        "badge_pinned": f"{base}{reverse('badges:pinned', kwargs={'name': ticket.name, 'commit': revision.commit, 'fmt': 'svg'})}",
        "badge_json": f"{base}{reverse('badges:latest', kwargs={'name': ticket.name, 'fmt': 'json'})}",
        "page_url": f"{base}{reverse('catalog:ticket', kwargs={'name': ticket.name})}",
    })


def progress_payload(ticket: Ticket, revision: Revision, verification: Verification | None, *,
                     details: bool = False) -> dict[str, Any]:
    """What the page's poller shows while a verification runs: counts and the current step for everyone,
    the accuracy of the run in progress only for those who may see the verification's details."""
    status = Status.WITHDRAWN if ticket.status == Status.WITHDRAWN else revision.status
    payload: dict[str, Any] = {"ticket": ticket.name, "commit": revision.commit, "status": status,
                               "finished": status in (Status.VERIFIED, Status.REJECTED, Status.WITHDRAWN)
                               or (verification is not None and verification.status == Verification.Status.FAILED)}
    if verification is not None:
        payload.update({
            "verification_status": verification.status,
            "runs_done": verification.runs_done,
            "runs_total": verification.runs_total,
            "current_run": verification.current_run,
            "current_iteration": verification.current_iteration,
            "current_iterations_total": verification.current_iterations_total,
            "current_accuracy": verification.current_accuracy if details else None,
            "heartbeat_at": verification.heartbeat_at.isoformat() if verification.heartbeat_at else None,
            "device": verification.device,
        })
    return payload


@require_GET
def ticket_progress(request: HttpRequest, name: str) -> JsonResponse:
    ticket = _ticket(Ticket.objects.all(), name)
    revision = _revision_for(request, ticket)
    own = Verification.objects.filter(revision=revision, kind=Verification.Kind.OWN).first()
    details = _may_see_details(request.user, ticket, revision)
    response = JsonResponse(progress_payload(ticket, revision, own, details=details))
    response["Cache-Control"] = "no-store"
    return response


def _visible_verification(request: HttpRequest, name: str, verification_id: int) -> Verification:
    verification = get_object_or_404(
        Verification.objects.select_related("revision__ticket").prefetch_related(
            Prefetch("runs", queryset=VerificationRun.objects.order_by("role", "seed"))),
        pk=verification_id, revision__ticket__name=name,
    )
    revision = verification.revision
    if not _may_see_details(request.user, revision.ticket, revision):
        raise Http404("The training curves of this revision are shown to its owner only.")
    return verification


@require_GET
def curves_plot(request: HttpRequest, name: str, verification_id: int) -> HttpResponse:
    """The curves as a static image (the no-JavaScript fallback of :func:`curves_chart`)."""
    verification = _visible_verification(request, name, verification_id)
    svg = curves_svg_for(verification)
    return _svg_response(svg, max_age=60 if not verification.finished else 3600)


@require_GET
def curves_chart(request: HttpRequest, name: str, verification_id: int) -> HttpResponse:
    """The curves' Vega-Lite spec (JSON), cached by a digest of the runs."""
    verification = _visible_verification(request, name, verification_id)
    key = f"{plots.data_key('curves', selectors.curve_version(verification))}:spec"
    body = cache.get(key)
    if body is None:
        spec = plots.curves_spec(selectors.run_curves(verification),
                                 title=f"{verification.revision.ticket.name} on {verification.task}")
        body = json.dumps(spec, separators=(",", ":"))
        cache.set(key, body, plots.PLOT_CACHE_SECONDS)
    response = HttpResponse(body, content_type="application/json")
    response["Cache-Control"] = "private, max-age=60" if not verification.finished else "private, max-age=3600"
    return response


def curves_svg_for(verification: Verification) -> str:
    """The curves of a verification: kept in the storage once it finished (drawn when it finishes, see
    signals.py), in the cache while it runs (its data changes with every run)."""
    key = plots.data_key("curves", selectors.curve_version(verification))

    def draw() -> str:
        return plots.curves_svg(selectors.run_curves(verification),
                                title=f"{verification.revision.ticket.name} on {verification.task}")

    return plots.stored_plot(key, draw) if verification.finished else plots.cached_svg(key, draw)


# --- people -------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and (wait := web_throttle_wait(request, "signup")) is not None:
        form.add_error(None, f"Too many sign-ups from your address; try again in {int(wait) + 1} seconds.")
        return render(request, "catalog/signup.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        try:
            user = account_services.register_user(username=form.cleaned_data["username"],
                                                  password=form.cleaned_data["password1"],
                                                  email=form.cleaned_data.get("email") or "")
        except ApiError as err:
            form.add_error("password1" if err.field == "password" else "username", str(err.detail))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.get_username()}. Create an API token to submit tickets.")
            return redirect("catalog:tokens")
    return render(request, "catalog/signup.html", {"form": form})


def _signed_in(request: HttpRequest) -> User:
    """The signed-in user of a ``login_required`` view."""
    if isinstance(request.user, AnonymousUser):
        raise PermissionDenied("Sign in first.")
    return request.user


@login_required(login_url=LOGIN_URL)
@require_GET
def my_tickets(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/my_tickets.html", {"tickets": list(selectors.tickets_of(request.user))})


@never_cache  # the response that creates a token shows its key
@login_required(login_url=LOGIN_URL)
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = account_services.create_token(user=request.user, name=form.cleaned_data["name"])
        except ApiError as err:
            form.add_error("name", str(err.detail))
        else:
            form = TokenForm()
    return render(request, "catalog/tokens.html", {
        "form": form,
        "issued": issued,
        "tokens": list(ApiToken.objects.filter(user=_signed_in(request)).order_by("revoked_at", "-created_at")),
        "base_url": request.build_absolute_uri("/").rstrip("/"),
    }, status=201 if issued else 200)


@login_required(login_url=LOGIN_URL)
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    account_services.revoke_token(token=token)
    messages.success(request, f"Revoked the token {token.name!r} ({token.key_hint}…); it no longer works.")
    return redirect("catalog:tokens")


UPLOAD_PARTS = {"config": "config.json", "init": "init.safetensors", "mask": "mask.safetensors"}
#: Fields of the upload form an error's ``field`` lands on; anything else (a tensor, a config field) is
#: shown at the top of the form with its field named.
FORM_FIELDS = {"config", "init", "mask", "name", "message"}


def _form_field(field: str | None) -> str | None:
    """The upload form's field an API error's ``field`` belongs to (None: the form as a whole)."""
    if not field:
        return None
    if field in FORM_FIELDS:
        return field
    for prefix, form_field in (("config", "config"), ("init", "init"), ("mask", "mask")):
        if field.startswith(prefix):
            return form_field
    if field.split(".", 1)[0] in ("task", "architecture", "recipe", "claims", "provenance", "format", "name"):
        return "config"  # a field of config.json
    return None


def _upload(form: SubmitForm) -> BundleUpload:
    """The form's three files as bytes, refused over the API's per-part limits before reading them."""
    parts: dict[str, bytes] = {}
    for part, filename in UPLOAD_PARTS.items():
        uploaded = form.cleaned_data[part]
        limit = max_part_bytes(part)
        if uploaded.size > limit:
            raise ApiError("file_too_large", f"{filename} is {uploaded.size:,} bytes, over the limit of {limit:,} bytes.",
                           field=part, status_code=413)
        parts[part] = uploaded.read()
    return BundleUpload(config=parts["config"], init=parts["init"], mask=parts["mask"])


def _policy_text() -> str:
    from registry.verifications.config import current_policy

    return current_policy().text()


@require_http_methods(["GET", "POST"])
def how_to_submit(request: HttpRequest) -> HttpResponse:
    """How to submit (the CLI) and, for a signed-in user, the browser upload of the three files: the same
    ``submit_bundle`` service as ``POST /api/v1/tickets/``, so the same validation and the same messages."""
    form = SubmitForm()
    status = 200
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse(LOGIN_URL)}?next={reverse('catalog:submit')}")
        form = SubmitForm(request.POST, request.FILES)
        wait = web_throttle_wait(request, "submit")
        if wait is not None:
            form.add_error(None, f"Too many submissions; try again in {int(wait) + 1} seconds.")
            status = 429
        elif form.is_valid():
            try:
                submission = submit_bundle(user=request.user, upload=_upload(form),
                                           name=form.cleaned_data["name"] or None,
                                           message=form.cleaned_data["message"] or "")
            except ApiError as err:
                field = _form_field(err.field)
                detail = str(err.detail) if field or not err.field else f"{err.field}: {err.detail}"
                form.add_error(field, detail)
                status = err.status_code
            else:
                ticket = submission.ticket
                messages.success(request, f"Submitted {ticket.name} revision {submission.revision.number}; "
                                          "the verifier will retrain it. This page follows its progress.")
                return redirect(f"{reverse('catalog:ticket', kwargs={'name': ticket.name})}"
                                f"?revision={submission.revision.commit}")
        else:
            status = 400
    tasks = list(Task.objects.order_by("name").values_list("name", flat=True))
    return render(request, "catalog/submit.html", {
        "form": form,
        "policy_text": _policy_text(),
        "base_url": request.build_absolute_uri("/").rstrip("/"),
        "install_line": client_install_line(),
        "tasks": tasks,
        "example_task": "mnist1d" if "mnist1d" in tasks else (tasks[0] if tasks else "mnist1d"),
    }, status=status)
