"""Jobs that can carry hour-long training: declared queues and limits, O(1) metrics, periodic housekeeping,
read-only job pages, permanent failures and one status partial."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.evaluation.factories import make_encoder, make_index
from tests.factories import make_corpus, make_project
from workbench.celery import app
from workbench.errors import PermanentJobError, WorkbenchError
from workbench.jobs import JobReporter, SmoothedRate, job_create, job_execute, job_kind, job_retry, job_task
from workbench.models import Corpus, Job, JobMetric, Role, SearchLog
from workbench.selectors import job_metric_series
from workbench.services import maintenance

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(client):  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    client.force_login(project.memberships.get().user)
    return client, project


def _page(client, job: Job, **extra) -> str:  # type: ignore[no-untyped-def]
    return client.get(
        reverse("workbench:job", kwargs={"slug": job.project.slug, "pk": job.pk}), **extra
    ).content.decode()


# --- queues and time limits are declared with the task ---------------------------------------------------------


def test_queue_comes_from_the_task_declaration(settings, monkeypatch, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    sent: list[tuple[str, str]] = []
    for kind in ("index_build", "import_corpus", "evaluation_run"):
        entry = job_kind(kind)
        assert entry is not None, kind
        monkeypatch.setattr(entry.task, "apply_async", lambda args, queue, k=kind: sent.append((k, queue)))
    settings.INDEX_BUILD_QUEUE = "cpu-big"
    project = make_project()
    with django_capture_on_commit_callbacks(execute=True):
        index = job_create(project=project, kind="index_build", title="i", params={}, user=None)
        imp = job_create(project=project, kind="import_corpus", title="c", params={}, user=None)
        ev = job_create(project=project, kind="evaluation_run", title="e", params={}, user=None)
    assert (index.queue, imp.queue, ev.queue) == ("cpu-big", "default", "default")
    assert sent == [("index_build", "cpu-big"), ("import_corpus", "default"), ("evaluation_run", "default")]
    with pytest.raises(TypeError):
        job_create(project=project, kind="import_corpus", title="c", params={}, user=None, queue="gpu")  # type: ignore[call-arg]


def test_declared_limits_reach_celery() -> None:
    entry = job_kind("index_build")
    assert entry is not None
    assert entry.task.time_limit == entry.time_limit_s and entry.task.soft_time_limit == entry.soft_time_limit_s
    assert entry.soft_time_limit_s < entry.time_limit_s
    with pytest.raises(ValueError):
        job_task("bad_limits", time_limit_s=60, soft_time_limit_s=60)


def test_soft_time_limit_fails_the_job_readably_and_keeps_nothing() -> None:
    project = make_project()

    def slow(job, report):  # type: ignore[no-untyped-def]
        with transaction.atomic():
            Corpus.objects.create(project=job.project, name="half")
            raise SoftTimeLimitExceeded()  # what Celery raises inside the task when the soft limit passes

    task = job_task("test_soft_limit", time_limit_s=600, soft_time_limit_s=300)(slow)
    job = Job.objects.create(project=project, kind="test_soft_limit", title="t")
    task(job.pk)  # runs the task body in this process
    job.refresh_from_db()
    assert job.status == "failed" and "ran past its time limit of 5 min" in job.message
    assert not Corpus.objects.filter(name="half").exists()


# --- metrics: O(1) append, downsampled reads -------------------------------------------------------------------


def test_metric_append_is_one_insert_whatever_the_history() -> None:
    job = Job.objects.create(project=make_project(), kind="import_corpus", title="t", status=Job.Status.RUNNING)
    report = JobReporter(job)
    report.metric({"loss": 1.0})  # first call also reads the last step once

    def queries_for_one_call(step: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            report.metric({"loss": 0.5, "lr": 1e-4}, step=step)
        return len(ctx.captured_queries)

    short = queries_for_one_call(10)
    JobMetric.objects.bulk_create(JobMetric(job=job, name="loss", step=100 + i, value=0.1) for i in range(5000))
    long = queries_for_one_call(6000)
    assert short == long == 1
    report.metric({"loss": 0.4})  # without a step, counts on from the last one seen
    assert JobMetric.objects.filter(job=job, name="loss").order_by("-id").values_list("step", flat=True)[0] == 6001


def test_series_is_downsampled_with_exact_first_and_last() -> None:
    job = Job.objects.create(project=make_project(), kind="import_corpus", title="t")
    JobMetric.objects.bulk_create(JobMetric(job=job, name="loss", step=s, value=1000.0 - s) for s in range(0, 20000, 2))
    JobMetric.objects.create(job=job, name="other", step=0, value=5.0)
    series = job_metric_series(job, "loss", max_points=500)
    assert 3 <= len(series) <= 500
    assert series[0] == (0, 1000.0) and series[-1] == (19998, 1000.0 - 19998)
    steps = [s for s, _ in series]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    # Each bucket's mean lies within its step range (value = 1000 - step, so mean >= 1000 - last step of bucket).
    assert all(v >= 1000.0 - s - 1e-9 for s, v in series)
    few = job_metric_series(job, "other")
    assert few == [(0, 5.0)] and job_metric_series(job, "missing") == []


def test_job_page_shows_metric_chart(lead) -> None:  # type: ignore[no-untyped-def]
    client, project = lead
    job = Job.objects.create(project=project, kind="import_corpus", title="t", status=Job.Status.SUCCEEDED)
    JobMetric.objects.bulk_create(JobMetric(job=job, name="loss", step=s, value=1.0 / (s + 1)) for s in range(50))
    html = _page(client, job)
    assert 'id="job-metric-data"' in html and "chart-4.6.1.umd.min.js" in html and "job-metrics.js" in html
    assert "https://" not in html.split('id="job-metric-data"')[1]  # no CDN


# --- housekeeping runs on the beat schedule, pages never write ---------------------------------------------------


def test_beat_schedule_runs_the_housekeeping_tasks() -> None:
    schedule = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}
    assert set(schedule) >= {
        "maintenance.reap_stale_jobs",
        "maintenance.prune_search_logs",
        "maintenance.remove_stale_artifact_temp_dirs",
        "maintenance.remove_stale_upload_staging",
    }
    assert schedule["maintenance.reap_stale_jobs"]["schedule"] == 30.0
    for name in schedule:
        assert name in app.tasks, name


def test_reap_task_marks_stale_jobs_failed(settings) -> None:  # type: ignore[no-untyped-def]
    from workbench.tasks import reap_stale_jobs

    settings.JOB_HEARTBEAT_TIMEOUT_S = 60
    stale = Job.objects.create(
        project=make_project(), kind="import_corpus", title="t", status=Job.Status.RUNNING,
        heartbeat_at=timezone.now() - timedelta(seconds=300),
    )  # fmt: skip
    assert reap_stale_jobs() == 1
    stale.refresh_from_db()
    assert stale.status == "failed" and "stopped responding" in stale.message


def test_get_of_a_job_page_never_writes(lead, settings) -> None:  # type: ignore[no-untyped-def]
    client, project = lead
    settings.JOB_HEARTBEAT_TIMEOUT_S = 60
    job = Job.objects.create(
        project=project, kind="import_corpus", title="t", status=Job.Status.RUNNING, progress=0.3,
        heartbeat_at=timezone.now() - timedelta(seconds=600),
    )  # fmt: skip
    JobMetric.objects.create(job=job, name="loss", step=0, value=1.0)
    with CaptureQueriesContext(connection) as ctx:
        page = _page(client, job)
        _page(client, job, HTTP_HX_REQUEST="true")
        client.get(reverse("workbench:jobs", kwargs={"slug": project.slug}))
    writes = [
        q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert "not responding" in page
    job.refresh_from_db()
    assert job.status == "running"


def test_search_logs_older_than_retention_are_pruned() -> None:
    project = make_project()
    corpus = make_corpus(project)
    index = make_index(project, corpus, make_encoder(project))
    old = SearchLog.objects.create(project=project, index=index, mode="dense", total_ms=1.0)
    new = SearchLog.objects.create(project=project, index=index, mode="dense", total_ms=1.0)
    SearchLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert maintenance.search_logs_prune(older_than_days=30) == 1
    assert list(SearchLog.objects.values_list("pk", flat=True)) == [new.pk]
    assert maintenance.search_logs_prune(older_than_days=0) == 0


def test_stale_temp_dirs_and_upload_staging_are_removed(settings) -> None:  # type: ignore[no-untyped-def]
    stale_tmp = settings.ARTIFACTS_DIR / "indexes" / "3-abc.tmp-deadbeef"
    live_tmp = settings.ARTIFACTS_DIR / "indexes" / "4-abc.tmp-cafe"
    for d in (stale_tmp, live_tmp):
        d.mkdir(parents=True)
    os.utime(stale_tmp, (time.time() - 7 * 3600,) * 2)
    assert maintenance.artifact_temp_dirs_remove() == [stale_tmp] and live_tmp.exists()

    old_orphan, old_in_use, fresh = (settings.UPLOAD_DIR / n for n in ("aaa", "bbb", "ccc"))
    for d in (old_orphan, old_in_use, fresh):
        d.mkdir(parents=True)
    for d in (old_orphan, old_in_use):
        os.utime(d, (time.time() - 2 * 86400,) * 2)
    Job.objects.create(project=make_project(), kind="import_corpus", title="t", params={"staging": str(old_in_use)})
    assert maintenance.upload_staging_remove() == [old_orphan]
    assert old_in_use.exists() and fresh.exists()


# --- permanent failures, links, queue place, progress -------------------------------------------------------------


def test_permanent_failure_offers_no_retry_and_refuses_one(lead) -> None:  # type: ignore[no-untyped-def]
    client, project = lead

    def malformed(job, report):  # type: ignore[no-untyped-def]
        raise PermanentJobError("bad.jsonl, line 2: malformed JSON")

    def flaky(job, report):  # type: ignore[no-untyped-def]
        raise WorkbenchError("the database was busy")

    permanent = Job.objects.create(project=project, kind="import_corpus", title="t")
    job_execute(permanent.pk, malformed)
    transient = Job.objects.create(project=project, kind="import_corpus", title="t")
    job_execute(transient.pk, flaky)
    permanent.refresh_from_db()
    assert permanent.status == "failed" and not permanent.retryable and "malformed JSON" in permanent.message
    html = _page(client, permanent)
    assert "malformed JSON" in html and "Retry</button>" not in html and "Retrying cannot fix this" in html
    assert "Retry</button>" in _page(client, transient)
    with pytest.raises(WorkbenchError):
        job_retry(job=permanent, user=None)
    n = Job.objects.count()
    response = client.post(
        reverse("workbench:job_retry", kwargs={"slug": project.slug, "pk": permanent.pk}), follow=True
    )
    assert Job.objects.count() == n and "a retry cannot fix" in response.content.decode()


def test_finished_job_links_to_what_it_produced(lead) -> None:  # type: ignore[no-untyped-def]
    client, project = lead
    corpus = make_corpus(project, name="scifact")
    index = make_index(project, corpus, make_encoder(project))
    job = Job.objects.create(
        project=project, kind="index_build", title="Index scifact", status=Job.Status.SUCCEEDED, progress=1.0,
        params={"corpus_id": corpus.pk},
        result={"index_version_id": index.pk, "index": str(index), "passages": 10192, "build_seconds": 536.04,
                "message": "Built it."},
    )  # fmt: skip
    html = _page(client, job)
    assert reverse("workbench:index", kwargs={"slug": project.slug, "pk": index.pk}) in html
    assert reverse("workbench:corpus", kwargs={"slug": project.slug, "pk": corpus.pk}) in html
    assert "index_version_id" not in html and "10,192" in html and "Build (s)" in html and "536.0" in html


def test_queued_job_shows_its_place_and_what_runs_ahead(lead) -> None:  # type: ignore[no-untyped-def]
    client, project = lead
    running = Job.objects.create(
        project=project, kind="index_build", title="Index big", queue="cpu", status=Job.Status.RUNNING, progress=0.4
    )
    waiting = Job.objects.create(project=project, kind="index_build", title="Index small", queue="cpu")
    Job.objects.create(project=make_project(), kind="index_build", title="Secret", queue="cpu")
    Job.objects.create(project=project, kind="import_corpus", title="Other queue", queue="default")
    mine = Job.objects.create(project=project, kind="index_build", title="Mine", queue="cpu")
    html = _page(client, mine)
    assert "4th in queue cpu" in html
    assert f"Index big #{running.pk}</a> (running, 40 %)" in html and f"Index small #{waiting.pk}" in html
    assert "1 job of other projects" in html and "Secret" not in html and "Other queue" not in html


def test_bar_and_text_show_the_same_percent(lead) -> None:  # type: ignore[no-untyped-def]
    client, project = lead
    job = Job.objects.create(project=project, kind="index_build", title="t", status=Job.Status.RUNNING, progress=0.7549)
    html = _page(client, job)
    assert 'value="75"' in html and ">75 %<" in html


def test_smoothed_rate_ignores_the_warm_up_interval() -> None:
    rate = SmoothedRate(half_life_s=5.0)
    assert rate.update(0, now=0.0) is None
    assert rate.update(64, now=30.0) is None  # model load and the longest batch: not a rate to plan by
    for i in range(2, 12):
        rate.update(64 * i, now=30.0 + (i - 1) * 0.5)
    assert rate.rate == pytest.approx(128.0)
    assert rate.eta_s(1280) == pytest.approx(10.0)
