"""The training app on the database: start, run as a job (eager Celery), outcomes, refusals, cancel, follow-ups."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from training import services
from training.models import TrainingRun
from workbench.errors import WorkbenchError
from workbench.jobs import job_execute
from workbench.models import Job, JobMetric, ModelVersion, SearchConfiguration

pytestmark = pytest.mark.django_db

# a tiny model learns fast with a large rate; short sequences keep each step in milliseconds
FAST = {"max_steps": 4, "batch_size": 4, "learning_rate": 1e-3, "max_seq_length": 32, "dev_corpus_max": 40}


def _start(world, capture, **kw):  # type: ignore[no-untyped-def]
    project, lead, _, encoder, _, snapshot = world
    args = {"project": project, "user": lead, "snapshot": snapshot, "kind": "bi_encoder", "base": encoder}
    with capture(execute=True):
        run = services.training_run_start(**{**args, **kw})
    run.refresh_from_db()
    return run


def test_a_bi_encoder_run_trains_reports_loss_and_records_its_outcome(world, django_capture_on_commit_callbacks):
    run = _start(world, django_capture_on_commit_callbacks, params=FAST)
    job = Job.objects.get(pk=run.job_id)
    assert job.status == "succeeded", (job.message, job.log_tail)
    assert job.queue == "cpu"
    losses = JobMetric.objects.filter(job=job, name="loss")
    assert losses.count() >= 1
    assert JobMetric.objects.filter(job=job, name="dev_ndcg@10", step=0).exists()  # the base, before training
    assert run.outcome in ("improved", "not_improved")
    assert run.metrics["steps"] == 4 and run.metrics["base_dev"] is not None
    if run.outcome == "improved":
        version = run.model_version
        assert version.source == "trained" and version.kind == "bi_encoder" and version.base_id == world[3].pk
        assert version.fingerprint and version.dimension == 32 and version.manifest["snapshot_hash"]
    else:
        assert run.model_version is None and "Does not beat its base" in run.verdict
    assert run.verdict in job.message


def test_a_run_that_does_not_beat_its_base_registers_no_model(world, django_capture_on_commit_callbacks):
    before = ModelVersion.objects.count()
    run = _start(world, django_capture_on_commit_callbacks, params={**FAST, "learning_rate": 1e-7, "max_steps": 2})
    assert run.job.status == "succeeded"
    assert run.outcome == "not_improved" and run.model_version is None
    assert "not offered as an improvement" in run.verdict
    assert ModelVersion.objects.count() == before
    client = _client(world)
    page = client.get(reverse("training:run", kwargs={"slug": world[0].slug, "pk": run.pk})).content.decode()
    assert "Does not beat its base" in page and "No model version was registered" in page


def test_a_reranker_run_from_the_bi_encoder_gets_a_fresh_head(world, django_capture_on_commit_callbacks):
    run = _start(world, django_capture_on_commit_callbacks, kind="cross_encoder", params={**FAST, "max_steps": 3})
    assert run.job.status == "succeeded", run.job.message
    assert run.first_stage_id == world[3].pk
    if run.model_version:
        assert run.model_version.kind == "cross_encoder" and run.model_version.usable_for_search
        assert run.model_version.manifest["head"] == "fresh (one logit)"


def test_a_lora_run_registers_an_adapter_not_offered_for_search(world, django_capture_on_commit_callbacks):
    run = _start(world, django_capture_on_commit_callbacks, params={**FAST, "lora": {"rank": 4}})
    assert run.job.status == "succeeded", run.job.message
    assert run.lora and run.params["lora"]["rank"] == 4
    if run.model_version:
        assert run.model_version.kind == "lora_adapter" and not run.model_version.usable_for_search


@pytest.mark.parametrize(
    "params, message",
    [
        ({"learning_rate": 5.0}, "Learning rate"),
        ({"epochs": 0}, "Epochs"),
        ({"mining": {"relative_margin": 0.9}}, "Relative margin"),
        ({"lora": {"rank": 0}}, "LoRA rank"),
        ({"loss": "lambda"}, "bi-encoder loss"),
    ],
)
def test_hyperparameters_out_of_range_are_refused_and_nothing_is_created(world, params, message):
    project, lead, _, encoder, _, snapshot = world
    jobs, runs = Job.objects.count(), TrainingRun.objects.count()
    with pytest.raises(WorkbenchError, match=message):
        services.training_run_start(
            project=project, user=lead, snapshot=snapshot, kind="bi_encoder", base=encoder, params=params
        )
    assert (Job.objects.count(), TrainingRun.objects.count()) == (jobs, runs)


def test_a_cancelled_run_keeps_nothing(world, django_capture_on_commit_callbacks):
    project, lead, _, encoder, _, snapshot = world
    with django_capture_on_commit_callbacks(execute=False):  # leave it queued
        run = services.training_run_start(
            project=project, user=lead, snapshot=snapshot, kind="bi_encoder", base=encoder, params=FAST
        )
    Job.objects.filter(pk=run.job_id).update(cancel_requested=True)  # asked while the worker picks it up
    versions = ModelVersion.objects.count()
    job_execute(run.job_id, lambda job, report: services.training_run_execute(job=job, report=report))
    job = Job.objects.get(pk=run.job_id)
    assert job.status == "cancelled"
    assert ModelVersion.objects.count() == versions
    run.refresh_from_db()
    assert run.outcome == "pending" and run.model_version is None


def test_follow_ups_build_an_index_and_save_a_configuration(world, django_capture_on_commit_callbacks):
    project, lead, _, encoder, _, _ = world
    run = _start(world, django_capture_on_commit_callbacks, params={**FAST, "learning_rate": 1e-7, "max_steps": 1})
    trained = ModelVersion.objects.create(
        project=project, name="trained", kind="bi_encoder", source="trained", path=encoder.path, base=encoder,
        dimension=32, fingerprint=encoder.fingerprint,
    )  # fmt: skip
    TrainingRun.objects.filter(pk=run.pk).update(model_version=trained, outcome="improved")
    run.refresh_from_db()
    with pytest.raises(WorkbenchError, match="Build an index"):
        services.training_run_configure(run=run, user=lead)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.training_run_build_index(run=run, user=lead)
    assert Job.objects.get(pk=job.pk).status == "succeeded"
    configuration = services.training_run_configure(run=run, user=lead)
    assert configuration.index.encoder_id == trained.pk and configuration.mode == "hybrid"
    run.refresh_from_db()
    assert run.configuration_id == configuration.pk and run.index_job_id == job.pk
    assert SearchConfiguration.objects.filter(pk=configuration.pk).exists()


def _client(world):  # type: ignore[no-untyped-def]
    from django.test import Client

    client = Client()
    client.login(username=world[1].username, password=PASSWORD)
    return client


def test_the_form_starts_a_run_and_explains_every_knob(world, django_capture_on_commit_callbacks):
    project, _, corpus, _, _, snapshot = world
    client = _client(world)
    url = reverse("training:new", kwargs={"slug": project.slug})
    page = client.get(url).content.decode()
    for text in ("Learning rate", "Relative margin", "LoRA rank", "Time budget", "keep the best checkpoint"):
        assert text in page
    bad = client.post(url, {"snapshot": snapshot.pk, "kind": "bi_encoder", "learning_rate": "7"})
    assert bad.status_code == 200 and "Learning rate must be between" in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {"freeze_source": "imported", "corpus": corpus.pk, "kind": "bi_encoder", "max_seq_length": 32,
             "batch_size": 4, "epochs": 0.2, "learning_rate": 1e-3},
        )  # fmt: skip
    assert response.status_code == 302
    run = TrainingRun.objects.latest("created_at")
    assert run.snapshot_id != snapshot.pk and run.snapshot.source == "imported"
    assert run.job.status == "succeeded", run.job.message
    detail = client.get(response["Location"]).content.decode()
    assert "job-metric-chart" in detail and run.get_outcome_display() in detail
    listing = client.get(reverse("training:list", kwargs={"slug": project.slug})).content.decode()
    assert run.name in listing


def test_the_status_partial_reloads_the_page_once_the_run_is_over(world, django_capture_on_commit_callbacks):
    run = _start(world, django_capture_on_commit_callbacks, params={**FAST, "max_steps": 1})
    client = _client(world)
    url = reverse("training:run_status", kwargs={"slug": world[0].slug, "pk": run.pk})
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    assert "Succeeded" in response.content.decode()
    assert "HX-Refresh" not in client.get(url)  # a plain GET is just the card


def test_mining_reads_the_vectors_of_an_index_built_with_the_base(world, django_capture_on_commit_callbacks):
    """The world's index was built with the base encoder: a run at the base's length mines from its stored vectors
    (the same vectors the encoder computes), one at another length embeds the collection itself."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from training.selectors import stored_document_vectors, training_corpus
    from workbench.retrieval.testing import TINY_MAX_SEQ_LENGTH

    _project, _lead, corpus, encoder, index, _snapshot = world
    found = stored_document_vectors(corpus, encoder, max_seq_length=TINY_MAX_SEQ_LENGTH)
    assert found is not None and found[1] == index
    vectors = found[0]
    texts = training_corpus(corpus)
    assert sorted(vectors.doc_ids) == sorted(texts)  # every document, by its first passage
    model = SentenceTransformer(encoder.path, device="cpu")
    some = vectors.doc_ids[:5]
    computed = model.encode_document([texts[d] for d in some], normalize_embeddings=True)
    # the same vectors up to the index build's precision (bf16 where the CPU has it): cosine, not equality
    assert np.all(np.sum(vectors.matrix[:5] * computed, axis=1) > 0.999)
    assert stored_document_vectors(corpus, encoder, max_seq_length=TINY_MAX_SEQ_LENGTH + 1) is None

    run = _start(world, django_capture_on_commit_callbacks, params={**FAST, "max_seq_length": TINY_MAX_SEQ_LENGTH})
    job = Job.objects.get(pk=run.job_id)
    assert job.status == "succeeded", (job.message, job.log_tail)
    assert f"mining reads the vectors of index v{index.number}" in job.log_tail
    other = _start(world, django_capture_on_commit_callbacks, params=FAST)
    assert "mining embeds the collection" in Job.objects.get(pk=other.job_id).log_tail
