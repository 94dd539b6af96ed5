"""An annotator judges with the keyboard only: grades, an evidence span, undo; the database holds exactly that."""

from __future__ import annotations

import os

import pytest

from labeling.models import Assignment
from labeling.services.campaigns import campaign_create, campaign_pool_build
from tests.browser.conftest import login
from tests.factories import PASSWORD, make_indexed_project
from workbench.models import Judgment, QueryTag, SearchConfiguration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _pane_assignment(page) -> int:  # type: ignore[no-untyped-def]
    url = page.locator("#judge-pane").get_attribute("data-submit-url")
    return int(url.rstrip("/").split("/")[-1])


def _wait_pane_changes(page, old: int) -> int:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "old => { const p = document.getElementById('judge-pane'); const u = p && p.dataset.submitUrl;"
        " return u && !u.endsWith('/' + old + '/'); }",
        arg=old,
    )
    return _pane_assignment(page)


def test_keyboard_only_judging_with_span_and_undo(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, _, index = make_indexed_project(scifact_dir, tiny_encoder_path)
    ann = project.memberships.get(role="annotator").user
    bm25 = SearchConfiguration.objects.create(project=project, name="bm25", index=index, mode="bm25")
    qids = list(
        QueryTag.objects.get(project=project, name="train").queries.order_by("id").values_list("external_id", flat=True)
    )[:2]
    campaign = campaign_create(
        project=project, corpus=corpus, name="kb", user=lead, configurations=[bm25], query_ids=qids, depth=3,
        guidelines="# Rules\n\n<script>alert('x')</script> Grade **carefully**.", annotators=[ann],
    )  # fmt: skip
    campaign_pool_build(campaign=campaign)
    before = Judgment.objects.filter(source="annotator").count()

    login(page, live_server, "ann", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/labeling/campaigns/{campaign.pk}/judge/")
    # Guidelines render as markdown with raw HTML escaped.
    assert "<strong>carefully</strong>" in page.locator(".guidelines-text").inner_html()
    assert page.locator(".guidelines-text script").count() == 0
    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    page.keyboard.press("Escape")

    first = _pane_assignment(page)
    page.keyboard.press("2")  # grade 2, next pair arrives without a page load
    second = _wait_pane_changes(page, first)
    assert page.evaluate("document.documentElement.classList.contains('js')")  # same document: no full load

    # Select the first 12 characters of the passage and mark them with "s", twice; "u" takes the second back.
    select = (
        "([s, e]) => { const el = document.getElementById('passage-text'); const r = document.createRange();"
        " const w = document.createTreeWalker(el, NodeFilter.SHOW_TEXT); let pos = 0, n, start = null, end = null;"
        " while ((n = w.nextNode())) { const len = n.textContent.length;"
        "  if (start === null && s < pos + len) start = [n, s - pos];"
        "  if (end === null && e <= pos + len) { end = [n, e - pos]; break; } pos += len; }"
        " r.setStart(...start); r.setEnd(...end); const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r); }"
    )
    text = page.locator("#passage-text").text_content()
    end = next(i for i in range(12, len(text)) if not text[i - 1].isspace())
    page.evaluate(select, [0, end])
    page.keyboard.press("s")
    page.evaluate(select, [0, 5])
    page.keyboard.press("s")
    assert page.locator("#span-list li").count() == 2
    page.keyboard.press("u")  # undo the last span
    assert page.locator("#span-list li").count() == 1
    page.keyboard.press("3")
    third = _wait_pane_changes(page, second)

    page.keyboard.press("1")
    fourth = _wait_pane_changes(page, third)
    page.keyboard.press("u")  # undo the last saved judgment: the third pair comes back
    page.wait_for_function(f"document.getElementById('judge-pane').dataset.submitUrl.endsWith('/{third}/')")
    assert fourth != third
    page.keyboard.press("x")  # can't judge, with a reason typed and Enter
    page.keyboard.type("Needs a clinician")
    page.keyboard.press("Enter")
    _wait_pane_changes(page, third)

    rows = {
        a.pk: a.judgment
        for a in Assignment.objects.filter(pk__in=[first, second, third, fourth]).select_related("judgment")
    }
    assert Judgment.objects.filter(source="annotator").count() == before + 3
    assert (rows[first].grade, rows[first].evidence, rows[first].cant_judge) == (2, [], False)
    assert (rows[second].grade, rows[second].evidence) == (3, [[0, end]])
    assert rows[third].cant_judge and rows[third].explanation == "Needs a clinician"
    assert rows[fourth] is None  # undone
    assert all(rows[a].seconds is not None and rows[a].seconds >= 0 for a in (first, second, third))
    if os.environ.get("LABELING_SCREENSHOT"):
        page.set_viewport_size({"width": 1400, "height": 900})
        page.screenshot(path=os.environ["LABELING_SCREENSHOT"])
