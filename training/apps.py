from __future__ import annotations

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the training job kind, so web processes can create training jobs.
        # And its stage of the project dashboard, in place of the core's placeholder.
        from training import dashboard, tasks  # noqa: F401
