"""Admin for tasks and tickets, with moderation: withdraw, restore, requeue verification.

Revisions and their files are read-only here as everywhere (immutable); verification records are in the
verifications app's admin.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from registry.tickets import services
from registry.tickets.models import Revision, RevisionFile, Status, Task, Ticket


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("name", "input_shape", "num_classes", "default_family", "dense_baseline_accuracy")
    search_fields = ("name", "description")


class RevisionInline(admin.TabularInline):
    model = Revision
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("number", "commit", "status", "density", "claimed_accuracy", "verified_accuracy", "created_at")
    readonly_fields = fields
    ordering = ("-number",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "task", "family", "status", "density", "claimed_accuracy",
                    "verified_accuracy", "downloads", "created_at")
    list_filter = ("status", "task", "family")
    search_fields = ("name", "owner__username")
    readonly_fields = ("name", "owner", "task", "family", "status", "latest_revision", "density", "layer_densities",
                       "num_parameters", "claimed_accuracy", "verified_accuracy", "downloads", "created_at",
                       "updated_at", "withdrawn_at")
    fields = (*readonly_fields, "withdrawn_reason")
    inlines = [RevisionInline]
    actions = ["withdraw", "restore", "requeue_latest"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tickets are created by submission only

    def has_delete_permission(self, request: HttpRequest, obj: Ticket | None = None) -> bool:
        return False  # moderation withdraws; revisions and their files are never deleted

    @admin.action(description="Withdraw selected tickets")
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        for ticket in queryset:
            services.withdraw_ticket(ticket, reason=f"withdrawn by moderator {request.user}")
        self.message_user(request, f"Withdrew {queryset.count()} ticket(s).", messages.SUCCESS)

    @admin.action(description="Restore selected withdrawn tickets")
    def restore(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        for ticket in queryset.filter(status=Status.WITHDRAWN):
            services.restore_ticket(ticket)
        self.message_user(request, "Restored the withdrawn tickets among the selection.", messages.SUCCESS)

    @admin.action(description="Requeue verification of the latest revision")
    def requeue_latest(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        count = 0
        for ticket in queryset:
            latest = ticket.revisions.order_by("-number").first()
            if latest is not None:
                services.requeue_revision(latest)
                count += 1
        self.message_user(request, f"Requeued {count} revision(s) for verification.", messages.SUCCESS)


class RevisionFileInline(admin.TabularInline):
    model = RevisionFile
    extra = 0
    can_delete = False
    fields = ("path", "sha256", "size")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Revision)
class RevisionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "number", "status", "density", "claimed_accuracy", "verified_accuracy", "created_at")
    list_filter = ("status", "family")
    search_fields = ("commit", "ticket__name")
    inlines = [RevisionFileInline]
    actions = ["requeue"]

    def get_readonly_fields(self, request: HttpRequest, obj: Revision | None = None) -> list[str]:
        return [f.name for f in Revision._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Revision | None = None) -> bool:
        return False

    @admin.action(description="Requeue verification")
    def requeue(self, request: HttpRequest, queryset: QuerySet[Revision]) -> None:
        for revision in queryset:
            services.requeue_revision(revision)
        self.message_user(request, f"Requeued {queryset.count()} revision(s).", messages.SUCCESS)
