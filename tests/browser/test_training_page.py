from __future__ import annotations

import os

import pytest

from tests.browser.conftest import login
from tests.factories import PASSWORD, make_indexed_project, make_snapshot
from training.models import TrainingRun
from workbench.models import Job, ModelVersion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ml_lead_starts_a_training_run_and_watches_it_succeed_with_a_loss_chart(
    page, live_server, scifact_dir, tiny_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, _, corpus, encoder, _ = make_indexed_project(scifact_dir, tiny_encoder_path)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/")
    page.click("nav.project-nav >> text=Training")
    page.click("text=New training run")
    # a tiny base registered by path stands in for MiniLM; labels are frozen into a new snapshot from the form
    page.select_option("select[name=base]", str(encoder.pk))
    page.select_option("select[name=freeze_source]", "imported")
    page.select_option("select[name=corpus]", str(corpus.pk))
    page.fill("input[name=max_seq_length]", "32")
    page.fill("input[name=batch_size]", "4")
    page.fill("input[name=epochs]", "1")
    page.fill("input[name=learning_rate]", "0.001")
    if os.environ.get("SHOT_DIR"):  # for looking at the page by hand
        page.set_viewport_size({"width": 1400, "height": 900})
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/training-new.png", full_page=True)
    page.click("form.training-form button[type=submit]")
    page.wait_for_selector("[data-testid=job-status]:has-text('Succeeded')", timeout=120_000)
    run = TrainingRun.objects.get(project=project)
    assert run.outcome in ("improved", "not_improved")
    assert run.get_outcome_display() in page.locator("[data-testid=run-outcome]").inner_text()
    # the canvas can arrive (the finished run's page swapped in) before Chart.js has loaded: wait for both
    page.wait_for_function(
        "document.getElementById('job-metric-chart') && typeof Chart !== 'undefined'"
        " && Chart.getChart('job-metric-chart')"
    )
    names = page.evaluate("Chart.getChart('job-metric-chart').data.datasets.map(d => d.label)")
    points = page.evaluate("Chart.getChart('job-metric-chart').data.datasets.find(d => d.label === 'loss').data.length")
    assert "loss" in names and "dev_ndcg@10" in names and points >= 1
    assert page.evaluate("document.getElementById('job-metric-chart').width") > 0
    if os.environ.get("SHOT_DIR"):
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/training-run.png", full_page=True)
        page.goto(f"{live_server.url}/p/{project.slug}/training/")
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/training-list.png", full_page=True)
    assert errors == []


def test_a_reranker_run_measures_its_speed_and_saves_a_configuration_at_the_depth_that_fits(
    page, live_server, scifact_dir, tiny_encoder_path, tiny_cross_encoder_path, eager_celery
) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, encoder, _ = make_indexed_project(scifact_dir, tiny_encoder_path)
    trained = ModelVersion.objects.create(
        project=project, name="ce-trained", kind="cross_encoder", source="trained", path=str(tiny_cross_encoder_path),
        usable_for_search=True, created_by=lead,
    )  # fmt: skip
    snapshot = make_snapshot(project, corpus)
    run = TrainingRun.objects.create(
        project=project, name="rerank run", snapshot=snapshot, kind="cross_encoder", base=encoder,
        first_stage=encoder, outcome="improved", model_version=trained,
        job=Job.objects.create(project=project, kind="training_run", title="t", status="succeeded"),
    )  # fmt: skip
    login(page, live_server, "lead", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/training/{run.pk}/")
    step = page.locator("[data-testid=rerank-budget]")
    assert "without a measurement the configuration reranks the top 50" in step.inner_text()
    step.get_by_role("button", name="Measure its speed on this CPU").click()  # the job runs in-process here
    page.wait_for_url(f"{live_server.url}/p/{project.slug}/training/{run.pk}/")
    trained.refresh_from_db()
    assert trained.backend_report, Job.objects.filter(kind="backend_measure").values_list("message", flat=True)
    text = page.locator("[data-testid=rerank-budget]").inner_text()
    depth = int(text.split("the top ", 1)[1].split(" ", 1)[0])
    assert "within the 500 ms rerank budget" in text and 5 <= depth <= 50
    if os.environ.get("SHOT_DIR"):
        page.set_viewport_size({"width": 1400, "height": 900})
        page.screenshot(path=f"{os.environ['SHOT_DIR']}/training-run-rerank-budget.png", full_page=True)
    page.get_by_role("button", name="Save a search configuration with it").click()
    page.wait_for_load_state()
    assert f"reranking the top {depth}." in page.locator(".messages").inner_text()
    run.refresh_from_db()
    assert run.configuration.rerank_top_n == depth and run.configuration.reranker_id == trained.pk
