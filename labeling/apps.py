from __future__ import annotations

from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the labeling job kinds, so web processes can create their jobs.
        # And its stage of the project dashboard, in place of the core's placeholder.
        from labeling import dashboard, tasks  # noqa: F401
