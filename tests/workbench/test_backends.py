"""Inference backends in the app: the measurement job, the model page, the engine's choice and its fallback, the
latency page per backend, and adaptive rerank depth through configurations and the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import make_indexed_project
from workbench.errors import WorkbenchError
from workbench.models import Job, ModelVersion, Role, SearchConfiguration, SearchLog
from workbench.retrieval import backends as B
from workbench.retrieval.backend_measure import BackendResult
from workbench.services import backends as backend_service
from workbench.services import configurations, indexes, projects
from workbench.services.engines import backend_choice

pytestmark = pytest.mark.django_db
needs_int8 = pytest.mark.skipif(bool(B.backend_unavailable_reason(B.TORCH_INT8)), reason="no int8 kernels here")
needs_openvino = pytest.mark.skipif(not B._openvino_importable(), reason="openvino not installed")


@pytest.fixture
def world(scifact_dir, tiny_encoder_path, tiny_cross_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    project, lead, corpus, encoder, index = make_indexed_project(
        scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks
    )
    ce = indexes.model_register(project=project, path=str(tiny_cross_encoder_path), name="ce", user=lead)
    return project, lead, corpus, encoder, index, ce


def _report(chosen: str, *, signature: str | None = None) -> dict:
    cpu = B.cpu_info().to_dict()
    if signature is not None:
        cpu["signature"] = signature
    return {
        "kind": "cross-encoder", "cpu": cpu, "threads": 2, "chosen": chosen, "reason": "test", "default": "torch-fp32",
        "thresholds": {}, "backends": [], "measured_at": "2026-12-01T00:00:00+00:00",
    }  # fmt: skip


@needs_int8
def test_measure_button_runs_the_job_and_the_model_page_shows_the_table(
    client, world, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, _, ce = world
    ann = project.memberships.get(role=Role.ANNOTATOR).user
    page = reverse("workbench:model", kwargs={"slug": project.slug, "pk": ce.pk})
    client.force_login(ann)
    html = client.get(page).content.decode()
    assert "never measured" in html and "Measure backends" not in html  # annotators see, never measure
    client.force_login(lead)
    assert "Measure backends" in client.get(page).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("workbench:model_measure", kwargs={"slug": project.slug, "pk": ce.pk}))
    assert response.status_code == 302
    job = Job.objects.get(kind="backend_measure")
    assert job.status == "succeeded", (job.message, job.log_tail)
    assert "dev lists" in job.log_tail and "judged" in job.log_tail
    ce.refresh_from_db()
    report = ce.backend_report
    assert ce.inference_backend == report["chosen"] and report["cpu"]["signature"] == B.cpu_info().signature
    rows = {r["name"]: r for r in report["backends"]}
    assert rows[B.TORCH_FP32]["passed"], rows[B.TORCH_FP32]["error"]
    assert set(rows[B.TORCH_INT8]["rerank_ms"]) == {"20", "50"}
    html = client.get(page).content.decode()
    assert 'data-testid="backend-report"' in html and B.TORCH_INT8 in html and "chosen" in html
    assert f'data-testid="backend-in-use">{ce.inference_backend}<' in html


def test_measure_refuses_adapters_and_twice_at_once(world) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, encoder, _, _ = world
    adapter = ModelVersion.objects.create(
        project=project, name="lora", kind="lora_adapter", source="trained", path="/x"
    )
    with pytest.raises(WorkbenchError, match="only encoders and rerankers"):
        backend_service.backend_measure_start(model=adapter, user=lead)
    Job.objects.create(project=project, kind="backend_measure", title="t", params={"model_id": encoder.pk})
    with pytest.raises(WorkbenchError, match="already being measured"):
        backend_service.backend_measure_start(model=encoder, user=lead)


@needs_int8
def test_engine_reranks_with_the_measured_backend_and_falls_back_on_another_cpu(client, world) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index, ce = world
    key = projects.api_token_create(user=lead, name="ci")
    url = reverse("api:search", kwargs={"slug": project.slug})
    params = {"q": "cells", "index": index.pk, "rerank": ce.pk, "rerank_top_n": 20, "k": 5}

    backend_service.backend_record(model=ce, report=_report(B.TORCH_INT8))
    assert backend_choice(ce).backend == B.TORCH_INT8
    body = client.get(url, params, HTTP_AUTHORIZATION=f"Token {key}").json()
    assert body["backends"] == {"embed": "torch-fp32", "rerank": "torch-int8"} and body["rerank_depth"] == 20
    log = SearchLog.objects.latest("id")
    assert log.backends["rerank"] == "torch-int8" and log.rerank_depth == 20

    backend_service.backend_record(model=ce, report=_report(B.TORCH_INT8, signature="Other CPU [avx2 amx_bf16]"))
    choice = backend_choice(ce)
    assert choice.backend == "" and choice.label.endswith("(fallback)") and "measured on Other CPU" in choice.note
    body = client.get(url, params, HTTP_AUTHORIZATION=f"Token {key}").json()
    assert body["backends"]["rerank"] == f"{B.default_backend()} (fallback)"
    client.force_login(lead)
    html = client.get(reverse("workbench:model", kwargs={"slug": project.slug, "pk": ce.pk})).content.decode()
    assert "Fallback: measured on Other CPU" in html


@needs_openvino
def test_measured_encoder_backend_embeds_queries_and_index_builds(
    client, world, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, encoder, index, _ = world
    backend_service.backend_record(model=encoder, report={**_report(B.OPENVINO_FP32), "kind": "bi-encoder"})
    key = projects.api_token_create(user=lead, name="ci")
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}), {"q": "cells", "index": index.pk, "mode": "dense"},
        HTTP_AUTHORIZATION=f"Token {key}",
    ).json()  # fmt: skip
    assert body["backends"] == {"embed": "openvino-fp32"} and body["results"]
    with django_capture_on_commit_callbacks(execute=True):
        job = indexes.index_build_start(
            project=project, corpus=corpus, encoder=encoder, index_type="flat", params={}, user=lead
        )
    job.refresh_from_db()
    assert job.status == "succeeded", job.log_tail
    new = project.index_versions.get(number=2)
    manifest = json.loads(Path(new.path, "manifest.json").read_text())
    assert manifest["parameters"]["precision"] == "openvino-fp32"


def test_latency_page_breaks_the_rerank_stage_down_per_backend(client, world) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index, _ = world
    for i, backend in enumerate(["torch-fp32"] * 10 + ["torch-int8"] * 10):
        SearchLog.objects.create(
            project=project, index=index, mode="hybrid", reranked=True, rerank_depth=20 + (i % 2) * 10,
            backends={"embed": "torch-fp32", "rerank": backend},
            timings_ms={"embed": 5, "rerank": 400 if backend == "torch-fp32" else 250, "total": 500}, total_ms=500,
        )  # fmt: skip
    client.force_login(lead)
    html = client.get(reverse("workbench:latency", kwargs={"slug": project.slug})).content.decode()
    assert "rerank · torch-fp32" in html and "rerank · torch-int8" in html and "embed · torch-fp32" in html
    assert "250.00" in html and "400.00" in html and "25.0" in html  # per-backend p50s, mean depth


def test_adaptive_depth_through_the_configuration_form_and_api(client, world) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index, ce = world
    ce.usable_for_search = True
    ce.save()
    client.force_login(lead)
    response = client.post(
        reverse("workbench:configurations", kwargs={"slug": project.slug}),
        {"name": "adaptive", "index": index.pk, "mode": "bm25", "alpha": 0.5, "fusion_depth": 100,
         "reranker": ce.pk, "rerank_top_n": 30, "rerank_adaptive": "on", "rerank_min_n": 4, "rerank_margin": 0.2},
    )  # fmt: skip
    assert response.status_code == 302
    saved = SearchConfiguration.objects.get(name="adaptive")
    assert saved.rerank_adaptive and saved.rerank_min_n == 4 and saved.spec.rerank_margin == 0.2
    html = client.get(reverse("workbench:configurations", kwargs={"slug": project.slug})).content.decode()
    assert "adaptive ≥4 margin 0.2" in html
    key = projects.api_token_create(user=lead, name="ci")
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}), {"q": "cells and proteins", "configuration": saved.pk,
                                                             "k": 3}, HTTP_AUTHORIZATION=f"Token {key}",
    ).json()  # fmt: skip
    assert 4 <= body["rerank_depth"] <= 30 and len(body["results"]) == 3
    assert SearchLog.objects.latest("id").rerank_depth == body["rerank_depth"]
    # Ad-hoc over the API: the adaptive fields make a draft like any other setting.
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}),
        {"q": "cells", "index": index.pk, "mode": "bm25", "rerank": ce.pk, "rerank_top_n": 30,
         "rerank_adaptive": "true", "rerank_min_n": 30}, HTTP_AUTHORIZATION=f"Token {key}",
    ).json()  # fmt: skip
    assert body["rerank_depth"] == 30 and "adaptive" in body["configuration"]["description"]
    with pytest.raises(WorkbenchError, match="adaptive rerank minimum"):
        configurations.search_configuration_draft(
            project=project, index=index, mode="bm25", reranker=ce, rerank_top_n=10, rerank_adaptive=True,
            rerank_min_n=20,
        )  # fmt: skip


def test_rerank_weight_through_the_form_the_api_and_the_database(client, world) -> None:  # type: ignore[no-untyped-def]
    from django.db import IntegrityError, transaction

    from training.services import recommended_rerank_weight

    project, lead, _, _, index, ce = world
    ce.usable_for_search = True
    ce.manifest = {"metrics": {"blend": {"weight": 0.6}}}
    ce.save()
    assert recommended_rerank_weight(ce) == 0.6
    client.force_login(lead)
    response = client.post(
        reverse("workbench:configurations", kwargs={"slug": project.slug}),
        {"name": "blended", "index": index.pk, "mode": "bm25", "alpha": 0.5, "fusion_depth": 100,
         "reranker": ce.pk, "rerank_top_n": 20, "rerank_weight": 0.6},
    )  # fmt: skip
    assert response.status_code == 302
    saved = SearchConfiguration.objects.get(name="blended")
    assert saved.spec.rerank_weight == 0.6 and "blended 0.6 reranker" in saved.describe()
    html = client.get(reverse("workbench:configurations", kwargs={"slug": project.slug})).content.decode()
    assert "blended 0.6 with the first stage" in html
    response = client.post(
        reverse("workbench:configurations", kwargs={"slug": project.slug}),
        {"name": "bad", "index": index.pk, "mode": "bm25", "alpha": 0.5, "fusion_depth": 100,
         "reranker": ce.pk, "rerank_top_n": 20, "rerank_weight": 0},
    )  # fmt: skip
    assert response.status_code == 200 and not SearchConfiguration.objects.filter(name="bad").exists()
    key = projects.api_token_create(user=lead, name="ci")
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}),
        {"q": "cells", "index": index.pk, "mode": "bm25", "rerank": ce.pk, "rerank_top_n": 20,
         "rerank_weight": 0.5}, HTTP_AUTHORIZATION=f"Token {key}",
    ).json()  # fmt: skip
    assert "blended 0.5 reranker" in body["configuration"]["description"] and len(body["results"]) == 10
    with pytest.raises(WorkbenchError, match="rerank weight"):
        configurations.search_configuration_draft(project=project, index=index, reranker=ce, rerank_weight=1.5)
    # the database refuses what the checks would: a row written around them
    with pytest.raises(IntegrityError), transaction.atomic():
        SearchConfiguration.objects.filter(pk=saved.pk).update(rerank_weight=0.0)


def test_the_rerank_budget_on_the_model_page_and_the_configurations(client, world) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index, ce = world
    ce.usable_for_search = True
    ce.save()
    client.force_login(lead)
    page = reverse("workbench:model", kwargs={"slug": project.slug, "pk": ce.pk})
    assert 'data-testid="rerank-budget"' not in client.get(page).content.decode()  # nothing measured: no promise
    report = _report(B.TORCH_FP32)
    timed = {"20": {"p50": 290.0, "p95": 300.0}, "50": {"p50": 700.0, "p95": 750.0}}
    report["backends"] = [BackendResult(B.TORCH_FP32, items_per_s=70.0, rerank_ms=timed, passed=True).to_dict()]
    backend_service.backend_record(model=ce, report=report)  # 15 ms a pair on this CPU: 33 pairs in 500 ms
    html = client.get(page).content.decode()
    assert "the top 30</strong> of 50 (predicted p95 450 ms; the top 50: 750 ms)" in html
    configurations_url = reverse("workbench:configurations", kwargs={"slug": project.slug})
    form = {"index": index.pk, "mode": "bm25", "alpha": 0.5, "fusion_depth": 100, "reranker": ce.pk, "rerank_weight": 1}
    response = client.post(configurations_url, {**form, "name": "deep", "rerank_top_n": 50}, follow=True)
    html = response.content.decode()
    assert "Saved deep." in html and "predicted at p95 750 ms on this CPU, over the 500 ms rerank budget" in html
    assert "the top 30 fits." in html and "over the 500 ms budget: top 30 fits" in html
    response = client.post(configurations_url, {**form, "name": "shallow", "rerank_top_n": 20}, follow=True)
    html = response.content.decode()
    assert "Saved shallow." in html and "rerank p95 ≈ 300 ms" in html
    assert html.count("rerank budget:") == 0  # no warning for a depth that fits
    # measured on another CPU: the timings do not hold here, so nothing is predicted
    backend_service.backend_record(model=ce, report={**report, "cpu": {**report["cpu"], "signature": "Other [avx2]"}})
    assert backend_service.rerank_budget_fit(ce) is None
    assert 'data-testid="rerank-predicted"' not in client.get(configurations_url).content.decode()


def test_measuring_goes_back_only_to_a_page_of_this_site(client, world) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, _, ce = world
    client.force_login(lead)
    url = reverse("workbench:model_measure", kwargs={"slug": project.slug, "pk": ce.pk})
    model_page = reverse("workbench:model", kwargs={"slug": project.slug, "pk": ce.pk})
    back = reverse("training:list", kwargs={"slug": project.slug})
    assert client.post(url, {"next": back})["Location"] == back  # queued (the worker is not run here)
    for outside in ("https://evil.example/", "//evil.example/x"):
        assert client.post(url, {"next": outside})["Location"] == model_page  # refused twice at once, still safe
