from __future__ import annotations

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the training job kind, so web processes can create training jobs.
        from training import tasks  # noqa: F401
