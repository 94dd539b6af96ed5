from __future__ import annotations

from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the labeling job kinds, so web processes can create their jobs.
        from labeling import tasks  # noqa: F401
