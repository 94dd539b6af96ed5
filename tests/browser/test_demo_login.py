from __future__ import annotations

import pytest

from tests.browser.conftest import login
from workbench.demo import demo_password, demo_project_ensure, demo_users_ensure
from workbench.models import Document

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_demo_annotator_logs_in_and_opens_the_demo_project(page, live_server, scifact_dir) -> None:  # type: ignore[no-untyped-def]
    demo_users_ensure()
    demo_project_ensure(folder=scifact_dir)
    login(page, live_server, "annotator", demo_password())
    page.click("text=SciFact demo")
    page.wait_for_selector("h1:has-text('SciFact demo')")
    assert page.locator(".badge").inner_text() == "Annotator"  # the role as people read it
    assert "held" not in page.locator("h1").inner_text()
    # Annotators see the corpus but not the upload/manage actions.
    assert page.locator("text=Upload a corpus").count() == 0
    page.click("main a[href*='/corpora/']")
    page.wait_for_selector("table.table tbody tr")
    word = max(Document.objects.order_by("id").first().title.split(), key=len).strip(".,:;()")
    page.fill("input[name=q]", word)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**q={word}**")
    rows = page.locator("#doc-results tbody tr")
    assert rows.count() >= 1
