from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.factories import PASSWORD, make_corpus, make_project
from workbench import indexing
from workbench.imports import beir_import
from workbench.models import Role
from workbench.retrieval.testing import build_tiny_encoder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ml_lead_runs_an_evaluation_and_sees_metrics_comparison_and_charts(
    page, live_server, scifact_dir, tmp_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    lead = project.memberships.get().user
    corpus = make_corpus(project)
    beir_import(project=project, corpus=corpus, folder=scifact_dir, user=lead)
    tiny = build_tiny_encoder(tmp_path / "enc")
    encoder = indexing.model_register(project=project, path=str(tiny), name="tiny", user=lead)
    indexing.index_build_start(project=project, corpus=corpus, encoder=encoder, index_type="flat", params={}, user=lead)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/evaluations/new/")
    # The form defaults to the held-out test tag and dense / BM25 / hybrid on the newest index.
    assert "test" in page.locator("select[name=query_set] option:checked").inner_text()
    page.fill("input[name=resamples]", "2000")
    page.click("form button[type=submit]")
    page.wait_for_selector("#comparison")
    body = page.locator("main").inner_text()
    assert "nDCG@10" in body and "recall@10" in body and "MRR@10" in body
    assert "not significant" in body or "better" in body or "worse" in body
    page.wait_for_function("document.querySelectorAll('#charts canvas').length >= 3")
    # Chart.js drew into the canvases (a blank canvas has no width set by the library).
    assert page.evaluate("document.getElementById('chart-recall').width") > 0
    page.locator("#queries a").first.click()
    page.wait_for_load_state()
    assert "grade" in page.locator("main").inner_text().lower()
    assert errors == []
