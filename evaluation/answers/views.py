"""Answer-run pages: list, start, results with figures per slice, one answer, the reviewer's queue, flags, compare.

Thin: parse, check the role (``project_view``), call a selector or a service, render. A GET never writes.
"""

from __future__ import annotations

import csv
import io
import time

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from evaluation.answers import selectors, services
from evaluation.answers.forms import AnswerRunForm, JudgeForm
from evaluation.metrics.citations import ALL_METRICS
from evaluation.models import Answer, AnswerClaim, AnswerFlag, AnswerRun, AutoSupport, RetrievedPassage
from workbench.access import project_view
from workbench.errors import WorkbenchError
from workbench.models import Project
from workbench.roles import Capability, role_allows

METRIC_LABELS = {
    "citation_recall": "Citation recall",
    "citation_precision": "Citation precision",
    "faithfulness": "Faithfulness",
    "hallucination": "Hallucination rate",
    "usefulness": "Usefulness (1–5)",
    "abstention_precision": "Abstention precision",
    "abstention_recall": "Abstention recall",
    "answer_rate": "Answer rate (answerable)",
}
PAGE = 50


def _run_or_404(project: Project, pk: int) -> AnswerRun:
    run = selectors.run_get(project, pk)
    if run is None:
        raise Http404("No such answer run")
    return run


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _rows(summary: dict | None) -> list[dict]:
    """Slice rows with one (mean, CI, n) cell per metric, for the figures table."""
    if not summary:
        return []
    rows = []
    for name, s in summary["slices"].items():
        rows.append({"slice": name, "s": s, "cells": [(m, s["metrics"].get(m)) for m in ALL_METRICS]})
    return rows


@project_view(Capability.VIEW)
def answers_list(request: HttpRequest, project: Project) -> HttpResponse:
    return render(
        request, "evaluation/answers_list.html", {"project": project, "runs": selectors.runs_for_project(project)}
    )


@project_view(Capability.RUN_JOBS)
def answers_new(request: HttpRequest, project: Project) -> HttpResponse:
    form = AnswerRunForm(request.POST if request.method == "POST" else None, project=project)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            run = services.answer_run_start(
                project=project, user=request.user, configuration=d["configuration"], tag=form.tag(),
                backend=d["backend"], backend_settings=form.backend_settings(), citation_policy=d["citation_policy"],
                abstain_threshold=d["abstain_threshold"], passages_k=d["passages_k"],
                review_overlap=d["review_overlap"], gold=d.get("gold") or "", name=d["name"],
            )  # fmt: skip
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Answer run started as job #{run.job_id}.")
            return redirect("evaluation:answers_detail", slug=project.slug, pk=run.pk)
    return render(request, "evaluation/answers_new.html", {"project": project, "form": form})


@project_view(Capability.VIEW)
def answers_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    if request.htmx and request.GET.get("status"):
        response = render(request, "evaluation/_answers_status.html", {"project": project, "run": run})
        if run.is_complete:
            response["HX-Refresh"] = "true"
        return response
    context: dict = {"project": project, "run": run, "metric_headers": [(m, METRIC_LABELS[m]) for m in ALL_METRICS]}
    if run.is_complete:
        status = request.GET.get("status_filter", "")
        answers = run.answers.select_related("query").order_by("position")
        if status in Answer.Status.values:
            answers = answers.filter(status=status)
        page = max(1, _int(request.GET.get("page"), 1))
        context.update(
            gold=run.summary.get("gold"),
            gold_rows=_rows(run.summary.get("gold")),
            human=(human := selectors.human_summary(run)),
            human_rows=_rows(human),
            agreement=selectors.review_agreement(run),
            judges=selectors.auto_judges(run),
            judge_form=JudgeForm(),
            latency=run.summary.get("latency", {}),
            answers=answers[(page - 1) * PAGE : page * PAGE],
            page=page,
            more=answers.count() > page * PAGE,
            status_filter=status,
            progress=selectors.review_progress(run, request.user),
            can_review=role_allows(request.role, Capability.REVIEW),
        )
    return render(request, "evaluation/answers_detail.html", context)


