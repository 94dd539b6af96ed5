"""A new user's path through the pages (issue 12): next step, styled 403, one result per document, job links."""

from __future__ import annotations

import os
import re

import pytest

from tests.browser.conftest import login
from tests.evaluation.factories import make_doc
from tests.factories import PASSWORD, make_corpus, make_indexed_project, make_project
from workbench.models import IndexVersion, Job, Role
from workbench.retrieval import backends as B
from workbench.retrieval.backend_measure import BackendResult
from workbench.services import backends as backend_service
from workbench.services import configurations, indexes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_leads_an_ml_lead_from_a_corpus_to_building_an_index(page, live_server) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    make_doc(make_corpus(project, name="papers"), "d1")
    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/")
    step = page.locator("[data-testid=next-step]")
    assert "Next step: build an index" in step.inner_text()
    assert page.locator("[data-stage=corpus]").get_attribute("data-state") == "done"
    assert "Training needs judged queries" in page.locator("[data-stage=training]").inner_text()
    assert page.locator("[data-stage=training] a").count() == 0  # placeholders link to no missing page
    step.locator("[data-testid=next-step-action]").click()
    page.wait_for_url(f"{live_server.url}/p/{project.slug}/indexes/#build")
    assert page.locator("#build h2").inner_text() == "Build an index"
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_a_refusal_is_a_styled_page_with_the_reason(page, live_server) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    login(page, live_server, "lead", PASSWORD)
    response = page.goto(f"{live_server.url}/p/{project.slug}/members/")
    assert response.status == 403
    reason = page.locator("[data-testid=error-403] [role=alert]").inner_text()
    assert reason == "Your role (ML lead) cannot do this here."
    assert page.locator("header.topbar .project-nav").is_visible()  # inside the site's layout, with navigation
    page.get_by_role("link", name=f"Back to {project.name}").click()
    page.wait_for_url(f"{live_server.url}/p/{project.slug}/")


