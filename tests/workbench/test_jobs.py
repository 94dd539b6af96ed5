from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_project
from workbench.errors import WorkbenchError
from workbench.jobs import JobCancelled, JobReporter, job_cancel, job_create, job_execute, job_retry, jobs_reap_stale
from workbench.models import Job

pytestmark = pytest.mark.django_db


def _job(**kw) -> Job:  # type: ignore[no-untyped-def]
    return Job.objects.create(project=make_project(), kind="import_corpus", title="t", **kw)


def test_execute_records_success_failure_and_cancel() -> None:
    ok = _job()
    job_execute(ok.pk, lambda job, report: {"n": 3, "message": "all good"})
    ok.refresh_from_db()
    assert (ok.status, ok.progress, ok.result["n"], ok.message) == ("succeeded", 1.0, 3, "all good")
    assert ok.started_at and ok.finished_at

    def boom(job, report):  # type: ignore[no-untyped-def]
        raise WorkbenchError("the index dimension 32 does not match the encoder's 384")

    bad = _job()
    job_execute(bad.pk, boom)
    bad.refresh_from_db()
    assert bad.status == "failed" and "dimension 32" in bad.message

    def crash(job, report):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaboom")

    crashed = _job()
    job_execute(crashed.pk, crash)
    crashed.refresh_from_db()
    assert crashed.status == "failed" and "RuntimeError: kaboom" in crashed.message and "Traceback" in crashed.log_tail


def test_cancel_queued_job_skips_it_and_running_job_stops_at_checkpoint() -> None:
    queued = _job()
    job_cancel(job=queued)
    ran = []
    job_execute(queued.pk, lambda job, report: ran.append(1))
    queued.refresh_from_db()
    assert queued.status == "cancelled" and not ran

    running = _job()

    def loop(job, report: JobReporter):  # type: ignore[no-untyped-def]
        job_cancel(job=Job.objects.get(pk=job.pk))
        report._last_cancel_check = -10.0
        report.progress(0.5, "half", force=True)
        raise AssertionError("should have been cancelled")

    job_execute(running.pk, loop)
    running.refresh_from_db()
    assert running.status == "cancelled"


def test_retry_only_failed_or_cancelled(eager_celery) -> None:  # type: ignore[no-untyped-def]
    job = _job(status=Job.Status.SUCCEEDED)
    with pytest.raises(WorkbenchError):
        job_retry(job=job, user=None)
    job.status = Job.Status.FAILED
    job.save()
    again = job_retry(job=job, user=None)
    assert again.retry_of == job and again.params == job.params and again.status == "queued"


def test_stale_running_job_is_marked_failed(settings) -> None:  # type: ignore[no-untyped-def]
    settings.JOB_HEARTBEAT_TIMEOUT_S = 60
    stale = _job(status=Job.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(seconds=120))
    fresh = _job(status=Job.Status.RUNNING, heartbeat_at=timezone.now())
    assert jobs_reap_stale() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "failed" and "stopped responding" in stale.message and fresh.status == "running"


def test_reporter_log_tail_and_metrics() -> None:
    job = _job(status=Job.Status.RUNNING)
    report = JobReporter(job)
    for i in range(250):
        report.log(f"line {i}")
    report.metric({"loss": 0.5})
    job.refresh_from_db()
    lines = job.log_tail.splitlines()
    assert len(lines) == 200 and lines[-1].endswith("line 249")
    assert list(job.metrics.values_list("name", "step", "value")) == [("loss", 0, 0.5)]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(WorkbenchError):
        job_create(project=make_project(), kind="nope", title="x", params={}, user=None)


def test_cancel_exception_type() -> None:
    assert issubclass(JobCancelled, Exception)
