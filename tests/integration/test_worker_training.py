"""The real MiniLM trains for a few steps on a real worker (PostgreSQL + Redis), reporting loss into the Job."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeling.services.snapshots import snapshot_freeze
from tests.factories import make_corpus, make_project
from tests.integration.conftest import wait_for_job
from training import services
from training.models import TrainingRun
from workbench.models import JobMetric, Role
from workbench.services.imports import beir_import

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_minilm_trains_a_few_steps_on_a_real_worker(celery_worker_process, scifact_dir) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    lead = project.memberships.get().user
    corpus = make_corpus(project, name="scifact")
    beir_import(project=project, corpus=corpus, folder=scifact_dir, user=lead)
    snapshot = snapshot_freeze(project=project, corpus=corpus, name="s", user=lead, source="imported", dev_fraction=0.3)
    run = services.training_run_start(
        project=project,
        user=lead,
        snapshot=snapshot,
        kind="bi_encoder",
        base=None,  # the built-in all-MiniLM-L6-v2
        params={"max_steps": 3, "batch_size": 4, "max_seq_length": 64, "dev_corpus_max": 40},
    )
    assert run.job.queue == "cpu"
    job = wait_for_job(run.job_id, timeout=600, worker=celery_worker_process)
    assert job.status == "succeeded", (job.message, job.log_tail)
    assert JobMetric.objects.filter(job=job, name="loss").exists()
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.metrics["steps"] == 3 and run.outcome in ("improved", "not_improved")
    assert run.metrics["hardware"]["device"] in ("cpu", "cuda")
    if run.model_version:
        assert Path(run.model_version.path, "manifest.json").is_file()
        assert Path(run.model_version.path, "README.md").read_text().count("snapshot hash") == 1
