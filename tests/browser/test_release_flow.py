"""An ML lead proposes a release, sees a failed gate, approves over it with a reason, activates it, activates a
second one and rolls back — and the API answers with what is live at each step."""

from __future__ import annotations

import pytest

from releases.models import GatePolicy, Release
from tests.browser.conftest import login
from tests.factories import PASSWORD
from tests.releases.factories import release_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _propose(page, live_server, project, configuration, run) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server.url}/p/{project.slug}/releases/new/")
    page.select_option("select[name=configuration]", str(configuration.pk))
    page.check(f"input[name=eval_runs][value='{run.pk}']")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=gates]")


def test_propose_override_activate_and_roll_back(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    world = release_world(scifact_dir, tiny_encoder_path)
    project, run = world["project"], world["run"]
    GatePolicy.objects.create(project=project, p95_latency_ms_max=0.001)  # no search is that fast: a failed gate
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, live_server, "lead", PASSWORD)

    _propose(page, live_server, project, world["bm25"], run)
    gates = page.locator("[data-testid=gates]").inner_text()
    assert "p95 latency (ms) — failed" in gates and "hallucination rate — not computable" in gates
    page.click("button:has-text('Approve')")  # no reason: refused, and said why
    assert "needs a written reason" in page.locator(".messages, body").first.inner_text()
    page.fill("textarea[name=reason]", "latency budget is for the production CPU; accepted for the pilot")
    page.click("button:has-text('Approve')")
    page.click("button:has-text('Activate')")
    assert page.locator("[data-testid=release-status]").inner_text() == "Active"
    first = Release.objects.get(configuration=world["bm25"])
    assert first.override_reason.startswith("latency budget") and first.status == "active"

    _propose(page, live_server, project, world["hybrid"], run)
    page.fill("textarea[name=reason]", "pilot")
    page.click("button:has-text('Approve')")
    page.click("button:has-text('Activate')")
    assert page.locator("[data-testid=release-status]").inner_text() == "Active"
    project.refresh_from_db()
    assert project.serving.configuration == world["hybrid"]

    page.goto(f"{live_server.url}/p/{project.slug}/releases/")
    page.fill("input[name=reason]", "hybrid looked worse on a slice")
    page.click("button:has-text('Roll back to')")
    assert page.locator("[data-testid=release-status]").inner_text() == "Active"
    first.refresh_from_db()
    project.refresh_from_db()
    assert first.status == "active" and project.serving.configuration == world["bm25"]
    page.goto(f"{live_server.url}/p/{project.slug}/releases/audit/")
    audit = page.locator("[data-testid=audit]").inner_text()
    assert "rolled back" in audit and "approved over failed gates" in audit
