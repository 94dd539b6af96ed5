from __future__ import annotations

from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from releases import dashboard, tasks  # noqa: F401  (registers the tasks and the dashboard stage)
        from workbench.celery import app

        # The monitor's periodic work; the beat schedule is the core's, this app adds its entries by name.
        app.conf.beat_schedule.update(
            {
                "releases-monitor": {"task": "releases.monitor", "schedule": 300.0},
                "releases-golden-rerun": {"task": "releases.golden_rerun", "schedule": 24 * 3600.0},
            }
        )
