"""The project dashboard's training stage (replaces the core's placeholder; registered in ``apps.ready``)."""

from __future__ import annotations

from django.urls import reverse

from training.models import TrainingRun
from workbench.dashboard import LEAD, Action, Stage, dashboard_stage
from workbench.models import Judgment, Project
from workbench.roles import Capability, role_allows


# Next-step priority after judging: training turns labels into a better retriever.
@dashboard_stage("training", order=40, priority=90)
def training_stage(project: Project, role: str | None) -> Stage:
    runs = TrainingRun.objects.filter(project=project)
    n = runs.count()
    ready = Judgment.objects.filter(project=project).exists()
    state = "done" if n else ("todo" if ready else "waiting")
    stage = Stage("training", "Training", state)
    url = reverse("training:list", kwargs={"slug": project.slug})
    if n:
        improved = runs.filter(outcome=TrainingRun.Outcome.IMPROVED).count()
        stage.lines.append(f"{n} training run{'s' if n != 1 else ''}; {improved} beat their base on dev.")
        stage.link = Action("Training runs", url, False)
    else:
        stage.lines.append("No training run yet." if ready else "Training needs judged queries (a label snapshot).")
    if role_allows(role, Capability.RUN_JOBS) and ready:
        stage.actions.append(
            Action("Start a training run", reverse("training:new", kwargs={"slug": project.slug}), primary=not n)
        )
    elif state == "todo":
        stage.hint = LEAD
    return stage
