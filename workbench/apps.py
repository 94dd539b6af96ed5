from __future__ import annotations

from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "workbench"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Our Celery app must exist before any task is used, so @shared_task binds to it, not to a default app.
        import workbench.celery  # noqa: F401

        # Registers the job kinds, so web processes can create jobs of every kind.
        from workbench import tasks  # noqa: F401
