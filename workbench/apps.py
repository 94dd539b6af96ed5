from __future__ import annotations

from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "workbench"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the job kinds, so web processes can create jobs of every kind.
        from workbench import tasks  # noqa: F401
