from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.factories import PASSWORD, make_indexed_project
from workbench.models import IndexVersion
from workbench.services import configurations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_shows_ranked_results_with_timings(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = make_indexed_project(scifact_dir, tiny_encoder_path)
    assert IndexVersion.objects.count() == 1
    draft = configurations.search_configuration_draft(project=project, index=index, mode="hybrid", name="prod")
    configurations.serving_set(
        project=project,
        configuration=configurations.search_configuration_create(configuration=draft, user=lead),
        user=lead,
    )

    login(page, live_server, "ann", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/search/")
    query = project.queries.filter(judgments__isnull=False).first()
    assert "answer with prod" in page.locator("[data-testid=served]").inner_text()
    page.fill("input[name=q]", query.text)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=timings]")
    answered = page.locator("[data-testid=answered-by]").inner_text()
    assert answered.startswith("Answered by prod (what this project serves)")
    timings = page.locator("[data-testid=timings]").inner_text()
    assert "10 documents" in timings and "embed" in timings and "total" in timings  # one per document by default
    results = page.locator("ol.results > li.passage")
    assert results.count() == 10
    assert f"known query {query.external_id}" in timings
    assert "q=" in page.url  # htmx pushed the search into the address bar: the page is linkable
