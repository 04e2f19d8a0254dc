from django.contrib import admin

from registry.verifications.models import Verification, VerificationRun


class VerificationRunInline(admin.TabularInline):
    model = VerificationRun
    extra = 0
    can_delete = False
    fields = ("role", "seed", "final_test_accuracy", "early_stop_iteration", "early_stop_test_accuracy",
              "iterations", "device", "engine", "wall_time_s")
    readonly_fields = fields


@admin.register(Verification)
class VerificationAdmin(admin.ModelAdmin):
    list_display = ("id", "revision", "kind", "task", "status", "winning", "runs_done", "runs_total",
                    "attempts", "created_at", "finished_at")
    list_filter = ("status", "kind", "task", "winning")
    search_fields = ("revision__id", "reason")
    readonly_fields = [f.name for f in Verification._meta.fields]
    inlines = [VerificationRunInline]
