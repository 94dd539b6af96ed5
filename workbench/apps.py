from __future__ import annotations

from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "workbench"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Our Celery app must exist before any task is used, so @shared_task binds to it, not to a default app.
        from django.conf import settings

        import workbench.celery  # noqa: F401

        # Registers the job kinds, so web processes can create jobs of every kind.
        from workbench import tasks  # noqa: F401
        from workbench.services.engines import caches_configure

        caches_configure()
        import os
        import sys

        reloader_parent = "runserver" in sys.argv and os.environ.get("RUN_MAIN") != "true"
        if settings.WARM_SERVED_ON_START and not reloader_parent:
            # Load what each project serves in the background, so the first search after a start is not the one
            # that waits for the model (it took 7.9-14.7 s cold). Web processes only: workers warm what they run.
            import threading

            from django.db import connection

            from workbench.services.configurations import serving_warm_all

            def warm() -> None:
                import time

                # Again every WARM_INTERVAL_S: what another process switched to (a release, a canary, a rollback
                # target) is loaded here too before a request needs it.
                while True:
                    try:
                        serving_warm_all()
                    finally:
                        connection.close()  # this thread's own connection
                    time.sleep(settings.WARM_INTERVAL_S)

            threading.Thread(target=warm, name="warm-served", daemon=True).start()
