from __future__ import annotations

from django.contrib import admin

from releases.models import AuditEvent, GatePolicy, Release, ReleaseAlert


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ["project", "number", "name", "status", "configuration", "proposed_at", "approved_at"]
    list_filter = ["project", "status"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["project", "release", "action", "actor", "created_at"]
    list_filter = ["project", "action"]

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False  # append-only


admin.site.register(GatePolicy)
admin.site.register(ReleaseAlert)