@project_view(Capability.VIEW)
def answers_answer(request: HttpRequest, project: Project, pk: int, answer_pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    answer = get_object_or_404(Answer.objects.select_related("query"), pk=answer_pk, run=run)
    context = {"project": project, "run": run, **selectors.answer_view(answer)}
    return render(request, "evaluation/answers_answer.html", context)


def _parse_review(request: HttpRequest, answer: Answer) -> dict:
    post = request.POST
    claims: dict[int, tuple[str, int | None]] = {}
    citations: dict[int, str] = {}
    for claim in answer.claims.prefetch_related("citations"):
        label = post.get(f"claim_{claim.pk}", "")
        by = _int(post.get(f"by_{claim.pk}"), 0) or None
        if label:
            claims[claim.pk] = (label, by)
        for c in claim.citations.all():
            verdict = post.get(f"cit_{c.pk}", "")
            if verdict:
                citations[c.pk] = verdict
    for name in ("hallucination", "should_abstain"):
        if post.get(name) not in ("yes", "no"):
            raise WorkbenchError(
                f"Answer {'hallucination' if name == 'hallucination' else 'should have abstained'}: yes or no."
            )
    seconds = post.get("seconds")
    try:
        secs = float(seconds) if seconds else max(0.0, time.time() - float(post.get("shown_at") or time.time()))
    except ValueError:
        secs = None
    return {
        "claims": claims, "citations": citations, "hallucination": post["hallucination"] == "yes",
        "should_have_abstained": post["should_abstain"] == "yes", "usefulness": _int(post.get("usefulness"), 0),
        "seconds": secs,
    }  # fmt: skip


@project_view(Capability.REVIEW)
def answers_review(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    """The reviewer's queue: the next answer to review (or ``?answer=`` to revisit one); POST saves and moves on."""
    run = _run_or_404(project, pk)
    if not run.is_complete:
        messages.error(request, "The run has not finished; its answers cannot be reviewed yet.")
        return redirect("evaluation:answers_detail", slug=project.slug, pk=run.pk)
    adjudicate = request.GET.get("adjudicate") == "1" or request.POST.get("adjudicate") == "1"
    can_adjudicate = role_allows(request.role, Capability.RUN_JOBS)
    wanted = _int(request.POST.get("answer") or request.GET.get("answer"), 0)
    answer = (
        get_object_or_404(Answer.objects.select_related("query"), pk=wanted, run=run)
        if wanted
        else selectors.review_next(run, request.user)
    )
    error = None
    if request.method == "POST" and answer is not None:
        try:
            if adjudicate and not can_adjudicate:
                raise WorkbenchError("Only ML leads and admins adjudicate.")
            services.answer_review_record(
                answer=answer, reviewer=request.user, adjudication=adjudicate, **_parse_review(request, answer)
            )
        except WorkbenchError as exc:
            error = str(exc)
        else:
            if not request.htmx:
                messages.success(request, f"Review of query {answer.query.external_id} saved.")
            return redirect(reverse("evaluation:answers_review", kwargs={"slug": project.slug, "pk": run.pk}))
    context = {
        "project": project, "run": run, "error": error, "shown_at": f"{time.time():.3f}",
        "progress": selectors.review_progress(run, request.user), "adjudicate": adjudicate and can_adjudicate,
    }  # fmt: skip
    if answer is not None:
        context.update(selectors.answer_view(answer, reviewer=request.user))
        context["posted"] = request.POST if error else None
    status = 400 if error and not request.htmx else 200  # htmx swaps only 2xx: the form shows the error
    return render(request, "evaluation/answers_review.html", context, status=status)


@project_view(Capability.REVIEW)
def answers_flag(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    """POST: send (query, cited passage) to a judging campaign or the hard-negative audit."""
    run = _run_or_404(project, pk)
    if request.method != "POST":
        return HttpResponse("POST a flag.", status=405, content_type="text/plain")
    answer = (
        Answer.objects.select_related("query", "run__project")
        .filter(pk=_int(request.POST.get("answer")), run=run)
        .first()
    )
    retrieved = RetrievedPassage.objects.filter(pk=_int(request.POST.get("retrieved")), answer=answer).first()
    if answer is None or retrieved is None:
        return HttpResponse("Name an answer of this run and one of its retrieved passages.", status=400)
    claim = AnswerClaim.objects.filter(pk=_int(request.POST.get("claim")), answer=answer).first()
    target = request.POST.get("target", "judging")
    try:
        flag, created = services.answer_flag_create(
            answer=answer, retrieved=retrieved, target=target, user=request.user, claim=claim,
            reason=request.POST.get("reason", "unsupported claim"),
        )  # fmt: skip
    except WorkbenchError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    verb = "Sent" if created else "Already sent"
    text = (
        f"{verb}: query {answer.query.external_id} × "
        f"document {flag.document.external_id} → {flag.get_target_display()}."
    )
    if request.htmx:
        return HttpResponse(f'<span class="flag-done" role="status">{_escape(text)}</span>')
    messages.success(request, text)
    target_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target_url, allowed_hosts={request.get_host()}, require_https=False):
        target_url = reverse("evaluation:answers_flags", kwargs={"slug": project.slug})
    return redirect(target_url)


def _escape(text: str) -> str:
    from django.utils.html import escape

    return escape(text)


@project_view(Capability.VIEW)
def answers_flags(request: HttpRequest, project: Project) -> HttpResponse:
    target = request.GET.get("target", "")
    target = target if target in AnswerFlag.Target.values else ""
    run_id = _int(request.GET.get("run"), 0) or None
    open_only = request.GET.get("open") == "1"
    rows = selectors.flags(project, target=target, run_id=run_id, open_only=open_only)
    fmt = request.GET.get("format", "")
    if fmt in ("csv", "beir"):
        buf = io.StringIO()
        if fmt == "csv":
            w = csv.writer(buf)
            w.writerow(
                [
                    "query_id",
                    "query",
                    "doc_id",
                    "passage_id",
                    "target",
                    "reason",
                    "answer_run",
                    "flagged_by",
                    "flagged_at",
                ]
            )
            for f in rows:
                by = f.created_by.username if f.created_by else ""
                w.writerow(
                    [f.query.external_id, f.query.text, f.document.external_id, f.passage_id or "", f.target,
                     f.reason, f.run_id, by, f.created_at.isoformat()]
                )  # fmt: skip
            name, ctype = "answer-flags.csv", "text/csv; charset=utf-8"
        else:  # BEIR qrels layout; score 0 = "to be judged", never a relevance grade
            buf.write("query-id\tcorpus-id\tscore\n")
            for f in rows:
                buf.write(f"{f.query.external_id}\t{f.document.external_id}\t0\n")
            name, ctype = "answer-flags-qrels.tsv", "text/tab-separated-values; charset=utf-8"
        response = HttpResponse(buf.getvalue(), content_type=ctype)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    context = {
        "project": project, "flags": rows[:500], "target": target, "run_id": run_id, "open_only": open_only,
        "runs": AnswerRun.objects.filter(project=project).only("id", "name"), "targets": AnswerFlag.Target.choices,
        "query": request.GET.urlencode(),
    }  # fmt: skip
    return render(request, "evaluation/answers_flags.html", context)


@project_view(Capability.RUN_JOBS)
def answers_judge(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    if request.method != "POST":
        return redirect("evaluation:answers_detail", slug=project.slug, pk=run.pk)
    form = JudgeForm(request.POST)
    if form.is_valid():
        try:
            job = services.auto_judge_start(run=run, user=request.user, **form.cleaned_data)
        except WorkbenchError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Automatic judge started as job #{job.pk}.")
    else:
        messages.error(request, "Choose a judge.")
    return redirect(reverse("evaluation:answers_detail", kwargs={"slug": project.slug, "pk": run.pk}) + "#judges")


@project_view(Capability.VIEW)
def answers_compare(request: HttpRequest, project: Project) -> HttpResponse:
    runs = list(AnswerRun.objects.filter(project=project, finished_at__isnull=False))
    by_pk = {r.pk: r for r in runs}
    a, b = by_pk.get(_int(request.GET.get("a"))), by_pk.get(_int(request.GET.get("b")))
    source = request.GET.get("source") if request.GET.get("source") in ("human", "auto") else "gold"
    judge = request.GET.get("judge", "")
    judges = sorted(set(AutoSupport.objects.filter(run__project=project).values_list("judge", flat=True)))
    context: dict = {
        "project": project,
        "runs": runs,
        "a": a,
        "b": b,
        "source": source,
        "judge": judge,
        "judges": judges,
    }
    if request.GET.get("a") or request.GET.get("b"):
        try:
            if a is None or b is None:
                raise WorkbenchError("Pick two finished answer runs.")
            comparison = selectors.comparison(a, b, source=source, judge=judge)
            for cell in comparison["cells"]:
                cell["label"] = METRIC_LABELS.get(cell["metric"], cell["metric"])
            context["comparison"] = comparison
        except WorkbenchError as exc:
            context["error"] = str(exc)
    return render(request, "evaluation/answers_compare.html", context)
