"""REST API of tickets (thin views: parse input, call services/selectors, serialise output).

    GET  /api/v1/tasks/                                       tasks
    GET  /api/v1/tasks/{task}/
    GET  /api/v1/tickets/?task=&architecture=&density_min=&density_max=&status=&owner=&search=&winning=&sort=&page=
    POST /api/v1/tickets/                                     submit (multipart: name, config, init, mask)
    GET  /api/v1/tickets/{name}/
    POST /api/v1/tickets/{name}/withdraw/                     owner (or staff)
    GET  /api/v1/tickets/{name}/revisions/
    GET  /api/v1/tickets/{name}/revisions/{rev}/              rev: commit id, "latest" or "verified"
    GET  /api/v1/tickets/{name}/revisions/{rev}/verification/
    GET  /api/v1/tickets/{name}/revisions/{rev}/files/{path}  the bytes (ETag and X-Checksum-Sha256: sha256)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.apps import apps
from django.contrib.auth.models import User
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.common.errors import ApiError
from registry.common.pagination import PagePagination
from registry.common.rowcache import cached_rows, row_key, row_values
from registry.tickets import blobs, selectors, services
from registry.tickets.limits import max_part_bytes
from registry.tickets.models import BUNDLE_FILES, Revision, RevisionFile, Status, Task, Ticket

_UPLOAD_PARTS = {"config": "config.json", "init": "init.safetensors", "mask": "mask.safetensors"}


def _abs(request: Request, route: str, /, **kwargs: Any) -> str:
    return request.build_absolute_uri(reverse(route, kwargs=kwargs))


# --- output serializers (shared by several views) -----------------------------------------------------


class TaskOutput(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ["name", "description", "input_shape", "num_classes", "default_family",
                  "dense_baseline_accuracy", "dense_baseline_family"]


class FileOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = RevisionFile
        fields = ["path", "sha256", "size", "url"]

    def get_url(self, obj: RevisionFile) -> str:
        rev = obj.revision
        return _abs(self.context["request"], "ticket-file", name=rev.ticket.name, rev=rev.commit, path=obj.path)


class RevisionSummaryOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Revision
        fields = ["commit", "number", "status", "created_at", "url"]

    def get_url(self, obj: Revision) -> str:
        return _abs(self.context["request"], "ticket-revision", name=obj.ticket.name, rev=obj.commit)


def _each(serializer: serializers.BaseSerializer[Any], rows: Iterable[Any]) -> list[dict[str, Any]]:
    """``serializer`` (built once: building its fields is the cost) applied to every row."""
    return [serializer.to_representation(row) for row in rows]


class RevisionOutput(RevisionSummaryOutput):
    # ``parent`` and ``created_by`` as slugs (the parent's commit, the creator's username); set through Meta
    # because a field attribute named ``parent`` would shadow DRF's Field.parent.
    serializer_related_field = serializers.SlugRelatedField
    files = serializers.SerializerMethodField()
    verification_url = serializers.SerializerMethodField()

    class Meta:
        model = Revision
        fields = [*RevisionSummaryOutput.Meta.fields, "parent", "message", "created_by", "family", "density",
                  "layer_densities", "num_parameters", "budget", "claimed_accuracy", "verified_accuracy",
                  "status_changed_at", "downloads", "config", "architecture", "files", "verification_url"]
        extra_kwargs = {"parent": {"slug_field": "commit", "read_only": True},
                        "created_by": {"slug_field": "username", "read_only": True}}

    @extend_schema_field(FileOutput(many=True))
    def get_files(self, obj: Revision) -> list[dict[str, Any]]:
        return _each(FileOutput(context=self.context), selectors.revision_files(obj))

    def get_verification_url(self, obj: Revision) -> str:
        return _abs(self.context["request"], "ticket-verification", name=obj.ticket.name, rev=obj.commit)


class TicketOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    task: serializers.SlugRelatedField[Task] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    architecture = serializers.CharField(source="family")
    published = serializers.BooleanField(source="is_published")
    latest_revision = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = ["name", "url", "owner", "task", "architecture", "status", "published", "density",
                  "num_parameters", "claimed_accuracy", "verified_accuracy", "downloads", "created_at",
                  "updated_at", "latest_revision"]

    def get_url(self, obj: Ticket) -> str:
        return _abs(self.context["request"], "ticket-detail", name=obj.name)

    @extend_schema_field(RevisionSummaryOutput(allow_null=True))
    def get_latest_revision(self, obj: Ticket) -> dict[str, Any] | None:
        rev = obj.latest_revision
        if rev is None:
            return None
        rev.ticket = obj  # the revision's URL names its ticket: no query per row for what this row holds
        summary = self.__dict__.get("_revision_summary")
        if summary is None:  # one nested serializer for every row of a list (building its fields is the cost)
            summary = self.__dict__["_revision_summary"] = RevisionSummaryOutput(context=self.context)
        return summary.to_representation(rev)


class TicketDetailOutput(TicketOutput):
    files = serializers.SerializerMethodField()
    revisions_url = serializers.SerializerMethodField()

    class Meta(TicketOutput.Meta):
        fields = [*TicketOutput.Meta.fields, "layer_densities", "withdrawn_at", "withdrawn_reason", "files",
                  "revisions_url"]

    @extend_schema_field(FileOutput(many=True))
    def get_files(self, obj: Ticket) -> list[dict[str, Any]]:
        rev = obj.latest_revision
        return _each(FileOutput(context=self.context), selectors.revision_files(rev)) if rev else []

    def get_revisions_url(self, obj: Ticket) -> str:
        return _abs(self.context["request"], "ticket-revisions", name=obj.name)


#: What a ``TicketOutput`` row shows (``published`` follows ``status``): its cache key (rowcache).
TICKET_ROW_VALUES = (
    "pk", "updated_at", "name", "owner.username", "task.name", "family", "status", "density", "num_parameters",
    "claimed_accuracy", "verified_accuracy", "downloads", "created_at", "latest_revision.pk",
    "latest_revision.commit", "latest_revision.number", "latest_revision.status", "latest_revision.created_at",
)


def ticket_rows_data(request: Request, tickets: list[Ticket]) -> list[dict[str, Any]]:
    """``TicketOutput`` of each row, from the cache when the row (and the site's URL) showed the same values."""
    serializer = TicketOutput(context={"request": request})
    base = request.build_absolute_uri("/")
    keys = [row_key("api-ticket", (base, row_values(t, TICKET_ROW_VALUES))) for t in tickets]
    return cached_rows(keys, lambda i: dict(serializer.to_representation(tickets[i])))


def _page_of(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of one page of ``item``: ``{count, next, previous, results}`` (PagePagination)."""
    return inline_serializer(name, {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    })


# --- tasks --------------------------------------------------------------------------------------------


class TaskListApi(APIView):
    permission_classes = [AllowAny]
    pagination_class = None

    @extend_schema(responses={200: TaskOutput(many=True)}, summary="List tasks")
    def get(self, request: Request) -> Response:
        return Response(TaskOutput(selectors.task_list(), many=True).data)


class TaskDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: TaskOutput}, summary="One task")
    def get(self, request: Request, task: str) -> Response:
        found = selectors.task_list().filter(name=task).first()
        if found is None:
            raise ApiError("task_not_found", f"No task named {task!r}.", field="task", status_code=404)
        return Response(TaskOutput(found).data)


# --- tickets ------------------------------------------------------------------------------------------


class TicketListSubmitApi(APIView):
    """List tickets, or submit a ticket (a new ticket, or a new revision of one you own)."""

    permission_classes = [IsAuthenticatedOrReadOnly]

    class TicketFilterInput(serializers.Serializer):
        task = serializers.CharField(required=False)
        architecture = serializers.CharField(required=False, help_text="Architecture family, e.g. lenet-300-100.")
        density_min = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        density_max = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        status = serializers.CharField(
            required=False, help_text="Comma-separated statuses; withdrawn tickets are listed only when asked for."
        )
        owner = serializers.CharField(required=False)
        search = serializers.CharField(required=False, max_length=200)
        winning = serializers.BooleanField(
            required=False, allow_null=True, default=None,
            help_text="true: only published tickets found winning (verified, matching the dense network, "
                      "beating the controls); false: only published ones that are not winning.",
        )
        sort = serializers.ChoiceField(
            required=False, default="newest",
            choices=[s for key in selectors.SORTS for s in (key, f"-{key}")],
            help_text="accuracy (highest verified first), density (sparsest first), newest, downloads (most "
                      "first); a leading '-' reverses.",
        )
        page = serializers.IntegerField(required=False, min_value=1)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=PagePagination.max_page_size)

        def validate_status(self, value: str) -> tuple[str, ...]:
            statuses = tuple(s.strip() for s in value.split(",") if s.strip())
            unknown = [s for s in statuses if s not in Status.values]
            if unknown:
                raise serializers.ValidationError(
                    f"Unknown status {unknown[0]!r}; use {', '.join(Status.values)}.", code="invalid_status"
                )
            return statuses

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            lo, hi = attrs.get("density_min"), attrs.get("density_max")
            if lo is not None and hi is not None and lo > hi:
                raise serializers.ValidationError({"density_min": "density_min is larger than density_max."})
            return attrs

    class TicketSubmitInput(serializers.Serializer):
        name = serializers.CharField(required=False, help_text="Ticket name, e.g. lenet-mnist-3.6pct.")
        message = serializers.CharField(required=False, allow_blank=True, max_length=500)
        config = serializers.FileField(help_text="config.json")
        init = serializers.FileField(help_text="init.safetensors")
        mask = serializers.FileField(help_text="mask.safetensors")

    class TicketSubmitOutput(TicketDetailOutput):
        revision = serializers.SerializerMethodField()
        created = serializers.SerializerMethodField()

        class Meta(TicketDetailOutput.Meta):
            fields = [*TicketDetailOutput.Meta.fields, "revision", "created"]

        @extend_schema_field(RevisionOutput)
        def get_revision(self, obj: Ticket) -> dict[str, Any]:
            return RevisionOutput(self.context["revision"], context=self.context).data

        def get_created(self, obj: Ticket) -> bool:
            return self.context["created_ticket"]

    def get_throttles(self):
        self.throttle_scope = "submit" if self.request.method == "POST" else None
        return super().get_throttles()

    @extend_schema(
        parameters=[TicketFilterInput],
        responses={200: _page_of("PaginatedTicketList", TicketOutput)},
        operation_id="tickets_list",
        summary="List tickets (filter, search, sort, paginate)",
    )
    def get(self, request: Request) -> Response:
        params = self.TicketFilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        f = params.validated_data
        tickets = selectors.ticket_list(
            selectors.TicketFilters(
                task=f.get("task"), architecture=f.get("architecture"), density_min=f.get("density_min"),
                density_max=f.get("density_max"), statuses=f.get("status") or (), owner=f.get("owner"),
                search=f.get("search"), sort=f["sort"], winning=f.get("winning"),
            )
        )
        paginator = PagePagination()
        ids = paginator.paginate_queryset(tickets.values_list("pk", flat=True), request, view=self)
        page = selectors.rows_in_order(ids, selectors.ticket_rows())  # the page on ticket columns, then its rows
        return paginator.get_paginated_response(ticket_rows_data(request, page))

    @extend_schema(
        request={"multipart/form-data": TicketSubmitInput},
        responses={201: TicketSubmitOutput},
        summary="Submit a ticket (or a new revision of your ticket)",
        description="Multipart upload of config.json, init.safetensors and mask.safetensors. The bundle is "
        "validated (shapes against the architecture, boolean masks, finite values, limits) and density is "
        "measured from the mask; then the revision is stored and queued for verification.",
    )
    def post(self, request: Request) -> Response:
        _refuse_repeated_fields(request)
        name = _text_field(request, "name") or None
        message = _text_field(request, "message") or ""
        upload = _read_upload(request)
        submission = services.submit_bundle(user=request.user, upload=upload, name=name, message=message)
        ticket = selectors.get_ticket(submission.ticket.name)
        context = {"request": request, "revision": submission.revision, "created_ticket": submission.created_ticket}
        body = self.TicketSubmitOutput(ticket, context=context).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


def _refuse_repeated_fields(request: Request) -> None:
    """Two parts with the same field name would otherwise let the last one win silently."""
    for source in (request.FILES, request.data):
        getlist = getattr(source, "getlist", None)
        if getlist is None:
            continue
        for key in source:
            if len(getlist(key)) > 1:
                raise ApiError("duplicate_field", f"The form field {key!r:.40} is given more than once; send each "
                               "part once.", field=str(key)[:40])


def _form(request: Request) -> Mapping[str, Any]:
    """The request's form fields (a multipart or urlencoded body parses to a mapping)."""
    return request.data if isinstance(request.data, Mapping) else {}


def _text_field(request: Request, key: str) -> str:
    """A form text field, checked: a string without control characters or lone surrogates."""
    from ticketclient.format import bad_character

    value = _form(request).get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(f"invalid_{key}", f"The {key} must be a text field.", field=key)
    bad = bad_character(value)
    if bad:
        raise ApiError("bad_character", f"The {key} contains the control character or lone surrogate {bad}.",
                       field=key)
    return value


def _read_upload(request: Request) -> services.BundleUpload:
    parts: dict[str, bytes] = {}
    for part, filename in _UPLOAD_PARTS.items():
        uploaded = request.FILES.get(part)
        if uploaded is None:
            given = _form(request).get(part)
            if isinstance(given, str) and part == "config":
                parts[part] = given.encode("utf-8")
                continue
            raise ApiError(
                "missing_file",
                f"The submission has no {filename}: send it as the multipart file part {part!r}.",
                field=part,
            )
        limit = max_part_bytes(part)
        if uploaded.size > limit:  # refused from the parsed part's size, before reading it into memory
            raise ApiError(
                "file_too_large",
                f"{filename} is {uploaded.size:,} bytes, over the limit of {limit:,} bytes.",
                field=part,
                status_code=413,
            )
        parts[part] = uploaded.read()
    return services.BundleUpload(config=parts["config"], init=parts["init"], mask=parts["mask"])


class TicketDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: TicketDetailOutput}, summary="One ticket")
    def get(self, request: Request, name: str) -> Response:
        ticket = selectors.get_ticket(name)
        return Response(TicketDetailOutput(ticket, context={"request": request}).data)


