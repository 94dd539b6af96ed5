"""What one save + next costs the server: SQL statements pinned so a change that adds one per judgment fails here
(the load benchmark, bench/labeling_load.py, measures the time)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling import selectors
from labeling.models import Assignment, Campaign
from labeling.templatetags import labeling_tags

pytestmark = pytest.mark.django_db

# session, user, project + role, campaign, the locked assignment read (with document, judgment, rule gold and current
# guideline), INSERT judgment, UPDATE assignment, next pair + progress.
SAVE_AND_NEXT = 8


def _statements(ctx: CaptureQueriesContext) -> list[str]:
    # Savepoints come from the test's own transaction (on a live server they are BEGIN/COMMIT): not counted.
    return [q["sql"] for q in ctx.captured_queries if not re.match(r"(RELEASE )?SAVEPOINT|BEGIN|COMMIT", q["sql"])]


def _submit_url(project, campaign, a) -> str:  # type: ignore[no-untyped-def]
    return reverse("labeling:judge_submit", kwargs={"slug": project.slug, "pk": campaign.pk, "assignment_pk": a.pk})


def test_save_and_next_query_count_is_pinned(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, _lead, _corpus, campaign, judges = campaign_world
    c = Client()
    c.force_login(judges[0])
    c.get(reverse("labeling:judge", kwargs={"slug": project.slug, "pk": campaign.pk}))  # session, CSRF cookie
    first = selectors.assignment_next(campaign, judges[0])
    with CaptureQueriesContext(connection) as ctx:
        r = c.post(_submit_url(project, campaign, first), {"grade": "2", "seconds": "2"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and 'id="judge-pane"' in r.content.decode()
    assert len(_statements(ctx)) == SAVE_AND_NEXT, "\n".join(_statements(ctx))
    assert re.match(r'app;dur=[\d.]+, db;dur=[\d.]+;desc="\d+ queries"', r["Server-Timing"])
    # The pane answered is the next unjudged pair, with the progress counted in the same query as it.
    nxt = selectors.assignment_next(campaign, judges[0])
    assert f"/judge/{nxt.pk}/" in r.content.decode()
    mine = selectors.my_progress(campaign, judges[0])
    assert mine["done"] == 1 and f"{mine['done']} / {mine['total']} judged" in r.content.decode()
    assert nxt.progress == mine  # type: ignore[attr-defined]
    # A revision: UPDATE judgment instead of INSERT, then the judgment read back.
    with CaptureQueriesContext(connection) as ctx:
        r = c.post(_submit_url(project, campaign, first), {"grade": "3"}, HTTP_HX_REQUEST="true")
    assert len(_statements(ctx)) == SAVE_AND_NEXT + 1, "\n".join(_statements(ctx))
    assert Assignment.objects.get(pk=first.pk).judgment.grade == 3
    assert selectors.my_progress(campaign, judges[0])["done"] == 1


def test_open_campaign_costs_one_more_query_for_others_grades(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, _lead, _corpus, campaign, judges = campaign_world
    Campaign.objects.filter(pk=campaign.pk).update(blind=False)
    c = Client()
    c.force_login(judges[0])
    first = selectors.assignment_next(campaign, judges[0])
    with CaptureQueriesContext(connection) as ctx:
        c.post(_submit_url(project, campaign, first), {"grade": "1"}, HTTP_HX_REQUEST="true")
    assert len(_statements(ctx)) == SAVE_AND_NEXT + 1


def test_next_pane_and_step_query_counts(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, _lead, _corpus, campaign, judges = campaign_world
    c = Client()
    c.force_login(judges[0])
    url = reverse("labeling:judge", kwargs={"slug": project.slug, "pk": campaign.pk})
    with CaptureQueriesContext(connection) as ctx:
        r = c.get(url, HTTP_HX_REQUEST="true")
    # session, user, project + role, campaign, next pair + progress
    assert r.status_code == 200 and len(_statements(ctx)) == 5, "\n".join(_statements(ctx))
    order = list(selectors.my_assignments(campaign, judges[0]).values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as ctx:
        r = c.get(url + f"?a={order[0]}&step=next", HTTP_HX_REQUEST="true")
    # ... the pair named, the one after it, the progress
    assert len(_statements(ctx)) == 7, "\n".join(_statements(ctx))
    assert f"/judge/{order[1]}/" in r.content.decode()
    r = c.get(url + f"?a={order[0]}&step=prev", HTTP_HX_REQUEST="true")
    assert f"/judge/{order[0]}/" in r.content.decode() and "your first pair" in r.content.decode()
    r = c.get(url + f"?a={order[-1]}&step=next")
    assert f"/judge/{order[-1]}/" in r.content.decode() and "your last pair" in r.content.decode()


def test_guideline_html_is_rendered_once_per_text() -> None:
    labeling_tags._render.cache_clear()
    text = "# Rules\n\nJudge **relevance**. <script>x</script>"
    first = labeling_tags.guideline_markdown(text)
    assert "<strong>relevance</strong>" in first and "<script>" not in first
    assert labeling_tags.guideline_markdown(text) == first
    assert labeling_tags._render.cache_info().hits == 1
