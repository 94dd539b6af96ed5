"""Evaluation uses the project's grade scale: its relevance threshold is stored with the results and pages show it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evaluation import services
from tests.evaluation.factories import spec
from workbench.models import Query, QueryTag
from workbench.services.projects import project_grade_scale_set

pytestmark = pytest.mark.django_db


def test_semantics_carry_the_given_threshold() -> None:
    semantics, stored, _ = services.semantics_for_depth(100, relevance_threshold=2)
    assert semantics.relevance_threshold == 2 and stored["relevance_threshold"] == 2
    assert services.semantics_for_depth(100)[0].relevance_threshold == 1


def test_evaluation_uses_the_project_threshold_and_the_query_page_shows_the_scale(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, index = built
    project_grade_scale_set(project=project, grade_min=0, grade_max=4, labels=[], relevance_threshold=2, by=lead)
    project.refresh_from_db()
    test = QueryTag.objects.get(project=project, name="test")
    run = services.eval_run_start(
        project=project, user=lead, tag=test, resamples=200, background=False,
        configs=[spec(index=index, mode="bm25")],
    )  # fmt: skip
    assert run.semantics["relevance_threshold"] == 2
    assert services.metric_semantics(run.semantics).relevance_threshold == 2
    query = Query.objects.get(project=project, external_id=run.configs.first().results["metrics"]["qids"][0])
    client.force_login(lead)
    url = reverse("evaluation:query", kwargs={"slug": project.slug, "pk": run.pk, "query_pk": query.pk})
    html = client.get(url).content.decode()
    assert "grades 0–4, relevant from 2" in html and "grades 0–3" not in html
