"""Celery application. Broker and queues come from settings (env-driven): Redis in production, a filesystem broker
that needs no server by default. The beat schedule below runs housekeeping that page views must never do (a GET
never writes); run it with ``celery -A workbench beat`` (or a worker started with ``-B``)."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

app = Celery("workbench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Tasks in workbench/tasks.py; each calls one service in workbench.jobs or workbench.services.maintenance.
# "expires" drops a beat that no worker took in time, so a stopped worker does not come back to a pile of them.
app.conf.beat_schedule = {
    "reap-stale-jobs": {
        "task": "maintenance.reap_stale_jobs",
        "schedule": 30.0,
        "options": {"queue": "default", "expires": 25},
    },
    "prune-search-logs": {
        "task": "maintenance.prune_search_logs",
        "schedule": crontab(hour=3, minute=17),
        "options": {"queue": "default", "expires": 3600},
    },
    "remove-stale-artifact-temp-dirs": {
        "task": "maintenance.remove_stale_artifact_temp_dirs",
        "schedule": crontab(minute=41),
        "options": {"queue": "default", "expires": 1800},
    },
    "remove-stale-upload-staging": {
        "task": "maintenance.remove_stale_upload_staging",
        "schedule": crontab(minute=11),
        "options": {"queue": "default", "expires": 1800},
    },
}
