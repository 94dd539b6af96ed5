"""Imports through the browser path, executed by a real Celery worker over Redis, stored in PostgreSQL."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from tests.factories import make_corpus, make_project, make_user
from tests.integration.conftest import wait_for_job
from workbench.models import Document, Judgment, Passage
from workbench.services import projects

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_corpus_import_runs_on_the_worker_and_lands_in_postgres(celery_worker_process, scifact_dir) -> None:  # type: ignore[no-untyped-def]
    assert connection.vendor == "postgresql"
    project = make_project()
    corpus = make_corpus(project)
    user = make_user()
    upload = SimpleUploadedFile("corpus.jsonl", (scifact_dir / "corpus.jsonl").read_bytes())
    job = projects.import_job_start(project=project, kind="corpus", corpus=corpus, files=[upload], user=user)
    job = wait_for_job(job.pk, worker=celery_worker_process)
    assert job.status == "succeeded", job.message
    assert job.worker and job.started_at and job.finished_at
    n_docs = len((scifact_dir / "corpus.jsonl").read_text().splitlines())
    assert Document.objects.filter(corpus=corpus).count() == n_docs == job.result["documents"]
    assert Passage.objects.filter(corpus=corpus).count() == job.result["passages"] >= n_docs

    qrels = SimpleUploadedFile("test.tsv", b"query-id\tcorpus-id\tscore\nnope\tnope\t1\n")
    job = projects.import_job_start(project=project, kind="qrels", corpus=corpus, files=[qrels], user=user)
    job = wait_for_job(job.pk, worker=celery_worker_process)
    assert job.status == "failed" and "test.tsv, line 2: unknown query id 'nope'" in job.message
    assert not Judgment.objects.exists()


def test_full_text_search_uses_postgres_ranking(scifact_dir) -> None:  # type: ignore[no-untyped-def]
    from workbench.selectors import documents_search
    from workbench.services.imports import beir_import

    project = make_project()
    corpus = make_corpus(project)
    beir_import(project=project, corpus=corpus, folder=scifact_dir, user=None)
    doc = corpus.documents.order_by("id").first()
    word = max(doc.title.split(), key=len)
    hits = list(documents_search(corpus, text=word)[:5])
    assert hits and all(hasattr(h, "rank") for h in hits)
