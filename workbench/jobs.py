"""Background jobs as users see them.

Every long task is a Celery task registered with
``@job_task(kind, queue=..., time_limit_s=..., soft_time_limit_s=...)``: it receives the Job row and a JobReporter,
and reports progress and log lines into the row and metrics into JobMetric rows (pages poll them with htmx). Where a
kind runs and for how long is declared with its task, never chosen where a job is created. The Celery result backend
is never what users see. A running job keeps a heartbeat; one whose heartbeat stops (its worker died) is marked
failed by a periodic task (``jobs_reap_stale``), never by a page view.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection, models, transaction
from django.utils import timezone

from workbench.errors import PermanentJobError, WorkbenchError
from workbench.models import Job, JobMetric, Project

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 200
JobFn = Callable[[Job, "JobReporter"], dict | None]
# What a finished job produced, as (label, url) pairs for its page; declared with the task by the app that owns it.
JobLinks = Callable[[Job], list[tuple[str, str]]]
Queue = str | Callable[[], str]


@dataclass(frozen=True)
class JobKind:
    """How one kind of job runs: its Celery task, the queue it goes to and its time limits."""

    kind: str
    task: Any
    queue: Queue
    time_limit_s: int
    soft_time_limit_s: int
    links: JobLinks | None = None

    def queue_name(self) -> str:
        return self.queue() if callable(self.queue) else self.queue


_REGISTRY: dict[str, JobKind] = {}


def queue_from_setting(name: str, default: str) -> Callable[[], str]:
    """A queue read from a setting when each job is created (``@job_task(kind, queue=queue_from_setting(...))``)."""
    return lambda: getattr(settings, name, default) or default


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
        self._next_step: dict[str, int] | None = None

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

    def metric(self, values: dict[str, float], *, step: int | None = None) -> None:
        """Append one value per name (a training loss at ``step``): one INSERT, whatever the history's length.

        Without ``step`` each name counts its own reports 0, 1, 2, ...
        """
        if self._next_step is None:  # once per reporter; a job starts with no metrics (a retry is a new job)
            self._next_step = {
                name: top + 1
                for name, top in JobMetric.objects.filter(job_id=self.job.pk)
                .values_list("name")
                .annotate(top=models.Max("step"))
            }
        rows = []
        for name, value in values.items():
            at = step if step is not None else self._next_step.get(name, 0)
            self._next_step[name] = max(self._next_step.get(name, 0), at + 1)
            rows.append(JobMetric(job_id=self.job.pk, name=str(name)[:100], step=at, value=float(value)))
        JobMetric.objects.bulk_create(rows)

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


class SmoothedRate:
    """Items per second from recent progress, exponentially smoothed, for ETAs users can trust.

    The first interval is ignored: it holds the warm-up (model load, tokenisation, the longest batch first), and an
    ETA from it overestimates the whole run. ``half_life_s`` sets how fast older intervals stop counting.
    """

    def __init__(self, *, half_life_s: float = 20.0) -> None:
        self.half_life_s = half_life_s
        self.rate: float | None = None
        self._last: tuple[float, float] | None = None
        self._intervals = 0

    def update(self, done: float, *, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        last = self._last
        if last is None or done < last[1]:  # first report, or a new stage restarted the count
            self._last, self._intervals, self.rate = (now, done), 0, None
            return None
        dt, dn = now - last[0], done - last[1]
        if dt <= 0 or dn <= 0:
            return self.rate
        self._last = (now, done)
        self._intervals += 1
        if self._intervals == 1:
            return None  # the warm-up interval
        instant = dn / dt
        weight = 1.0 - 0.5 ** (dt / self.half_life_s) if self.rate is not None else 1.0
        self.rate = instant if self.rate is None else weight * instant + (1.0 - weight) * self.rate
        return self.rate

    def eta_s(self, remaining: float) -> float | None:
        return remaining / self.rate if self.rate else None


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


def job_task(
    kind: str,
    *,
    queue: Queue = "default",
    time_limit_s: int = 6 * 3600,
    soft_time_limit_s: int | None = None,
    links: JobLinks | None = None,
) -> Callable[[JobFn], Any]:
    """Register ``fn(job, reporter) -> result dict`` as the Celery task that runs jobs of this kind.

    ``queue`` is a name or a callable read when each job is created (so a setting can move a kind to other
    workers); the Job row records it. Past ``soft_time_limit_s`` (default: a minute before the hard limit) the job
    fails with a readable message and its transaction rolls back; ``time_limit_s`` kills the worker process, and the
    reaper then marks the job failed. ``links(job)`` names what a finished job produced, for its page.
    """
    soft = soft_time_limit_s if soft_time_limit_s is not None else max(1, time_limit_s - 60)
    if soft >= time_limit_s:
        raise ValueError(f"job kind {kind}: the soft time limit must be below the hard one")

    def decorate(fn: JobFn) -> Any:
        @shared_task(
            name=f"jobs.{kind}",
            acks_late=True,
            reject_on_worker_lost=False,
            time_limit=time_limit_s,
            soft_time_limit=soft,
        )
        def run(job_id: int) -> None:
            job_execute(job_id, fn, soft_time_limit_s=soft)

        _REGISTRY[kind] = JobKind(kind, run, queue, time_limit_s, soft, links)
        return run

    return decorate


def job_kind(kind: str) -> JobKind | None:
    return _REGISTRY.get(kind)


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes >= 1 else f"{seconds:.0f} s"


def job_execute(job_id: int, fn: JobFn, *, soft_time_limit_s: float | None = None) -> None:
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
    except SoftTimeLimitExceeded:
        # Raised inside fn by Celery; the services' transactions and atomic directories have rolled back by now.
        limit = f" of {_minutes(soft_time_limit_s)}" if soft_time_limit_s else ""
        _finish(
            job_id,
            Job.Status.FAILED,
            f"The job ran past its time limit{limit} and was stopped; nothing was kept.",
        )
    except PermanentJobError as exc:
        _finish(job_id, Job.Status.FAILED, str(exc), retryable=False)
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


def _finish(
    job_id: int, status: str, message: str | None, *, result: dict | None = None, retryable: bool = True
) -> None:
    fields: dict[str, Any] = {
        "status": status,
        "finished_at": timezone.now(),
        "heartbeat_at": timezone.now(),
        "retryable": retryable,
    }
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
    retry_of: Job | None = None,
) -> Job:
    """Create a queued job on its kind's declared queue; enqueue its task once the surrounding transaction commits."""
    entry = _REGISTRY.get(kind)
    if entry is None:
        raise WorkbenchError(f"Unknown job kind {kind!r}")
    queue = entry.queue_name()
    job = Job.objects.create(
        project=project, kind=kind, title=title, params=params, queue=queue, created_by=user, retry_of=retry_of
    )
    transaction.on_commit(lambda: entry.task.apply_async(args=[job.pk], queue=queue))
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
    if not job.retryable:
        raise WorkbenchError(f"Job #{job.pk} failed in a way a retry cannot fix: {job.message}")
    return job_create(project=job.project, kind=job.kind, title=job.title, params=job.params, user=user, retry_of=job)


def jobs_reap_stale(*, now: Any = None) -> int:
    """Mark running jobs whose heartbeat stopped (the worker died) as failed. Returns how many.

    Run by the beat schedule (workbench.celery), never from a page view: a GET never writes.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)
    return Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Job.Status.FAILED,
        finished_at=now,
        message="The worker stopped responding (it crashed or was killed). Nothing half-written was kept; "
        "retry the job.",
    )
