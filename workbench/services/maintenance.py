"""Housekeeping run on the beat schedule (workbench.celery): what crashed workers and old traffic leave behind.

Each function is a plain service, testable without Celery, and returns what it removed.
"""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from workbench.models import Job, SearchLog
from workbench.retrieval.artifacts import STALE_AFTER_S, remove_stale_temp_dirs

# An upload staging folder is removed by its import job when it finishes; one older than this that no active job
# uses was left by a crash (or by a job that never ran).
UPLOAD_STAGING_MAX_AGE_S = 24 * 3600.0
ARTIFACT_SUBDIRS = ("indexes", "models")


def search_logs_prune(*, older_than_days: int, now: object = None) -> int:
    """Delete search log rows older than ``older_than_days`` days; returns how many."""
    if older_than_days < 1:
        return 0  # 0 or less means keep everything
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)  # type: ignore[operator]
    deleted, _ = SearchLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def artifact_temp_dirs_remove(*, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove temporary artifact directories (``.tmp-``) that crashed builds left under ARTIFACTS_DIR."""
    root = Path(settings.ARTIFACTS_DIR)
    removed = remove_stale_temp_dirs(root, older_than_s=older_than_s)
    for sub in ARTIFACT_SUBDIRS:
        removed += remove_stale_temp_dirs(root / sub, older_than_s=older_than_s)
    return removed


def upload_staging_remove(*, older_than_s: float = UPLOAD_STAGING_MAX_AGE_S) -> list[Path]:
    """Remove upload staging folders under UPLOAD_DIR that no queued or running job uses and that are old."""
    root = Path(settings.UPLOAD_DIR)
    if not root.is_dir():
        return []
    in_use = {
        str(Path(params.get("staging", "")))
        for params in Job.objects.filter(status__in=Job.ACTIVE).values_list("params", flat=True)
        if isinstance(params, dict) and params.get("staging")
    }
    cutoff = time.time() - older_than_s
    removed = []
    for path in sorted(root.iterdir()):
        if path.is_dir() and str(path) not in in_use and path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
