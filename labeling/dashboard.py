"""The project dashboard's judging stage (replaces the core's placeholder; registered in ``apps.ready``)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

from labeling.models import Assignment, Campaign, LabelSnapshot
from workbench.dashboard import LEAD, Action, Stage, dashboard_stage, query_action
from workbench.models import Project, Query, SearchConfiguration
from workbench.roles import Capability, role_allows


# Next-step priority after a first release: judging improves on a baseline that is live and measured.
@dashboard_stage("labeling", order=30, priority=85)
def labeling_stage(project: Project, role: str | None) -> Stage:
    campaigns = Campaign.objects.filter(project=project)
    n = campaigns.count()
    snapshots = LabelSnapshot.objects.filter(project=project).count()
    # A campaign pools from saved search configurations over the project's queries.
    ready = (
        Query.objects.filter(project=project).exists() and SearchConfiguration.objects.filter(project=project).exists()
    )
    state = "done" if n or snapshots else ("todo" if ready else "waiting")
    stage = Stage("labeling", "Judging", state)
    url = reverse("labeling:campaigns", kwargs={"slug": project.slug})
    if n:
        open_items = Assignment.objects.filter(campaign__project=project, judgment__isnull=True).count()
        stage.lines.append(f"{n} campaign{'s' if n != 1 else ''}; {open_items:,} assignments waiting for a grade.")
        stage.link = Action("Campaigns", url, False)
    else:
        stage.lines.append(
            "No judging campaign yet." if ready else "A campaign pools queries with saved search configurations."
        )
    if snapshots:
        stage.lines.append(f"{snapshots} frozen label snapshot{'s' if snapshots != 1 else ''}.")
    if role_allows(role, Capability.RUN_JOBS) and ready:
        new = reverse("labeling:campaign_new", kwargs={"slug": project.slug})
        stage.actions.append(Action("Create a judging campaign", new, primary=not n))
    elif role_allows(role, Capability.JUDGE) and n:
        stage.actions.append(Action("Judge", url, primary=False))
    elif state == "todo":
        stage.hint = LEAD
    return stage


@query_action("labeling")
def judging_action(project: Project, query: Query, role: str | None) -> Action | None:
    """On a query's page: an ML lead starts a campaign prefilled with it; a judge with pairs of it in an open campaign
    goes to them."""
    if role_allows(role, Capability.RUN_JOBS):
        url = reverse("labeling:campaign_new", kwargs={"slug": project.slug})
        return Action("Send to judging", f"{url}?{urlencode({'query_ids': query.external_id})}", primary=False)
    return None
