"""Pages for models, index versions, search and latency."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from workbench import selectors
from workbench.access import project_view
from workbench.errors import WorkbenchError
from workbench.forms import ApiTokenForm, IndexBuildForm, ModelRegisterForm, SearchConfigurationForm
from workbench.models import ApiToken, IndexVersion, ModelVersion, Project, Role, SearchConfiguration
from workbench.roles import Capability, role_allows
from workbench.services import backends as backend_service
from workbench.services import configurations, projects
from workbench.services import indexes as index_service
from workbench.services import search as search_service
from workbench.services.configurations import rerankers_offered
from workbench.services.engines import backend_choice


@project_view(Capability.VIEW)
def models_page(request: HttpRequest, project: Project) -> HttpResponse:
    can_manage = role_allows(request.role, Capability.RUN_JOBS)  # type: ignore[attr-defined]
    form = ModelRegisterForm(request.POST if "register_base" not in request.POST else None)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Only ML leads and admins register models.")
        if "register_base" in request.POST:  # projects made before new projects registered it themselves
            index_service.encoder_base_ensure(project=project)
            return redirect("workbench:models", slug=project.slug)
        if form.is_valid():
            try:
                model = index_service.model_register(project=project, user=request.user, **form.cleaned_data)
            except WorkbenchError as exc:
                form.add_error("path", str(exc))
            else:
                messages.success(request, f"Registered {model.name} ({model.get_kind_display()}).")
                return redirect("workbench:models", slug=project.slug)
    models = ModelVersion.objects.filter(project=project).select_related("base")
    context = {
        "project": project,
        "models": models,
        "base_missing": not models.filter(source=ModelVersion.Source.BUILTIN).exists(),
        "form": form if can_manage else None,
        "show_paths": request.role == Role.ADMIN,  # type: ignore[attr-defined]
    }
    return render(request, "workbench/models.html", context)


@project_view(Capability.VIEW)
def model_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    model = get_object_or_404(ModelVersion.objects.select_related("base"), pk=pk, project=project)
    context = {
        "project": project,
        "model": model,
        "choice": backend_choice(model),
        "report": model.backend_report or None,
        "measurable": model.kind in (ModelVersion.Kind.BI_ENCODER, ModelVersion.Kind.CROSS_ENCODER),
        "measuring": selectors.backend_measure_job(model),
        "show_paths": request.role == Role.ADMIN,  # type: ignore[attr-defined]
        "rerank_fit": backend_service.rerank_budget_fit(model),
    }
    return render(request, "workbench/model.html", context)


@require_POST
@project_view(Capability.RUN_JOBS)
def model_measure(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    model = get_object_or_404(ModelVersion, pk=pk, project=project)
    try:
        job = backend_service.backend_measure_start(model=model, user=request.user)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Measuring the inference backends of {model.name} (job #{job.pk}).")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(back)  # the training run page that asked
    return redirect("workbench:model", slug=project.slug, pk=pk)


@project_view(Capability.VIEW)
def indexes_page(request: HttpRequest, project: Project) -> HttpResponse:
    can_build = role_allows(request.role, Capability.RUN_JOBS)  # type: ignore[attr-defined]
    form = IndexBuildForm(request.POST or None, project=project)
    if request.method == "POST":
        if not can_build:
            raise PermissionDenied("Only ML leads and admins build indexes.")
        if form.is_valid():
            try:
                job = index_service.index_build_start(
                    project=project,
                    corpus=form.cleaned_data["corpus"],
                    encoder=form.cleaned_data["encoder"],
                    index_type=form.cleaned_data["index_type"],
                    params=form.index_params(),
                    user=request.user,
                    answer_sentences=form.cleaned_data["answer_sentences"],
                    reuse_vectors=form.cleaned_data["reuse_vectors"],
                )
            except WorkbenchError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("workbench:job", slug=project.slug, pk=job.pk)
    indexes = IndexVersion.objects.filter(project=project).select_related("corpus", "encoder", "created_by")
    building = selectors.jobs_for_project(project).filter(kind="index_build", status__in=["queued", "running"])
    return render(
        request,
        "workbench/indexes.html",
        {"project": project, "indexes": indexes, "building": building, "form": form if can_build else None},
    )


@project_view(Capability.VIEW)
def index_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    index = get_object_or_404(IndexVersion.objects.select_related("corpus", "encoder", "job"), pk=pk, project=project)
    show_paths = request.role == Role.ADMIN  # type: ignore[attr-defined]  # server paths are for admins only
    fields = selectors.index_manifest_fields(index, show_paths=show_paths)
    context = {"project": project, "index": index, "fields": fields, "show_paths": show_paths}
    return render(request, "workbench/index.html", context)


@require_POST
@project_view(Capability.RUN_JOBS)
def index_delete(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    index = get_object_or_404(IndexVersion, pk=pk, project=project)
    try:
        index_service.index_version_delete(index=index)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
        return redirect("workbench:index", slug=project.slug, pk=pk)
    messages.success(request, f"Deleted {index}.")
    return redirect("workbench:indexes", slug=project.slug)


@project_view(Capability.SEARCH)
def search_page(request: HttpRequest, project: Project) -> HttpResponse:
    indexes = IndexVersion.objects.filter(project=project).select_related("corpus", "encoder")
    context: dict = {
        "project": project,
        "indexes": indexes,
        "configurations": selectors.search_configurations(project),
        "serving": selectors.serving_record(project),
        "rerankers": rerankers_offered(project),
        "params": request.GET,
        "filters": search_service.FILTERS,
        "custom": search_service.CUSTOM,
        "served": search_service.SERVED,
    }
    data = request.GET.dict()
    data.setdefault("per_document", "1")  # the page shows one result per document unless asked for passages
    context["per_document"] = data["per_document"] not in ("0", "false", "")
    if request.GET.get("q", "").strip():
        try:
            params = search_service.search_params_parse(project, data, caller=f"user:{request.user.pk}")
            context["outcome"] = search_service.search_run(project=project, user=request.user, via="ui", **params)
        except WorkbenchError as exc:
            context["error"] = str(exc)
    template = "workbench/_search_results.html" if request.htmx else "workbench/search.html"
    return render(request, template, context)


@project_view(Capability.VIEW)
def configurations_page(request: HttpRequest, project: Project) -> HttpResponse:
    can_manage = role_allows(request.role, Capability.RUN_JOBS)  # type: ignore[attr-defined]
    form = SearchConfigurationForm(request.POST or None, project=project)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Your role cannot save search configurations here.")
        if form.is_valid():
            try:
                draft = configurations.search_configuration_draft(project=project, **form.cleaned_data)
                saved = configurations.search_configuration_create(configuration=draft, user=request.user)
            except WorkbenchError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Saved {saved.name}.")
                over = backend_service.rerank_budget_warning(saved)
                if over:
                    messages.warning(request, over)
                return redirect("workbench:configurations", slug=project.slug)
    saved_configurations = list(selectors.search_configurations(project))
    for c in saved_configurations:
        c.rerank_fit = backend_service.rerank_budget_fit(c.reranker, top_n=c.rerank_top_n) if c.reranker else None
    return render(
        request,
        "workbench/configurations.html",
        {
            "project": project,
            "configurations": saved_configurations,
            "serving": selectors.serving_record(project),
            "form": form if can_manage else None,
        },
    )


@require_POST
@project_view(Capability.RUN_JOBS)
def configuration_serve(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    configuration = get_object_or_404(SearchConfiguration, project=project, pk=pk)
    try:
        configurations.serving_set(project=project, configuration=configuration, user=request.user)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{configuration.name} now answers the search page and the API.")
    return redirect("workbench:configurations", slug=project.slug)


@require_POST
@project_view(Capability.RUN_JOBS)
def configuration_delete(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    configuration = get_object_or_404(SearchConfiguration, project=project, pk=pk)
    try:
        configurations.search_configuration_delete(configuration=configuration)
    except WorkbenchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Deleted {configuration.name}.")
    return redirect("workbench:configurations", slug=project.slug)


@project_view(Capability.VIEW)
def latency_page(request: HttpRequest, project: Project) -> HttpResponse:
    window = request.GET.get("window", "24h")
    if window not in selectors.LATENCY_WINDOWS:
        window = "24h"
    return render(
        request,
        "workbench/latency.html",
        {
            "project": project,
            "rows": selectors.latency_stats(project, window=window),
            "window": window,
            "windows": list(selectors.LATENCY_WINDOWS),
        },
    )


@login_required
def tokens_page(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST":
        if "revoke" in request.POST:
            try:
                projects.api_token_revoke(user=request.user, token_id=int(request.POST["revoke"]))
                messages.success(request, "Token revoked.")
            except (WorkbenchError, ValueError) as exc:
                messages.error(request, str(exc))
            return redirect("tokens")
        if form.is_valid():
            new_key = projects.api_token_create(user=request.user, name=form.cleaned_data["name"])
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "workbench/tokens.html", {"tokens": tokens, "form": form, "new_key": new_key})
