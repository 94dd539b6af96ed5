"""Labeling pages: campaigns, the keyboard-first judging screen, progress and agreement, adjudication, snapshots,
hard-negative mining and audit. Thin: parse, check the role (``project_view``), call a selector or a service, render.
Every form posts plainly and also through htmx (the judging screen swaps only its pane)."""

from __future__ import annotations

import json
import time
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from labeling import selectors
from labeling.forms import (
    AdjudicateForm,
    AutojudgeForm,
    CampaignForm,
    CrossEncoderJudgeForm,
    GuidelineForm,
    MiningForm,
    ReassignForm,
    SnapshotForm,
)
from labeling.models import Adjudication, Assignment, AuditItem, AuditVerdict, Campaign, PoolItem
from labeling.services import adjudication, autojudge, campaigns, mining
from labeling.services.snapshots import snapshot_freeze
from workbench.access import project_view
from workbench.errors import WorkbenchError
from workbench.models import Project
from workbench.roles import Capability


def _campaign(project: Project, pk: int) -> Campaign:
    campaign = selectors.campaign_get(project, pk)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# --- campaigns ------------------------------------------------------------------------------------------------------


@project_view(Capability.VIEW)
def campaign_list(request: HttpRequest, project: Project) -> HttpResponse:
    rows = []
    for c in selectors.campaigns_for_project(project):
        rows.append({"campaign": c, "mine": selectors.my_progress(c, request.user)})
    return render(request, "labeling/campaigns.html", {"project": project, "rows": rows})


def _campaign_initial(request: HttpRequest) -> dict[str, Any]:
    """A new campaign prefilled from links elsewhere ("Send to judging" on a query or an evaluation's drill-down):
    ``?query_ids=a,b&configurations=3&configurations=5&depth=10``. Only initial values: the form checks them."""
    initial: dict[str, Any] = {}
    if ids := request.GET.get("query_ids", "")[:20000]:
        initial["query_ids"] = ids
    configurations = [c for c in request.GET.getlist("configurations") if c.isdigit()]
    if configurations:
        initial["configurations"] = configurations
    if (depth := request.GET.get("depth", "")).isdigit():
        initial["depth"] = max(1, min(1000, int(depth)))
    return initial


@project_view(Capability.RUN_JOBS)
def campaign_new(request: HttpRequest, project: Project) -> HttpResponse:
    form = CampaignForm(request.POST or None, project=project, initial=_campaign_initial(request))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            campaign = campaigns.campaign_create(
                project=project,
                corpus=d["corpus"],
                name=d["name"],
                user=request.user,
                configurations=list(d["configurations"]),
                tag=d["tag"],
                query_ids=form.query_id_list(),
                depth=d["depth"],
                overlap=d["overlap"],
                blind=d["blind"],
                aggregation=d["aggregation"],
                disagreement_threshold=d["disagreement_threshold"],
                order=d["order"],
                boundary_model=d["boundary_model"],
                boundary=d["boundary"] if d["boundary"] is not None else 0.5,
                guidelines=d["guidelines"],
                annotators=list(d["annotators"]) or None,
                log_queries=form.log_query_list(),
            )
            if request.POST.get("build"):
                campaigns.campaign_pool_start(campaign=campaign, user=request.user)
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Campaign {campaign.name} created.")
            return redirect("labeling:campaign", slug=project.slug, pk=campaign.pk)
    return render(request, "labeling/campaign_new.html", {"project": project, "form": form})


@project_view(Capability.VIEW)
def campaign_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    guideline = campaigns.guideline_current(campaign)
    return render(
        request,
        "labeling/campaign.html",
        {
            "project": project,
            "campaign": campaign,
            "guideline": guideline,
            "versions": campaign.guidelines.all(),
            "progress": selectors.campaign_progress(campaign),
            "mine": selectors.my_progress(campaign, request.user),
            "queue_size": len(selectors.adjudication_queue(campaign)),
            "guideline_form": GuidelineForm(initial={"text": guideline.text if guideline else ""}),
            "autojudge_form": AutojudgeForm(),
            "cross_judge_form": CrossEncoderJudgeForm(project=project),
            "configurations": campaign.configurations.all(),
            "reassign_form": ReassignForm(campaign=campaign),
        },
    )


