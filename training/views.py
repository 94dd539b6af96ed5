"""Training pages: runs, the start form, a run's live page, and its follow-ups (index, configuration)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from training import selectors, services
from training.forms import TrainingRunForm
from training.models import TrainingRun
from workbench.access import project_view
from workbench.errors import WorkbenchError
from workbench.models import IndexVersion, ModelVersion, Project
from workbench.roles import Capability, role_allows
from workbench.selectors import backend_measure_job, job_metric_chart
from workbench.services.backends import rerank_budget_fit
from workbench.services.configurations import served_configuration


def _can_run(request: HttpRequest) -> bool:
    return role_allows(getattr(request, "role", None), Capability.RUN_JOBS)


@project_view(Capability.VIEW)
def run_list(request: HttpRequest, project: Project) -> HttpResponse:
    return render(
        request,
        "training/list.html",
        {"project": project, "runs": selectors.training_runs(project)[:200], "can_run": _can_run(request)},
    )


@project_view(Capability.RUN_JOBS)
def run_new(request: HttpRequest, project: Project) -> HttpResponse:
    form = TrainingRunForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            run = services.training_run_start(
                project=project,
                user=request.user,
                snapshot=d["snapshot"],
                freeze=(d["corpus"], d["freeze_source"], d.get("dev_fraction")) if not d["snapshot"] else None,
                kind=d["kind"],
                base=d["base"],
                first_stage=d.get("first_stage"),
                teacher=d.get("teacher"),
                name=d.get("name", ""),
                params=form.params(),
            )
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Training run started as job #{run.job_id}.")
            return redirect("training:run", slug=project.slug, pk=run.pk)
    return render(request, "training/new.html", {"project": project, "form": form, "sections": form.SECTIONS})


def _run(project: Project, pk: int) -> TrainingRun:
    return get_object_or_404(selectors.training_runs(project), pk=pk)


@project_view(Capability.VIEW)
def run_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run(project, pk)
    index = None
    if run.model_version_id and run.kind == "bi_encoder":
        index = IndexVersion.objects.filter(project=project, encoder=run.model_version).order_by("-created_at").first()
    context = {
        "project": project,
        "run": run,
        "job": run.job,
        "can_control": _can_run(request),
        "metric_chart": job_metric_chart(run.job) if run.job else {},
        "index": index,
        "served": served_configuration(project),
        "poll_url": f"{request.path}status/",
        "counts": [(k.replace("_", " ").capitalize(), v) for k, v in (run.metrics.get("counts") or {}).items()],
        "distill": run.metrics.get("distillation"),
    }
    if run.model_version_id and run.model_version.kind == ModelVersion.Kind.CROSS_ENCODER:
        context["rerank_fit"] = rerank_budget_fit(run.model_version)
        context["rerank_budget_ms"] = settings.RERANK_BUDGET_MS
        context["measuring"] = backend_measure_job(run.model_version)
    return render(request, "training/run.html", context)


@project_view(Capability.VIEW)
def run_status(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    """The job card, polled while the run is active; once it finishes, the page reloads to draw the outcome."""
    run = _run(project, pk)
    response = render(
        request,
        "workbench/_job_status.html",
        {"project": project, "job": run.job, "can_control": _can_run(request), "poll_url": request.path},
    )
    if run.job and not run.job.is_active and request.htmx:
        response["HX-Refresh"] = "true"
    return response


@require_POST
@project_view(Capability.RUN_JOBS)
def run_build_index(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run(project, pk)
    try:
        job = services.training_run_build_index(run=run, user=request.user)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Index build started as job #{job.pk}.")
    return redirect("training:run", slug=project.slug, pk=run.pk)


@require_POST
@project_view(Capability.RUN_JOBS)
def run_configure(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run(project, pk)
    try:
        configuration = services.training_run_configure(run=run, user=request.user)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        depth = f", reranking the top {configuration.rerank_top_n}" if configuration.reranker_id else ""
        messages.success(request, f"Saved configuration {configuration.name}{depth}.")
    return redirect("training:run", slug=project.slug, pk=run.pk)
