"""Release pages. Thin: parse, check the role (``project_view``), call a service or a selector, render."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from releases import selectors
from releases.forms import ApproveForm, GatePolicyForm, ProposeForm, TrafficForm
from releases.models import GatePolicy, Release
from releases.services import lifecycle, monitor
from workbench.access import project_view
from workbench.errors import WorkbenchError
from workbench.models import Project
from workbench.roles import Capability, role_allows


def _release(project: Project, number: int) -> Release:
    return get_object_or_404(selectors.releases_for(project), number=number)


@project_view(Capability.VIEW)
def release_list(request: HttpRequest, project: Project) -> HttpResponse:
    active = selectors.active_release(project)
    return render(
        request,
        "releases/list.html",
        {
            "project": project,
            "releases": selectors.releases_for(project),
            "active": active,
            "rollback": lifecycle.rollback_target(project),
            "can_manage": role_allows(request.role, Capability.RUN_JOBS),  # type: ignore[attr-defined]
        },
    )


@project_view(Capability.RUN_JOBS)
def release_new(request: HttpRequest, project: Project) -> HttpResponse:
    form = ProposeForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            release = lifecycle.release_propose(
                project=project, configuration=data["configuration"], eval_runs=list(data["eval_runs"]),
                user=request.user, name=data["name"], notes=data["notes"], golden_tag=data["golden_tag"],
                answer_runs=list(data["answer_runs"]),
            )  # fmt: skip
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Proposed {release}; its gates are below.")
            return redirect("releases:detail", slug=project.slug, number=release.number)
    return render(request, "releases/new.html", {"project": project, "form": form})


@project_view(Capability.VIEW)
def release_detail(request: HttpRequest, project: Project, number: int) -> HttpResponse:
    release = _release(project, number)
    active = selectors.active_release(project)
    since = release.activated_at or (timezone.now() - timedelta(days=7))
    return render(
        request,
        "releases/detail.html",
        {
            "project": project,
            "release": release,
            "active": active,
            "blocking": [g for g in release.gates if g["status"] in ("failed", "not computable")],
            "approve_form": ApproveForm(),
            "serving": getattr(project, "serving", None),
            "arms": selectors.arm_stats(project, since=since),
            "drift": monitor.drift_report(release) if release.activated_at else None,
            "drift_series": monitor.drift_series(release) if release.activated_at else None,
            "alerts": release.alerts.all()[:20],
            "events": release.events.select_related("actor")[:50],
            "evaluations": release.eval_runs.all(),
            "can_manage": role_allows(request.role, Capability.RUN_JOBS),  # type: ignore[attr-defined]
        },
    )


def _act(request: HttpRequest, project: Project, number: int, action) -> HttpResponse:  # type: ignore[no-untyped-def]
    release = _release(project, number)
    try:
        message = action(release)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, message)
    return redirect("releases:detail", slug=project.slug, number=number)


def _expected(request: HttpRequest) -> int | None:
    raw = request.POST.get("expected_active", "")
    return int(raw) if raw.isdigit() else None


@require_POST
@project_view(Capability.RUN_JOBS)
def release_approve(request: HttpRequest, project: Project, number: int) -> HttpResponse:
    def act(release: Release) -> str:
        lifecycle.release_approve(release=release, user=request.user, reason=request.POST.get("reason", ""))
        return f"Approved {release}."

    return _act(request, project, number, act)


@require_POST
@project_view(Capability.RUN_JOBS)
def release_reject(request: HttpRequest, project: Project, number: int) -> HttpResponse:
    def act(release: Release) -> str:
        lifecycle.release_reject(release=release, user=request.user, reason=request.POST.get("reason", ""))
        return f"Rejected {release}."

    return _act(request, project, number, act)


@require_POST
@project_view(Capability.RUN_JOBS)
def release_activate(request: HttpRequest, project: Project, number: int) -> HttpResponse:
    def act(release: Release) -> str:
        action = "rolled back" if release.status == Release.Status.RETIRED else "activated"
        lifecycle.release_activate(
            release=release, user=request.user, expected_active=_expected(request), action=action,
            reason=request.POST.get("reason", ""),
        )  # fmt: skip
        return f"{release} is live: the search page and the API answer with it now."

    return _act(request, project, number, act)


@require_POST
@project_view(Capability.RUN_JOBS)
def release_rollback(request: HttpRequest, project: Project) -> HttpResponse:
    try:
        current = selectors.active_release(project)
        if (current.pk if current else None) != _expected(request):
            raise WorkbenchError("Someone switched releases meanwhile; nothing was changed. Reload.")
        target = lifecycle.release_rollback(project=project, user=request.user, reason=request.POST.get("reason", ""))
    except WorkbenchError as exc:
        messages.error(request, str(exc))
        return redirect("releases:list", slug=project.slug)
    messages.success(request, f"Rolled back: {target} is live again.")
    return redirect("releases:detail", slug=project.slug, number=target.number)


@require_POST
@project_view(Capability.RUN_JOBS)
def release_traffic(request: HttpRequest, project: Project, number: int) -> HttpResponse:
    form = TrafficForm(request.POST)

    def act(release: Release) -> str:
        if not form.is_valid():
            raise WorkbenchError("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        share, shadow = form.cleaned_data["canary_share"], form.cleaned_data["shadow"]
        lifecycle.release_traffic_set(release=release, user=request.user, canary_share=share, shadow=shadow)
        return f"{release}: canary {share} %, shadow {'on' if shadow else 'off'}."

    return _act(request, project, number, act)


@require_POST
@project_view(Capability.RUN_JOBS)
def release_auto_rollback(request: HttpRequest, project: Project, number: int) -> HttpResponse:
    def act(release: Release) -> str:
        enabled = request.POST.get("enabled") == "on"
        lifecycle.release_auto_rollback_set(release=release, user=request.user, enabled=enabled)
        return f"Automatic rollback {'on' if enabled else 'off'} for {release}."

    return _act(request, project, number, act)


@require_POST
@project_view(Capability.RUN_JOBS)
def release_gates(request: HttpRequest, project: Project, number: int) -> HttpResponse:
    def act(release: Release) -> str:
        lifecycle.release_gates_refresh(release=release, user=request.user)
        return "Gates evaluated again on the release's reports."

    return _act(request, project, number, act)


@project_view(Capability.RUN_JOBS)
def gate_policy(request: HttpRequest, project: Project) -> HttpResponse:
    policy = GatePolicy.objects.filter(project=project).first() or GatePolicy(project=project)
    form = GatePolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        lifecycle.gate_policy_save(policy=form.save(commit=False), user=request.user)
        messages.success(request, "Gate policy saved; proposed releases show it when their gates are re-evaluated.")
        return redirect("releases:list", slug=project.slug)
    return render(request, "releases/policy.html", {"project": project, "form": form})


@project_view(Capability.VIEW)
def audit_log(request: HttpRequest, project: Project) -> HttpResponse:
    filters = {k: request.GET.get(k, "") for k in selectors.AUDIT_FILTERS}
    events = selectors.audit_events(project, filters)
    fmt = request.GET.get("format")
    rows = [
        {
            "at": e.created_at.isoformat(),
            "action": e.action,
            "release": e.release.number if e.release else None,
            "actor": e.actor.get_username() if e.actor else "system",
            "detail": e.detail,
        }
        for e in events[:5000]
    ] if fmt in ("csv", "json") else []  # fmt: skip
    if fmt == "json":
        return JsonResponse({"events": rows})
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["at", "action", "release", "actor", "detail"])
        for row in rows:
            writer.writerow([row["at"], row["action"], row["release"], row["actor"], json.dumps(row["detail"])])
        response = HttpResponse(out.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{project.slug}-release-audit.csv"'
        return response
    return render(
        request,
        "releases/audit.html",
        {"project": project, "events": events[:500], "filters": filters, "actions": selectors.audit_actions(project)},
    )
