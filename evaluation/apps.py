from __future__ import annotations

from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the evaluation job kind, so web processes can create evaluation jobs.
        # And its stage of the project dashboard, in place of the core's placeholder.
        from evaluation import dashboard, tasks  # noqa: F401
