"""Core pages: projects, members, corpora, documents, queries, imports, exports and jobs. Thin: parse, check, call."""

from __future__ import annotations

import tempfile
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from workbench import selectors
from workbench.access import project_role, project_view
from workbench.dashboard import project_dashboard, query_actions
from workbench.errors import WorkbenchError
from workbench.forms import (
    CorpusForm,
    CorpusUploadForm,
    GradeScaleForm,
    MemberForm,
    ProjectForm,
    QrelsImportForm,
    QueriesImportForm,
)
from workbench.jobs import job_cancel, job_retry
from workbench.models import Corpus, Document, Job, Membership, Project, Query
from workbench.roles import Capability, role_allows
from workbench.services import projects
from workbench.services.exports import export_zip


def _can(request: HttpRequest, capability: Capability) -> bool:
    return role_allows(getattr(request, "role", None), capability)


def _error_context(request: HttpRequest, exception: Exception | None) -> dict[str, Any]:
    """What the styled error pages show: the exception's readable message and, for a member, the project's
    navigation (an outsider's 404 must not reveal that the project exists, so only members get it)."""
    context: dict[str, Any] = {"message": ""}
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        context["message"] = exception.args[0]
    slug = (getattr(request, "resolver_match", None) and request.resolver_match.kwargs.get("slug")) or ""
    project = getattr(request, "project", None) or (Project.objects.filter(slug=slug).first() if slug else None)
    role = project_role(request.user, project) if project is not None and hasattr(request, "user") else None
    if project is not None and role is not None:
        context["project"] = project
        request.role = role  # type: ignore[attr-defined]  # the nav shows what this role may open
    return context


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    context = _error_context(request, exception)
    return render(request, "403.html", context, status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    context = _error_context(request, exception)  # an unmatched address carries a dict, not a message
    context["message"] = context["message"] or "There is nothing at this address."
    return render(request, "404.html", context, status=404)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST":
        if not request.user.is_staff:
            raise PermissionDenied("Only administrators create projects.")
        if form.is_valid():
            try:
                project = projects.project_create(user=request.user, **form.cleaned_data)
            except WorkbenchError as exc:
                form.add_error("name", str(exc))
            else:
                messages.success(request, f"Project {project.name} created; you are its admin.")
                return redirect("workbench:project", slug=project.slug)
    return render(request, "workbench/home.html", {"projects": selectors.projects_for_user(request.user), "form": form})


@project_view(Capability.VIEW)
def project_detail(request: HttpRequest, project: Project) -> HttpResponse:
    context = {
        "project": project,
        **selectors.project_overview(project),
        **project_dashboard(project, request.role),  # type: ignore[attr-defined]
    }
    return render(request, "workbench/project.html", context)


@project_view(Capability.MANAGE_MEMBERS)
def members(request: HttpRequest, project: Project) -> HttpResponse:
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            m = projects.membership_set(project=project, by=request.user, **form.cleaned_data)
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{m.user.username} is now {m.get_role_display()}.")
            return redirect("workbench:members", slug=project.slug)
    return render(
        request, "workbench/members.html", {"project": project, "members": selectors.members(project), "form": form}
    )


@project_view(Capability.MANAGE_DATA)
def grade_scale(request: HttpRequest, project: Project) -> HttpResponse:
    form = GradeScaleForm.for_project(project, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            projects.project_grade_scale_set(
                project=project,
                grade_min=data["grade_min"],
                grade_max=data["grade_max"],
                labels=form.label_list(),
                relevance_threshold=data["relevance_threshold"],
                by=request.user,
            )
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Grade scale set to {project.grade_min}–{project.grade_max}.")
            return redirect("workbench:grade_scale", slug=project.slug)
    return render(request, "workbench/grade_scale.html", {"project": project, "form": form})


@require_POST
@project_view(Capability.MANAGE_MEMBERS)
def member_remove(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    membership = get_object_or_404(Membership, pk=pk, project=project)
    try:
        projects.membership_remove(membership=membership)
        messages.success(request, f"{membership.user.username} removed.")
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    return redirect("workbench:members", slug=project.slug)


@project_view(Capability.MANAGE_DATA)
def corpus_create(request: HttpRequest, project: Project) -> HttpResponse:
    form = CorpusForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            corpus, job = projects.corpus_create_with_upload(
                project=project,
                name=data["name"],
                description=data["description"],
                chunk_size=data["chunk_size"],
                chunk_overlap=data["chunk_overlap"],
                files=data["files"],
                user=request.user,
            )
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.info(request, f"Corpus {corpus.name} created; importing {len(data['files'])} file(s).")
            return redirect("workbench:job", slug=project.slug, pk=job.pk)
    return render(request, "workbench/corpus_new.html", {"project": project, "form": form})


@project_view(Capability.VIEW)
def corpus_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    corpus = get_object_or_404(Corpus, pk=pk, project=project)
    text, tenant, doc_type = (request.GET.get(k, "") for k in ("q", "tenant", "doc_type"))
    docs = selectors.documents_search(corpus, text=text, tenant=tenant, doc_type=doc_type)
    page = Paginator(docs, 25).get_page(request.GET.get("page"))
    context = {
        "project": project,
        "corpus": corpus,
        "page": page,
        "q": text,
        "tenant": tenant,
        "doc_type": doc_type,
        "tenants": selectors.facet_values(corpus, "tenant"),
        "doc_types": selectors.facet_values(corpus, "doc_type"),
        "n_passages": selectors.corpus_passage_count(corpus),
        "upload_form": CorpusUploadForm() if _can(request, Capability.MANAGE_DATA) else None,
    }
    template = "workbench/_document_list.html" if request.htmx and request.htmx.target == "doc-results" else None
    return render(request, template or "workbench/corpus.html", context)


def _start_import(
    request: HttpRequest, project: Project, form: forms.Form, *, kind: str, back: str, invalid: str, **options: Any
) -> HttpResponse:
    """Queue an import from a bound upload form: to the job page on success, back with the message otherwise."""
    if not form.is_valid():
        messages.error(request, invalid)
        return redirect(back)
    data = form.cleaned_data
    corpus = options.pop("corpus", None) or data.get("corpus")  # from the URL (uploads) or the form (qrels)
    try:
        job = projects.import_job_start(
            project=project,
            kind=kind,
            corpus=corpus,
            files=data["files"],
            user=request.user,
            options={k: v(data) if callable(v) else v for k, v in options.items()},
        )
    except WorkbenchError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    return redirect("workbench:job", slug=project.slug, pk=job.pk)


@require_POST
@project_view(Capability.MANAGE_DATA)
def corpus_upload(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    corpus = get_object_or_404(Corpus, pk=pk, project=project)
    form = CorpusUploadForm(request.POST, request.FILES)
    back = reverse("workbench:corpus", kwargs={"slug": project.slug, "pk": corpus.pk})
    return _start_import(
        request, project, form, kind="corpus", back=back, invalid="Choose at least one file to upload.", corpus=corpus
    )


@require_POST
@project_view(Capability.MANAGE_DATA)
def corpus_delete(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    corpus = get_object_or_404(Corpus, pk=pk, project=project)
    try:
        projects.corpus_delete(corpus=corpus, by=request.user)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
        return redirect("workbench:corpus", slug=project.slug, pk=pk)
    messages.success(request, f"Deleted corpus {corpus.name}.")
    return redirect("workbench:project", slug=project.slug)


@project_view(Capability.VIEW)
def document_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    document = get_object_or_404(Document.objects.select_related("corpus"), pk=pk, corpus__project=project)
    return render(
        request,
        "workbench/document.html",
        {"project": project, "document": document, "passages": document.passages.order_by("ordinal")},
    )


@project_view(Capability.VIEW)
def queries(request: HttpRequest, project: Project) -> HttpResponse:
    tag, text = request.GET.get("tag", ""), request.GET.get("q", "")
    page = Paginator(selectors.queries_list(project, tag=tag, text=text), 50).get_page(request.GET.get("page"))
    can_import = _can(request, Capability.MANAGE_DATA)
    context = {
        "project": project,
        "page": page,
        "tag": tag,
        "q": text,
        "tags": project.query_tags.all(),
        "queries_form": QueriesImportForm() if can_import else None,
        "qrels_form": QrelsImportForm(project=project) if can_import else None,
    }
    return render(request, "workbench/queries.html", context)


@project_view(Capability.VIEW)
def query_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    query = get_object_or_404(Query.objects.prefetch_related("tags"), pk=pk, project=project)
    judged = selectors.query_judgments(query)
    context = {
        "project": project,
        "query": query,
        "judged": judged,
        "n_relevant": sum(1 for j in judged if (j["gold"] or 0) >= project.relevance_threshold),
        "actions": query_actions(project, query, request.role),  # type: ignore[attr-defined]
    }
    return render(request, "workbench/query.html", context)


@require_POST
@project_view(Capability.MANAGE_DATA)
def queries_import(request: HttpRequest, project: Project) -> HttpResponse:
    form = QueriesImportForm(request.POST, request.FILES)
    return _start_import(
        request,
        project,
        form,
        kind="queries",
        back=reverse("workbench:queries", kwargs={"slug": project.slug}),
        invalid="Choose a queries file to import.",
        tags=lambda data: form.tag_list(),
        held_out=lambda data: data["held_out"],
    )


@require_POST
@project_view(Capability.MANAGE_DATA)
def qrels_import(request: HttpRequest, project: Project) -> HttpResponse:
    form = QrelsImportForm(request.POST, request.FILES, project=project)
    return _start_import(
        request,
        project,
        form,
        kind="qrels",
        back=reverse("workbench:queries", kwargs={"slug": project.slug}),
        invalid="Choose a corpus and a qrels file.",
        split=lambda data: data["split"].strip(),
        grade_map=lambda data: data["grade_map"],
        clip=lambda data: data["clip"],
    )


@project_view(Capability.MANAGE_DATA)
def export(request: HttpRequest, project: Project) -> HttpResponse:
    corpus_id, fmt = request.GET.get("corpus"), request.GET.get("format")
    if corpus_id and fmt in {"beir", "trec"}:
        corpus = get_object_or_404(Corpus, pk=corpus_id, project=project)
        tmp = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it after streaming
        export_zip(corpus=corpus, fmt=fmt, fh=tmp)
        tmp.seek(0)
        filename = f"{project.slug}-{corpus.name}-{fmt}.zip".replace(" ", "_")
        return FileResponse(tmp, as_attachment=True, filename=filename, content_type="application/zip")
    return render(request, "workbench/export.html", {"project": project, "corpora": project.corpora.all()})


@project_view(Capability.VIEW)
def jobs(request: HttpRequest, project: Project) -> HttpResponse:
    status = request.GET.get("status", "")
    page = Paginator(selectors.jobs_for_project(project, status=status), 30).get_page(request.GET.get("page"))
    return render(request, "workbench/jobs.html", {"project": project, "page": page, "status": status})


@project_view(Capability.VIEW)
def job_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    # Read-only, like every GET: a job whose worker died is shown as such and marked failed by the beat reaper.
    job = get_object_or_404(Job.objects.select_related("created_by"), pk=pk, project=project)
    context: dict[str, Any] = {"project": project, "job": job, "can_control": _can(request, Capability.RUN_JOBS)}
    if request.htmx:
        return render(request, "workbench/_job_status.html", context)
    context["metric_chart"] = selectors.job_metric_chart(job)
    if job.status == Job.Status.SUCCEEDED:  # a finished job is not a dead end: what the loop asks for next
        context["next_stage"] = project_dashboard(project, request.role)["next_stage"]  # type: ignore[attr-defined]
    return render(request, "workbench/job.html", context)


@require_POST
@project_view(Capability.RUN_JOBS)
def job_control(request: HttpRequest, project: Project, pk: int, action: str) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk, project=project)
    try:
        if action == "cancel":
            job_cancel(job=job)
            messages.info(request, f"Cancellation of job #{job.pk} requested.")
        else:
            job = job_retry(job=job, user=request.user)
            messages.info(request, f"Retrying as job #{job.pk}.")
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    return redirect("workbench:job", slug=project.slug, pk=job.pk)
