"""Background jobs as users see them.

Every long task is a Celery task registered with ``@job_task(kind)``: it receives the Job row and a JobReporter, and
reports progress, log lines and metrics into the row (pages poll it with htmx). The Celery result backend is never
what users see. A running job keeps a heartbeat; one whose heartbeat stops (its worker died) is marked failed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from workbench.errors import WorkbenchError
from workbench.models import Job, Project

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 200
JobFn = Callable[[Job, "JobReporter"], dict | None]
_REGISTRY: dict[str, Any] = {}


class JobCancelled(Exception):
    """Raised inside a job when a user asked to cancel it."""


class JobReporter:
    """Writes progress into the Job row, throttled so a tight loop does not hammer the database."""

    def __init__(self, job: Job, *, min_interval_s: float = 0.5) -> None:
        self.job = job
        self.min_interval_s = min_interval_s
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._lines: list[str] = job.log_tail.splitlines()[-LOG_TAIL_LINES:]

    def _update(self, **fields: Any) -> None:
        fields["heartbeat_at"] = timezone.now()
        Job.objects.filter(pk=self.job.pk).update(**fields)

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        fields: dict[str, Any] = {"progress": max(0.0, min(1.0, float(fraction)))}
        if message is not None:
            fields["message"] = message[:2000]
        self._update(**fields)
        self.check_cancel()

    def log(self, line: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        self._lines.extend(f"{stamp} {part}" for part in str(line).splitlines() or [""])
        self._lines = self._lines[-LOG_TAIL_LINES:]
        self._update(log_tail="\n".join(self._lines))

    def metric(self, values: dict[str, float]) -> None:
        job = Job.objects.only("metric_history").get(pk=self.job.pk)
        self._update(metric_history=[*job.metric_history, {"t": time.time(), **values}])

    def check_cancel(self) -> None:
        now = time.monotonic()
        if now - self._last_cancel_check < 1.0:
            return
        self._last_cancel_check = now
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()

    def cancel_requested(self) -> bool:
        try:
            self.check_cancel()
        except JobCancelled:
            return True
        return False


class _Heartbeat(threading.Thread):
    """Keeps the heartbeat fresh during long steps that report nothing (a FAISS build, a big transaction)."""

    def __init__(self, job_id: int, interval_s: float) -> None:
        super().__init__(daemon=True, name=f"job-{job_id}-heartbeat")
        self.job_id, self.interval_s = job_id, interval_s
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.wait(self.interval_s):
                try:
                    Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:  # a locked SQLite file must not kill the thread; the next beat retries
                    log.debug("heartbeat write failed", exc_info=True)
        finally:
            connection.close()


def job_task(kind: str, *, time_limit_s: int = 6 * 3600) -> Callable[[JobFn], Any]:
    """Register ``fn(job, reporter) -> result dict`` as the Celery task that runs jobs of this kind."""

    def decorate(fn: JobFn) -> Any:
        @shared_task(name=f"jobs.{kind}", acks_late=True, reject_on_worker_lost=False, time_limit=time_limit_s)
        def run(job_id: int) -> None:
            job_execute(job_id, fn)

        _REGISTRY[kind] = run
        return run

    return decorate


def job_execute(job_id: int, fn: JobFn) -> None:
    if not connection.in_atomic_block:  # a worker reuses connections across tasks; drop broken or expired ones
        close_old_connections()
    started = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    if not started:  # cancelled while queued, or a duplicate delivery
        return
    job = Job.objects.get(pk=job_id)
    reporter = JobReporter(job)
    beat = _Heartbeat(job_id, interval_s=max(1.0, settings.JOB_HEARTBEAT_TIMEOUT_S / 4))
    beat.start()
    try:
        result = fn(job, reporter) or {}
    except JobCancelled:
        _finish(job_id, Job.Status.CANCELLED, "Cancelled by user; nothing was kept.")
    except WorkbenchError as exc:
        _finish(job_id, Job.Status.FAILED, str(exc))
    except Exception as exc:
        log.exception("job %s failed", job_id)
        reporter.log(traceback.format_exc(limit=8))
        _finish(job_id, Job.Status.FAILED, f"Unexpected error: {type(exc).__name__}: {exc}")
    else:
        _finish(job_id, Job.Status.SUCCEEDED, None, result=result)
    finally:
        beat.stop.set()
        beat.join(timeout=5)


def _finish(job_id: int, status: str, message: str | None, *, result: dict | None = None) -> None:
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "heartbeat_at": timezone.now()}
    if message is not None:
        fields["message"] = message
    if status == Job.Status.SUCCEEDED:
        fields["progress"] = 1.0
        fields["result"] = result or {}
        fields["message"] = (result or {}).get("message", "Done.")
    Job.objects.filter(pk=job_id).update(**fields)


def job_create(
    *,
    project: Project,
    kind: str,
    title: str,
    params: dict,
    user: Any,
    queue: str = "default",
    retry_of: Job | None = None,
) -> Job:
    """Create a queued job and enqueue its task once the surrounding transaction commits."""
    if kind not in _REGISTRY:
        raise WorkbenchError(f"Unknown job kind {kind!r}")
    job = Job.objects.create(
        project=project, kind=kind, title=title, params=params, queue=queue, created_by=user, retry_of=retry_of
    )
    transaction.on_commit(lambda: _REGISTRY[kind].apply_async(args=[job.pk], queue=queue))
    return job


def job_cancel(*, job: Job) -> Job:
    """Cancel at once if still queued; otherwise ask the running task to stop at its next checkpoint."""
    if not job.is_active:
        raise WorkbenchError(f"Job #{job.pk} is {job.status}; only queued or running jobs can be cancelled.")
    cancelled_while_queued = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED,
        finished_at=timezone.now(),
        message="Cancelled before it started.",
        cancel_requested=True,
    )
    if not cancelled_while_queued:
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(cancel_requested=True, message="Cancelling…")
    job.refresh_from_db()
    return job


def job_retry(*, job: Job, user: Any) -> Job:
    """Start a new job with the same kind and parameters as a failed or cancelled one."""
    if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        raise WorkbenchError(f"Job #{job.pk} is {job.status}; only failed or cancelled jobs can be retried.")
    return job_create(
        project=job.project, kind=job.kind, title=job.title, params=job.params, user=user, queue=job.queue, retry_of=job
    )


def jobs_reap_stale(*, now: Any = None) -> int:
    """Mark running jobs whose heartbeat stopped (the worker died) as failed. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)
    return Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Job.Status.FAILED,
        finished_at=now,
        message="The worker stopped responding (it crashed or was killed). Nothing half-written was kept; "
        "retry the job.",
    )
