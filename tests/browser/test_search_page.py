from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.factories import PASSWORD, make_indexed_project
from workbench.models import IndexVersion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_shows_ranked_results_with_timings(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, *_ = make_indexed_project(scifact_dir, tiny_encoder_path)
    assert IndexVersion.objects.count() == 1

    login(page, live_server, "ann", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/search/")
    query = project.queries.filter(judgments__isnull=False).first()
    page.fill("input[name=q]", query.text)
    page.select_option("select[name=mode]", "hybrid")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=timings]")
    timings = page.locator("[data-testid=timings]").inner_text()
    assert "results from" in timings and "embed" in timings and "total" in timings
    results = page.locator("ol.results > li.passage")
    assert results.count() == 10
    assert f"known query {query.external_id}" in timings
    assert "q=" in page.url  # htmx pushed the search into the address bar: the page is linkable
