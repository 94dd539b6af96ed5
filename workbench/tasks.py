"""Background tasks of the core app. Thin: load rows, call one service. Queues and time limits live in the decorator.

The periodic maintenance tasks at the end run on the beat schedule of workbench.celery.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.urls import reverse

from workbench.jobs import JobReporter, job_task, jobs_reap_stale, queue_from_setting
from workbench.models import Corpus, Job
from workbench.services import backends, imports, indexes, maintenance

IMPORT_LIMITS = {"queue": "default", "time_limit_s": 2 * 3600, "soft_time_limit_s": 2 * 3600 - 120}


def _inputs(job: Job) -> list[imports.InputFile]:
    return [imports.InputFile.checked(Path(f["path"]), f["name"]) for f in job.params["files"]]


def _with_staging_cleanup(job: Job, run: Callable[[], dict]) -> dict:
    try:
        return run()
    finally:
        shutil.rmtree(job.params.get("staging", ""), ignore_errors=True)


def _corpus_links(job: Job) -> list[tuple[str, str]]:
    corpus = Corpus.objects.filter(pk=job.params.get("corpus_id"), project=job.project).first()
    if corpus is None:
        return []
    return [(f"Corpus {corpus.name}", reverse("workbench:corpus", kwargs={"slug": job.project.slug, "pk": corpus.pk}))]


def _queries_links(job: Job) -> list[tuple[str, str]]:
    return [("Queries", reverse("workbench:queries", kwargs={"slug": job.project.slug}))]


def _index_links(job: Job) -> list[tuple[str, str]]:
    slug = job.project.slug
    links = []
    if version_id := job.result.get("index_version_id"):
        label = job.result.get("index") or f"Index version #{version_id}"
        links.append((str(label), reverse("workbench:index", kwargs={"slug": slug, "pk": version_id})))
    links.append(("All indexes", reverse("workbench:indexes", kwargs={"slug": slug})))
    return links + _corpus_links(job)


@job_task("import_corpus", **IMPORT_LIMITS, links=_corpus_links)
def import_corpus(job: Job, report: JobReporter) -> dict:
    corpus = Corpus.objects.get(pk=job.params["corpus_id"], project=job.project)
    return _with_staging_cleanup(
        job,
        lambda: imports.corpus_import(
            corpus=corpus, files=_inputs(job), user=job.created_by, progress=lambda f, m: report.progress(f, m)
        ),
    )


@job_task("import_queries", **IMPORT_LIMITS, links=_queries_links)
def import_queries(job: Job, report: JobReporter) -> dict:
    return _with_staging_cleanup(
        job,
        lambda: imports.queries_import(
            project=job.project,
            files=_inputs(job),
            user=job.created_by,
            tags=job.params.get("tags", []),
            held_out=job.params.get("held_out", False),
            progress=lambda f, m: report.progress(f, m),
        ),
    )


@job_task("import_qrels", **IMPORT_LIMITS, links=lambda job: _queries_links(job) + _corpus_links(job))
def import_qrels(job: Job, report: JobReporter) -> dict:
    corpus = Corpus.objects.get(pk=job.params["corpus_id"], project=job.project)
    return _with_staging_cleanup(
        job,
        lambda: imports.qrels_import(
            project=job.project,
            corpus=corpus,
            files=_inputs(job),
            user=job.created_by,
            split=job.params.get("split") or None,
            grade_map=job.params.get("grade_map") or "",
            clip=bool(job.params.get("clip")),
        ),
    )


@job_task(
    "index_build",
    queue=queue_from_setting("INDEX_BUILD_QUEUE", "cpu"),
    time_limit_s=12 * 3600,
    soft_time_limit_s=12 * 3600 - 300,
    links=_index_links,
)
def index_build(job: Job, report: JobReporter) -> dict:
    return indexes.index_build_run(job=job, report=report)


def _model_links(job: Job) -> list[tuple[str, str]]:
    if model_id := job.params.get("model_id"):
        return [("Model", reverse("workbench:model", kwargs={"slug": job.project.slug, "pk": model_id}))]
    return []


@job_task(
    backends.JOB_KIND,
    queue=queue_from_setting("INDEX_BUILD_QUEUE", "cpu"),
    time_limit_s=3600,
    soft_time_limit_s=3600 - 120,
    links=_model_links,
)
def backend_measure(job: Job, report: JobReporter) -> dict:
    return backends.backend_measure_run(job=job, report=report)


# --- periodic maintenance (beat schedule in workbench.celery); each calls one service ---------------------------


@shared_task(name="maintenance.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> int:
    return jobs_reap_stale()


@shared_task(name="maintenance.prune_search_logs", ignore_result=True)
def prune_search_logs() -> int:
    return maintenance.search_logs_prune(older_than_days=settings.SEARCH_LOG_RETENTION_DAYS)


@shared_task(name="maintenance.remove_stale_artifact_temp_dirs", ignore_result=True)
def remove_stale_artifact_temp_dirs() -> int:
    return len(maintenance.artifact_temp_dirs_remove())


@shared_task(name="maintenance.remove_stale_upload_staging", ignore_result=True)
def remove_stale_upload_staging() -> int:
    return len(maintenance.upload_staging_remove())
