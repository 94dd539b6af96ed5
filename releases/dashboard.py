"""The project dashboard's releases stage (replaces the core's placeholder; registered in ``apps.ready``)."""

from __future__ import annotations

from django.urls import reverse

from evaluation.models import EvalRun
from releases.models import Release
from workbench.dashboard import LEAD, Action, Stage, dashboard_stage
from workbench.models import Project
from workbench.roles import Capability, role_allows


@dashboard_stage("releases", order=80)
def releases_stage(project: Project, role: str | None) -> Stage:
    releases = Release.objects.filter(project=project)
    active = releases.filter(status=Release.Status.ACTIVE).select_related("configuration").first()
    proposed = releases.filter(status=Release.Status.PROPOSED).count()
    evaluated = EvalRun.objects.filter(project=project, finished_at__isnull=False).exists()
    state = "done" if active else ("todo" if evaluated else "waiting")
    stage = Stage("releases", "Releases", state)
    list_url = reverse("releases:list", kwargs={"slug": project.slug})
    if active is not None:
        stage.lines.append(f"Live: {active} ({active.configuration.name}).")
        stage.link = Action(f"Open release {active.number}", list_url, False)
    else:
        stage.lines.append("No release is live." if evaluated else "A release is judged by a finished evaluation.")
        if releases.exists():
            stage.link = Action("Releases", list_url, False)
    if proposed:
        stage.lines.append(f"{proposed} proposed, waiting for approval.")
    if role_allows(role, Capability.RUN_JOBS) and evaluated:
        stage.actions.append(
            Action("Propose a release", reverse("releases:new", kwargs={"slug": project.slug}), primary=not active)
        )
    elif state == "todo":
        stage.hint = LEAD
    return stage