def test_search_shows_one_result_per_document_with_more_from_it(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = make_indexed_project(scifact_dir, tiny_encoder_path)
    draft = configurations.search_configuration_draft(project=project, index=index, mode="hybrid", name="prod")
    saved = configurations.search_configuration_create(configuration=draft, user=lead)
    configurations.serving_set(project=project, configuration=saved, user=lead)
    login(page, live_server, "ann", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/search/")
    assert page.locator("[data-testid=per-document]").input_value() == "1"
    page.fill("input[name=k]", "20")
    page.fill("input[name=q]", "cells protein expression")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=timings]")
    assert (
        "20 documents (best passage of each, from the top 100 passages)"
        in page.locator("[data-testid=timings]").inner_text()
    )
    docs = page.locator("ol.results > li.passage").evaluate_all("els => els.map(e => e.dataset.document)")
    assert len(docs) == 20 and len(set(docs)) == 20
    more = page.locator("[data-testid=more-from-document]").first
    more.locator("summary").click()
    assert more.locator(".passage").first.is_visible()
    page.select_option("[data-testid=per-document]", "0")
    page.click("button[type=submit]")
    page.wait_for_function("document.querySelector('[data-testid=timings]').innerText.includes('20 passages')")


def test_a_finished_job_links_to_what_it_made(page, live_server, scifact_dir, tiny_encoder_path, eager_celery) -> None:  # type: ignore[no-untyped-def]
    project, _, corpus, _, index = make_indexed_project(scifact_dir, tiny_encoder_path)
    job = Job.objects.get(project=project, kind="index_build")
    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/")
    page.locator(".jobs-table").get_by_role("link", name=str(job.pk), exact=True).click()
    page.wait_for_url(f"{live_server.url}/p/{project.slug}/jobs/{job.pk}/")
    links = page.locator(".job-links")
    assert "Produced:" in links.inner_text() and "index_version_id" not in page.content()
    assert page.locator("[data-testid=job-status]").inner_text() == "Succeeded"
    links.get_by_role("link", name=str(index)).click()
    page.wait_for_url(f"{live_server.url}/p/{project.slug}/indexes/{index.pk}/")
    assert page.locator("h1").inner_text() == str(index)
    assert "Flat (exact)" in page.locator("[data-testid=manifest]").inner_text()
    assert corpus.name in page.locator("main").inner_text()


def test_the_index_form_offers_answer_sentences_and_the_index_page_reports_them(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, _, _, _, index = make_indexed_project(scifact_dir, tiny_encoder_path)
    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/indexes/#build")
    box = page.get_by_label("Store answer sentences")
    assert box.is_checked() and box.is_visible()
    assert "extractive answers need no encoder pass" in page.locator("#build").inner_text()
    if os.environ.get("SHOT_DIR"):
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/indexes-build.png", full_page=True)
    page.goto(f"{live_server.url}/p/{project.slug}/indexes/{index.pk}/")
    manifest = page.locator("[data-testid=manifest]").inner_text()
    assert f"{index.manifest['sentence_count']:,} citable sentences embedded" in manifest
    assert "answer sentences" in manifest  # its share of the build time
    if os.environ.get("SHOT_DIR"):
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/index-page.png", full_page=True)


def test_a_rebuild_from_the_form_reuses_the_earlier_index_vectors(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, _, corpus, _, first = make_indexed_project(scifact_dir, tiny_encoder_path)
    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/indexes/#build")
    assert page.get_by_label("Reuse vectors of unchanged passages").is_checked()
    page.get_by_label("Index type").select_option("hnsw")
    page.get_by_role("button", name="Build index").click()
    page.wait_for_url(re.compile(rf"{live_server.url}/p/{project.slug}/jobs/\d+/"))  # the form's #build stays on
    rebuilt = IndexVersion.objects.exclude(pk=first.pk).get(project=project)
    n = corpus.passages.count()
    assert rebuilt.index_type == "hnsw" and rebuilt.reused_vectors == n
    page.goto(f"{live_server.url}/p/{project.slug}/indexes/")
    assert f"{n:,} vectors reused" in page.locator("table").inner_text()
    if os.environ.get("SHOT_DIR"):
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/indexes-reused.png", full_page=True)
    page.goto(f"{live_server.url}/p/{project.slug}/indexes/{rebuilt.pk}/")
    manifest = page.locator("[data-testid=manifest]").inner_text()
    assert f"{n:,} passages and" in manifest and "from scifact v1 (same texts, same weights)" in manifest
    if os.environ.get("SHOT_DIR"):
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/index-reused.png", full_page=True)


def test_the_configuration_form_offers_a_reranker_weight(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, _, _, _, _ = make_indexed_project(scifact_dir, tiny_encoder_path)
    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/configurations/")
    weight = page.get_by_label("Reranker weight")
    assert weight.is_visible() and weight.input_value() == "1.0"
    assert "blends its z-scored scores with the first stage" in page.locator("main").inner_text()
    if os.environ.get("SHOT_DIR"):
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/configurations.png", full_page=True)


def test_a_reranker_too_slow_for_its_depth_is_flagged_where_configurations_are_made(
    page, live_server, scifact_dir, tiny_encoder_path, tiny_cross_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, _ = make_indexed_project(scifact_dir, tiny_encoder_path)
    ce = indexes.model_register(project=project, path=str(tiny_cross_encoder_path), name="slow-ce", user=lead)
    ce.usable_for_search = True
    ce.save()
    timed = {"20": {"p50": 380.0, "p95": 400.0}, "50": {"p50": 950.0, "p95": 1000.0}}  # 20 ms a pair here
    report = {
        "kind": "cross-encoder", "cpu": B.cpu_info().to_dict(), "threads": 2, "chosen": B.TORCH_FP32,
        "reason": "the only backend", "default": B.TORCH_FP32, "thresholds": {}, "measured_at": "2026-12-04T18:00:00",
        "backends": [BackendResult(B.TORCH_FP32, items_per_s=50.0, rerank_ms=timed, passed=True).to_dict()],
    }  # fmt: skip
    backend_service.backend_record(model=ce, report=report)
    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/configurations/")
    page.get_by_label("Name").fill("deep rerank")
    page.locator("#id_reranker").select_option(label=ce.name)
    page.get_by_label("Rerank top n").fill("50")
    page.get_by_role("button", name="Save configuration").click()
    page.wait_for_load_state()
    main = page.locator("main").inner_text()
    assert "predicted at p95 1000 ms on this CPU, over the 500 ms rerank budget: the top 25 fits." in main
    assert "over the 500 ms budget: top 25 fits" in page.locator("[data-testid=rerank-predicted]").inner_text()
    if os.environ.get("SHOT_DIR"):
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/configurations-budget.png", full_page=True)
    page.goto(f"{live_server.url}/p/{project.slug}/models/{ce.pk}/")
    assert "the top 25 of 50" in page.locator("[data-testid=rerank-budget]").inner_text()
    if os.environ.get("SHOT_DIR"):
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/model-budget.png", full_page=True)
