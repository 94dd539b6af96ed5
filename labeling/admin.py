from __future__ import annotations

from django.contrib import admin

from labeling.models import Judgment


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["query", "document", "grade", "source", "split", "annotator", "created_at"]
    list_filter = ["source", "split", "grade"]
    raw_id_fields = ["query", "document", "passage", "import_record"]
