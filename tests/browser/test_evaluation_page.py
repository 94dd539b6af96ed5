from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.factories import PASSWORD, make_indexed_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ml_lead_runs_an_evaluation_and_sees_metrics_comparison_and_charts(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, *_ = make_indexed_project(scifact_dir, tiny_encoder_path)
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
