"""Background tasks of the core app. Thin: load rows, call one service."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from workbench.jobs import JobReporter, job_task
from workbench.models import Corpus, Job
from workbench.services import imports, indexes


def _inputs(job: Job) -> list[imports.InputFile]:
    return [imports.InputFile.checked(Path(f["path"]), f["name"]) for f in job.params["files"]]


def _with_staging_cleanup(job: Job, run: Callable[[], dict]) -> dict:
    try:
        return run()
    finally:
        shutil.rmtree(job.params.get("staging", ""), ignore_errors=True)


@job_task("import_corpus")
def import_corpus(job: Job, report: JobReporter) -> dict:
    corpus = Corpus.objects.get(pk=job.params["corpus_id"], project=job.project)
    return _with_staging_cleanup(
        job,
        lambda: imports.corpus_import(
            corpus=corpus, files=_inputs(job), user=job.created_by, progress=lambda f, m: report.progress(f, m)
        ),
    )


@job_task("import_queries")
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


@job_task("import_qrels")
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


@job_task("index_build")
def index_build(job: Job, report: JobReporter) -> dict:
    return indexes.index_build_run(job=job, report=report)
