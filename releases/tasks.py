"""Periodic tasks of the releases app (beat): the monitor and the golden re-run. Thin: call one service each."""

from __future__ import annotations

import logging

from celery import shared_task

from releases.models import Release
from releases.services import monitor
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


@shared_task(name="releases.monitor", ignore_result=True, time_limit=600, soft_time_limit=540)
def monitor_task() -> int:
    return monitor.monitor_run()


@shared_task(name="releases.golden_rerun", ignore_result=True, time_limit=4 * 3600, soft_time_limit=4 * 3600 - 120)
def golden_rerun_task() -> int:
    done = 0
    for release in Release.objects.filter(status=Release.Status.ACTIVE, golden_tag__isnull=False):
        try:
            monitor.golden_rerun(release=release)
            done += 1
        except WorkbenchError as exc:
            log.warning("golden re-run of %s failed: %s", release, exc)
    return done