@require_POST
@project_view(Capability.RUN_JOBS)
def campaign_reassign(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    form = ReassignForm(request.POST, campaign=campaign)
    if not form.is_valid():
        messages.error(request, "Reassign: pick an annotator with unjudged pairs and a judge to give them to.")
        return redirect("labeling:campaign", slug=project.slug, pk=pk)
    d = form.cleaned_data
    try:
        result = campaigns.assignments_reassign_remaining(
            campaign=campaign, from_user=d["from_user"], to_user=d["to_user"]
        )
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        kept = f"; {result['kept_overlap']} stay (they already have those pairs)" if result["kept_overlap"] else ""
        messages.success(
            request, f"{result['moved']} unjudged pairs of {d['from_user']} now go to {d['to_user']}{kept}."
        )
    return redirect("labeling:campaign", slug=project.slug, pk=pk)


@require_POST
@project_view(Capability.RUN_JOBS)
def campaign_pool(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    try:
        job = campaigns.campaign_pool_start(campaign=campaign, user=request.user)
        messages.success(request, f"Building the pool as job #{job.pk}.")
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    return redirect("labeling:campaign", slug=project.slug, pk=pk)


@require_POST
@project_view(Capability.RUN_JOBS)
def campaign_guidelines(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    form = GuidelineForm(request.POST)
    if form.is_valid():
        version = campaigns.guideline_publish(campaign=campaign, text=form.cleaned_data["text"], user=request.user)
        messages.success(request, f"Guidelines are at version {version.number}.")
    return redirect("labeling:campaign", slug=project.slug, pk=pk)


@require_POST
@project_view(Capability.RUN_JOBS)
def campaign_aggregate(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    result = adjudication.campaign_aggregate(campaign=campaign, user=request.user)
    messages.success(
        request,
        f"Aggregation rule applied: {result['written']} gold grades written, {result['waiting']} pairs still being "
        f"judged, {result['disputed']} disputed pairs await an adjudicator.",
    )
    return redirect("labeling:campaign", slug=project.slug, pk=pk)


@require_POST
@project_view(Capability.RUN_JOBS)
def campaign_status(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    try:
        campaigns.campaign_close(campaign=campaign, reopen=request.POST.get("reopen") == "1")
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    return redirect("labeling:campaign", slug=project.slug, pk=pk)


@require_POST
@project_view(Capability.RUN_JOBS)
def campaign_autojudge(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    if request.POST.get("kind") == "cross_encoder":
        cross = CrossEncoderJudgeForm(request.POST, project=project)
        if not cross.is_valid():
            messages.error(request, "Automatic judge: pick a trained cross-encoder of this project.")
            return redirect("labeling:campaign", slug=project.slug, pk=pk)
        try:
            job = autojudge.autojudge_cross_encoder_start(
                campaign=campaign, user=request.user, model=cross.cleaned_data["cross_encoder"],
                limit=cross.cleaned_data["limit"],
            )  # fmt: skip
            messages.success(request, f"Automatic judge started as job #{job.pk}; its grades never become gold.")
        except WorkbenchError as exc:
            messages.error(request, str(exc))
        return redirect("labeling:campaign", slug=project.slug, pk=pk)
    form = AutojudgeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Automatic judge: " + "; ".join(e for errs in form.errors.values() for e in errs))
        return redirect("labeling:campaign", slug=project.slug, pk=pk)
    try:
        job = autojudge.autojudge_start(campaign=campaign, user=request.user, **form.cleaned_data)
        messages.success(request, f"Automatic judge started as job #{job.pk}; its grades never become gold.")
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    return redirect("labeling:campaign", slug=project.slug, pk=pk)


@project_view(Capability.VIEW)
def campaign_agreement(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    slices = selectors.campaign_slices(campaign)
    tag = request.GET.get("tag", "")
    if tag and tag not in slices:
        tag = ""
    return render(
        request,
        "labeling/agreement.html",
        {
            "project": project,
            "campaign": campaign,
            "slices": slices,
            "tag": tag,
            "figures": selectors.campaign_agreement(campaign, tag=tag),
        },
    )


# --- judging --------------------------------------------------------------------------------------------------------


def _pane_context(request: HttpRequest, project: Project, campaign: Campaign, a: Assignment | None, **extra: Any):
    """What the judging pane shows. Progress comes with ``a`` when it was read by ``assignment_next``; j/k links
    name the current pair and a direction, resolved only when pressed (``judge``), not on every save."""
    progress = getattr(a, "progress", None) or selectors.my_progress(campaign, request.user)
    ctx: dict[str, Any] = {
        "project": project,
        "campaign": campaign,
        "a": a,
        "mine": progress,
        "grades": project.grades,
        "shown_at": f"{time.time():.3f}",
        **extra,
    }
    if a is not None:
        ctx.update(
            others=selectors.others_grades(a),
            evidence_json=json.dumps(a.judgment.evidence if a.judgment else []),
        )
    return ctx


def _own_assignment(campaign: Campaign, user: Any, pk: Any) -> Assignment | None:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    return selectors.my_assignments(campaign, user).filter(pk=pk).first()


def _query_url(project: Project, campaign: Campaign, query_id: int, assignment_id: int) -> str:
    url = reverse("labeling:judge_query", kwargs={"slug": project.slug, "pk": campaign.pk, "query_pk": query_id})
    return f"{url}#a{assignment_id}"


def _render_pane(request: HttpRequest, ctx: dict) -> HttpResponse:
    template = "labeling/_judge_pane.html" if request.htmx else "labeling/judge.html"
    if not request.htmx:
        guideline = campaigns.guideline_current(ctx["campaign"])
        ctx["guideline"] = guideline
    return render(request, template, ctx)


@project_view(Capability.JUDGE)
def judge(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    """The annotator's screen: the pair ``?a=<id>`` of their own (``&step=next|prev``: the one after or before it,
    judged or not), else their next unjudged pair."""
    campaign = _campaign(project, pk)
    a, notice = None, ""
    if request.GET.get("a"):
        a = _own_assignment(campaign, request.user, request.GET["a"])
        if a is None:
            raise Http404("Not one of your pairs")
        step = request.GET.get("step")
        if step in ("next", "prev"):
            other = selectors.assignment_step(a, request.user, forward=step == "next")
            if other is None:
                notice = "This is your last pair." if step == "next" else "This is your first pair."
            a = other or a
    else:
        a = selectors.assignment_next(campaign, request.user)
    undo = _own_assignment(campaign, request.user, request.GET.get("undo")) if request.GET.get("undo") else None
    return _render_pane(request, _pane_context(request, project, campaign, a, undo=undo, notice=notice))


@project_view(Capability.JUDGE)
def judge_query(request: HttpRequest, project: Project, pk: int, query_pk: int) -> HttpResponse:
    """The other mode of the judging screen: one query with all of the user's pooled documents for it."""
    campaign = _campaign(project, pk)
    assignments = list(selectors.my_assignments(campaign, request.user).filter(item__query_id=query_pk))
    if not assignments:
        raise Http404("None of your pairs has this query")
    return render(
        request,
        "labeling/judge_query.html",
        {
            "project": project,
            "campaign": campaign,
            "query": assignments[0].item.query,
            "assignments": assignments,
            "grades": project.grades,
            "mine": selectors.my_progress(campaign, request.user),
            "shown_at": f"{time.time():.3f}",
            "guideline": campaigns.guideline_current(campaign),
        },
    )


@require_POST
@project_view(Capability.JUDGE)
def judge_submit(request: HttpRequest, project: Project, pk: int, assignment_pk: int) -> HttpResponse:
    """Save a grade and answer with the next pair: the first unjudged one after this pair in the annotator's order
    (so a revision from the list carries on from there), else their first unjudged one."""
    campaign = _campaign(project, pk)
    data = request.POST
    cant = data.get("cant_judge") in ("1", "on", "true") or data.get("cant") == "1"
    try:
        evidence = json.loads(data.get("evidence") or "[]")
        if not isinstance(evidence, list):
            raise ValueError
    except ValueError:
        evidence = []
        for part in (data.get("evidence") or "").replace(",", " ").split():  # no-JS form: "12-40 55-70"
            start, _, end = part.partition("-")
            evidence.append([start, end])
    seconds = _float(data.get("seconds"))
    if seconds is None and (shown := _float(data.get("shown_at"))) is not None:
        seconds = max(0.0, time.time() - shown)
    grade = None if cant else _float(data.get("grade"))
    try:
        judgment = campaigns.judgment_submit(
            assignment_id=assignment_pk,
            user=request.user,
            grade=None if grade is None else int(grade),
            evidence=evidence,
            cant_judge=cant,
            explanation=(data.get("reason") if cant else data.get("explanation")) or "",
            seconds=seconds,
            campaign_id=campaign.pk,
        )
    except WorkbenchError as exc:
        a = _own_assignment(campaign, request.user, assignment_pk)
        if data.get("back") == "query" and a is not None:
            messages.error(request, str(exc))
            return redirect(_query_url(project, campaign, a.item.query_id, a.pk))
        if not request.htmx:
            messages.error(request, str(exc))
            url = reverse("labeling:judge", kwargs={"slug": project.slug, "pk": pk})
            return redirect(f"{url}?a={a.pk}" if a else url)
        return render(
            request, "labeling/_judge_pane.html", _pane_context(request, project, campaign, a, error=str(exc))
        )
    done = judgment.assignment  # the row the service locked, with this judgment
    if data.get("back") == "query":
        return redirect(_query_url(project, campaign, judgment.query_id, done.pk))
    nxt = selectors.assignment_next(campaign, request.user, after=done)
    if not request.htmx:
        url = reverse("labeling:judge", kwargs={"slug": project.slug, "pk": pk})
        return redirect(f"{url}?undo={done.pk}" + (f"&a={nxt.pk}" if nxt else ""))
    return render(request, "labeling/_judge_pane.html", _pane_context(request, project, campaign, nxt, undo=done))


@require_POST
@project_view(Capability.JUDGE)
def judge_undo(request: HttpRequest, project: Project, pk: int, assignment_pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    try:
        a = campaigns.judgment_undo(assignment_id=assignment_pk, user=request.user)
    except WorkbenchError as exc:
        if not request.htmx:
            messages.error(request, str(exc))
            return redirect("labeling:judge", slug=project.slug, pk=pk)
        nxt = selectors.assignment_next(campaign, request.user)
        return render(
            request, "labeling/_judge_pane.html", _pane_context(request, project, campaign, nxt, error=str(exc))
        )
    a = _own_assignment(campaign, request.user, a.pk)
    if not request.htmx:
        messages.success(request, "Judgment taken back.")
        url = reverse("labeling:judge", kwargs={"slug": project.slug, "pk": pk})
        return redirect(f"{url}?a={a.pk}")
    return render(request, "labeling/_judge_pane.html", _pane_context(request, project, campaign, a, notice="Undone."))


@project_view(Capability.JUDGE)
def my_judgments(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    return render(
        request,
        "labeling/my_judgments.html",
        {
            "project": project,
            "campaign": campaign,
            "assignments": selectors.my_assignments(campaign, request.user)[:2000],
            "mine": selectors.my_progress(campaign, request.user),
        },
    )


# --- adjudication ---------------------------------------------------------------------------------------------------


@project_view(Capability.REVIEW)
def adjudicate_queue(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    return render(
        request,
        "labeling/adjudicate_queue.html",
        {"project": project, "campaign": campaign, "queue": selectors.adjudication_queue(campaign)},
    )


@project_view(Capability.REVIEW)
def adjudicate_item(request: HttpRequest, project: Project, pk: int, item_pk: int) -> HttpResponse:
    campaign = _campaign(project, pk)
    item = PoolItem.objects.filter(campaign=campaign, pk=item_pk).select_related("query", "document").first()
    if item is None:
        raise Http404("No such pair")
    form = AdjudicateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            adjudication.adjudication_set(
                item=item, user=request.user, grade=form.cleaned_data["grade"], note=form.cleaned_data["note"]
            )
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Gold grade {form.cleaned_data['grade']} set.")
            return redirect("labeling:adjudicate", slug=project.slug, pk=pk)
    current = Adjudication.objects.filter(item=item).select_related("adjudicator").first()
    judgments = selectors.item_judgments(item)
    for j in judgments:
        j.span_texts = [item.document.text[s:e] for s, e in j.evidence]  # type: ignore[attr-defined]
    return render(
        request,
        "labeling/adjudicate_item.html",
        {
            "project": project,
            "campaign": campaign,
            "item": item,
            "judgments": judgments,
            "auto": list(item.auto_grades.all()),
            "current": current,
            "form": form,
            "grades": project.grades,
        },
    )


# --- snapshots ------------------------------------------------------------------------------------------------------


@project_view(Capability.VIEW)
def snapshot_list(request: HttpRequest, project: Project) -> HttpResponse:
    return render(
        request, "labeling/snapshots.html", {"project": project, "snapshots": selectors.snapshots_for_project(project)}
    )


@project_view(Capability.RUN_JOBS)
def snapshot_new(request: HttpRequest, project: Project) -> HttpResponse:
    form = SnapshotForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            snapshot = snapshot_freeze(
                project=project,
                corpus=d["corpus"],
                name=d["name"],
                user=request.user,
                source=d["source"],
                dev_fraction=d["dev_fraction"],
                seed=d["seed"],
                audited=d["audited"],
            )
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Snapshot {snapshot.name} frozen ({snapshot.content_hash[:12]}).")
            return redirect("labeling:snapshot", slug=project.slug, pk=snapshot.pk)
    return render(request, "labeling/snapshot_new.html", {"project": project, "form": form})


@project_view(Capability.VIEW)
def snapshot_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    snapshot = selectors.snapshot_get(project, pk)
    if snapshot is None:
        raise Http404("No such snapshot")
    grades = sorted({g for s in snapshot.stats.values() for g in s.get("grades", {})}, key=int)
    return render(
        request,
        "labeling/snapshot.html",
        {"project": project, "snapshot": snapshot, "grades": grades, "splits": ["train", "dev", "test"]},
    )


@project_view(Capability.VIEW)
def snapshot_export(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    snapshot = selectors.snapshot_get(project, pk)
    if snapshot is None:
        raise Http404("No such snapshot")
    fmt = "beir" if request.GET.get("format") == "beir" else "trec"
    split = request.GET.get("split", "")
    if split not in ("", "train", "dev", "test"):
        split = ""
    name = f"{project.slug}-{snapshot.pk}{'-' + split if split else ''}.{'tsv' if fmt == 'beir' else 'qrels'}"
    response = StreamingHttpResponse(
        selectors.snapshot_qrels_lines(snapshot, fmt=fmt, split=split), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- hard-negative mining and audit ---------------------------------------------------------------------------------


@project_view(Capability.VIEW)
def mining_page(request: HttpRequest, project: Project) -> HttpResponse:
    return render(
        request,
        "labeling/mining.html",
        {"project": project, "yields": selectors.audit_yield(project), "left": selectors.audit_next(project)},
    )


@project_view(Capability.RUN_JOBS)
def mining_new(request: HttpRequest, project: Project) -> HttpResponse:
    form = MiningForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            run = mining.mining_start(project=project, user=request.user, **d)
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Mining started as job #{run.job_id}.")
            return redirect("labeling:mining", slug=project.slug)
    return render(request, "labeling/mining_new.html", {"project": project, "form": form})


def _audit_context(request: HttpRequest, project: Project, item: AuditItem | None, **extra: Any) -> dict:
    return {
        "project": project,
        "item": item,
        "grades": [(g, label) for g, label in project.grades if g >= project.relevance_threshold],
        "shown_at": f"{time.time():.3f}",
        "audited": AuditVerdict.objects.filter(item__run__project=project).count(),
        "left": AuditItem.objects.filter(run__project=project, verdict__isnull=True).count(),
        **extra,
    }


@project_view(Capability.JUDGE)
def audit(request: HttpRequest, project: Project) -> HttpResponse:
    item = None
    if request.GET.get("item"):
        item = AuditItem.objects.filter(run__project=project, pk=_float(request.GET["item"]) or 0).first()
    item = item or selectors.audit_next(project)
    template = "labeling/_audit_pane.html" if request.htmx else "labeling/audit.html"
    return render(request, template, _audit_context(request, project, item))


@require_POST
@project_view(Capability.JUDGE)
def audit_submit(request: HttpRequest, project: Project, item_pk: int) -> HttpResponse:
    item = AuditItem.objects.filter(run__project=project, pk=item_pk).select_related("run__project").first()
    if item is None:
        raise Http404("No such candidate")
    seconds = _float(request.POST.get("seconds"))
    if seconds is None and (shown := _float(request.POST.get("shown_at"))) is not None:
        seconds = max(0.0, time.time() - shown)
    grade = _float(request.POST.get("grade"))
    error = None
    try:
        mining.audit_verdict_record(
            item=item,
            user=request.user,
            verdict=request.POST.get("verdict", ""),
            grade=None if grade is None else int(grade),
            seconds=seconds,
        )
    except WorkbenchError as exc:
        error = str(exc)
    nxt = item if error and "Someone else" not in error else selectors.audit_next(project)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(reverse("labeling:audit", kwargs={"slug": project.slug}) + (f"?item={nxt.pk}" if nxt else ""))
    return render(request, "labeling/_audit_pane.html", _audit_context(request, project, nxt, error=error))
