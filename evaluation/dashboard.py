"""The project dashboard's evaluation stage (replaces the core's placeholder; registered in ``apps.ready``)."""

from __future__ import annotations

from django.urls import reverse

from evaluation.models import EvalRun
from evaluation.selectors import HEADLINE_METRIC
from workbench.dashboard import LEAD, Action, Stage, dashboard_stage
from workbench.models import IndexVersion, Judgment, Project
from workbench.roles import Capability, role_allows


@dashboard_stage("evaluation", order=70)
def evaluation_stage(project: Project, role: str | None) -> Stage:
    runs = EvalRun.objects.filter(project=project).only("id", "name", "report", "created_at", "query_set")
    latest = runs.first()
    n = runs.count()
    ready = IndexVersion.objects.filter(project=project).exists() and Judgment.objects.filter(project=project).exists()
    state = "done" if latest else ("todo" if ready else "waiting")
    stage = Stage("evaluation", "Evaluations", state)
    list_url = reverse("evaluation:list", kwargs={"slug": project.slug})
    if latest is not None:
        stage.lines.append(f"{n:,} evaluation{'s' if n != 1 else ''}; latest #{latest.pk} on {latest.query_set}")
        report = latest.report or {}
        baseline = report.get("baseline")
        value = report.get("configs", {}).get(baseline, {}).get("slices", {}).get("all", {}).get("means", {})
        if baseline and value.get(HEADLINE_METRIC) is not None:
            stage.lines.append(f"{HEADLINE_METRIC} {value[HEADLINE_METRIC]:.3f} for the baseline, {baseline}")
        elif not report:
            stage.lines.append("The latest one is still running.")
        detail = reverse("evaluation:detail", kwargs={"slug": project.slug, "pk": latest.pk})
        stage.link = Action(f"Open evaluation #{latest.pk}", detail, False)
    else:
        stage.lines.append("No evaluation yet." if ready else "An evaluation needs an index and judged queries.")
        if ready:
            stage.link = Action("Evaluations", list_url, False)
    if role_allows(role, Capability.RUN_JOBS) and ready:
        stage.actions.append(
            Action("Run an evaluation", reverse("evaluation:new", kwargs={"slug": project.slug}), primary=not latest)
        )
    elif state == "todo":
        stage.hint = LEAD
    return stage
