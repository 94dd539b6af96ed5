"""Index builds on a real worker; searching them through the API; a worker killed mid-build."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import make_corpus, make_project
from tests.integration.conftest import start_worker, stop_worker, wait_for_job
from workbench.jobs import jobs_reap_stale
from workbench.models import IndexVersion, Job, Role
from workbench.retrieval.testing import build_tiny_encoder
from workbench.services import configurations, indexes, projects
from workbench.services.imports import beir_import

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def project_with_corpus(scifact_dir):  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    lead = project.memberships.get().user
    corpus = make_corpus(project, name="scifact")
    beir_import(project=project, corpus=corpus, folder=scifact_dir, user=lead)
    return project, lead, corpus


def test_build_on_worker_then_search_through_api(celery_worker_process, project_with_corpus, tmp_path, client) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus = project_with_corpus
    encoder = indexes.model_register(
        project=project, path=str(build_tiny_encoder(tmp_path / "enc")), name="tiny", user=lead
    )
    hnsw = {"hnsw_m": 16, "ef_construction": 40, "ef_search": 64}
    job = indexes.index_build_start(
        project=project, corpus=corpus, encoder=encoder, index_type="hnsw", params=hnsw, user=lead
    )
    assert job.queue == "cpu"
    job = wait_for_job(job.pk, worker=celery_worker_process)
    assert job.status == "succeeded", (job.message, job.log_tail)
    index = IndexVersion.objects.get()
    assert index.index_type == "hnsw" and index.params["hnsw_m"] == 16
    # The worker wrote the artifact into its own ARTIFACTS_DIR; this process reads it from the recorded path.
    assert Path(index.path, "manifest.json").is_file()
    # Nothing answers until an ML lead serves a configuration of the new index; then the API uses it by default.
    key = projects.api_token_create(user=lead, name="it")
    url = reverse("api:search", kwargs={"slug": project.slug})
    ask = {"q": project.queries.first().text, "k": 10}
    unserved = client.post(url, json.dumps(ask), content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert unserved.status_code == 400 and "serves no search configuration" in unserved.json()["error"]
    draft = configurations.search_configuration_draft(project=project, index=index, mode="hybrid", name="hnsw")
    saved = configurations.search_configuration_create(configuration=draft, user=lead)
    configurations.serving_set(project=project, configuration=saved, user=lead)
    response = client.post(url, json.dumps(ask), content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"]) == 10 and body["configuration"]["id"] == saved.pk and body["configuration"]["served"]


def test_worker_killed_mid_build_leaves_job_failed_and_no_index(
    real_services, project_with_corpus, tmp_path, settings
) -> None:  # type: ignore[no-untyped-def]
    """Real MiniLM on ~200 passages takes long enough to kill the worker while it embeds."""
    project, lead, corpus = project_with_corpus
    settings.INDEX_BUILD_QUEUE = "doomed"
    settings.JOB_HEARTBEAT_TIMEOUT_S = 8
    worker = start_worker(real_services, tmp_path, "doomed")
    try:
        encoder = indexes.encoder_base_ensure(project=project)
        job = indexes.index_build_start(
            project=project, corpus=corpus, encoder=encoder, index_type="flat", params={}, user=lead
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            job.refresh_from_db()
            if job.status == "running" and job.progress > 0.05:
                break
            time.sleep(0.2)
        assert job.status == "running", (job.status, job.message, worker.log_path.read_text()[-2000:])  # type: ignore[attr-defined]
    finally:
        stop_worker(worker, signal.SIGKILL)
    time.sleep(settings.JOB_HEARTBEAT_TIMEOUT_S + 1)
    assert jobs_reap_stale() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "stopped responding" in job.message
    assert not IndexVersion.objects.exists()
    built = [p for p in (tmp_path / "artifacts" / "indexes").glob("*") if ".tmp-" not in p.name]
    assert built == []  # only an unfinished temp dir may remain, never something that looks whole