def _require_owner(request: Request, ticket: Ticket) -> None:
    if not selectors.may_see_unpublished(request.user, ticket):
        raise ApiError("not_owner", f"Only the owner of {ticket.name!r} may do this.", status_code=403)


class TicketWithdrawApi(APIView):
    permission_classes = [IsAuthenticated]

    class WithdrawInput(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

    @extend_schema(request=WithdrawInput, responses={200: TicketDetailOutput}, summary="Withdraw your ticket")
    def post(self, request: Request, name: str) -> Response:
        ticket = selectors.get_ticket(name)
        _require_owner(request, ticket)
        data = self.WithdrawInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.withdraw_ticket(ticket, reason=data.validated_data["reason"])
        return Response(TicketDetailOutput(selectors.get_ticket(name), context={"request": request}).data)


class RevisionListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: _page_of("PaginatedRevisionList", RevisionSummaryOutput)},
        operation_id="tickets_revisions_list",
        parameters=[OpenApiParameter("page", int, required=False),
                    OpenApiParameter("page_size", int, required=False, description="At most 100.")],
        summary="A ticket's revisions, newest first",
    )
    def get(self, request: Request, name: str) -> Response:
        ticket = selectors.get_ticket(name)
        revisions = ticket.revisions.select_related("ticket").order_by("-number")
        paginator = PagePagination()
        paginator.page_size = 50
        page = paginator.paginate_queryset(revisions, request, view=self)
        data = RevisionSummaryOutput(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)


class RevisionDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: RevisionOutput}, summary="One revision (commit id, 'latest' or 'verified')")
    def get(self, request: Request, name: str, rev: str) -> Response:
        revision = selectors.get_revision(selectors.get_ticket(name), rev)
        return Response(RevisionOutput(revision, context={"request": request}).data)


def _verification_records(request: Request, revision: Revision) -> list[dict[str, Any]]:
    """The verifier's records for a revision, serialised and filtered for visibility by the verifications app."""
    if not apps.is_installed("registry.verifications"):
        return []
    from registry.verifications import selectors as verification_selectors
    from registry.verifications.serializers import VerificationSerializer

    records = verification_selectors.verifications_of_revision(request.user, revision.commit)
    return _each(VerificationSerializer(context={"request": request}), records)


class VerificationApi(APIView):
    """The verifier's results for a revision (read-only: only workers write them)."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: inline_serializer("RevisionVerification", {
            "commit": serializers.CharField(),
            "status": serializers.ChoiceField(choices=Status.choices),
            "verified_accuracy": serializers.FloatField(allow_null=True),
            "claimed_accuracy": serializers.FloatField(allow_null=True),
            "density": serializers.FloatField(),
            "records": serializers.ListField(child=serializers.DictField()),
        })},
        summary="Verification results of a revision",
    )
    def get(self, request: Request, name: str, rev: str) -> Response:
        revision = selectors.get_revision(selectors.get_ticket(name), rev)
        records = _verification_records(request, revision)
        return Response({
            "commit": revision.commit, "status": revision.status, "verified_accuracy": revision.verified_accuracy,
            "claimed_accuracy": revision.claimed_accuracy, "density": revision.density, "records": records,
        })


class FileDownloadApi(APIView):
    """The bytes of one file of a revision, streamed from storage."""

    permission_classes = [AllowAny]
    throttle_classes: list = []  # downloads are cheap reads; the anon/user rates would starve pulls

    def perform_content_negotiation(self, request: Request, force: bool = False):
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("path", str, OpenApiParameter.PATH, enum=list(BUNDLE_FILES))],
        summary="Download a file of a revision",
    )
    def get(self, request: Request, name: str, rev: str, path: str) -> FileResponse:
        ticket = selectors.get_ticket(name)
        if ticket.is_withdrawn and not selectors.may_see_unpublished(request.user, ticket):
            raise ApiError("withdrawn", f"{name!r} was withdrawn by its owner; its files are no longer served.",
                           status_code=410)
        revision = selectors.get_revision(ticket, rev)
        file = selectors.get_revision_file(revision, path)
        response = FileResponse(blobs.open_blob(file.sha256), as_attachment=True, filename=file.path,
                                content_type="application/octet-stream" if path.endswith(".safetensors")
                                else "application/json")
        response["Content-Length"] = str(file.size)
        response["ETag"] = f'"{file.sha256}"'
        response["X-Checksum-Sha256"] = file.sha256
        response["X-Repo-Commit"] = revision.commit
        if request.method == "GET" and path == "config.json":
            services.record_download(revision)
        return response
