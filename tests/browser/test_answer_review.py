from __future__ import annotations

import pytest

from evaluation.models import AnswerFlag, AnswerReview
from tests.answers.factories import make_finished_answer_run
from tests.browser.conftest import login
from tests.factories import PASSWORD, make_project
from workbench.models import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reviewer_reviews_an_answer_with_the_keyboard_only(page, live_server) -> None:  # type: ignore[no-untyped-def]
    project = make_project(rev=Role.REVIEWER)
    run = make_finished_answer_run(project, answers=2)
    first, second = run.answers.order_by("position")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    login(page, live_server, "rev", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/answers/{run.pk}/review/")
    assert first.query.external_id in page.locator("h1").inner_text()
    assert page.locator(".item.current").count() == 1
    page.evaluate("window.__noReload = true")
    page.keyboard.press("s")  # claim 1: supported; focus moves to its citation
    assert page.locator(".citation-item.current").count() == 1
    page.keyboard.press("c")  # the citation is correct
    page.keyboard.press("f")  # send the passage pair to a judging campaign
    page.wait_for_selector("#flag-status.flag-done")
    page.keyboard.press("4")  # usefulness
    page.keyboard.press("a")  # should have abstained: yes ...
    page.keyboard.press("a")  # ... no
    # Hallucination followed the claim labels: no unsupported claim, so "no".
    assert page.locator("input[name=hallucination][value=no]").is_checked()
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('h1').innerText.includes('{second.query.external_id}')")
    assert page.evaluate("window.__noReload") is True  # swapped by htmx, no full page load
    review = AnswerReview.objects.get(answer=first)
    assert (review.usefulness, review.hallucination, review.should_have_abstained) == (4, False, False)
    assert review.claim_reviews.get().label == "supported"
    assert review.citation_reviews.get().verdict == "correct"
    assert review.seconds is not None and review.seconds > 0
    assert AnswerFlag.objects.get().target == "judging"
    # The second answer: unsupported claim, wrong citation; hallucination is derived as "yes".
    page.keyboard.press("u")
    page.keyboard.press("w")
    page.keyboard.press("2")
    page.keyboard.press("a")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Nothing left to review")
    second_review = AnswerReview.objects.get(answer=second)
    assert second_review.hallucination is True and second_review.usefulness == 2
    assert errors == []
