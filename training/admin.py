from __future__ import annotations

from django.contrib import admin

from training.models import TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "kind", "lora", "outcome", "created_at")
    list_filter = ("kind", "outcome")
    raw_id_fields = (
        "snapshot",
        "base",
        "first_stage",
        "teacher",
        "job",
        "model_version",
        "index_job",
        "configuration",
        "retry_of",
    )
