from __future__ import annotations

from django.contrib import admin

from evaluation.models import EvalConfig, EvalRun


class EvalConfigInline(admin.TabularInline):
    model = EvalConfig
    extra = 0
    fields = ["position", "label", "configuration", "depth", "run_file"]
    readonly_fields = fields
    can_delete = False


@admin.register(EvalRun)
class EvalRunAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "query_set", "depth", "created_by", "created_at", "finished_at"]
    list_filter = ["project"]
    search_fields = ["name"]
    raw_id_fields = ["query_tag", "corpus", "baseline", "hard_baseline", "job"]
    inlines = [EvalConfigInline]
