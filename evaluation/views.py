"""Evaluation pages: list, create, results with comparisons and charts, drill-down, compare, downloads. Thin."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render

from evaluation import charts, exports, selectors, services
from evaluation.forms import DEFAULT_ROWS, MAX_ROWS, EvalRunForm, config_formset
from evaluation.models import EvalConfig, EvalRun
from workbench.access import project_view
from workbench.errors import WorkbenchError
from workbench.models import Project, Query
from workbench.roles import Capability, role_allows

DRILLDOWN_K = 10


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(value))) if value not in (None, "") else default
    except ValueError:
        return default


def _run_or_404(project: Project, pk: int) -> EvalRun:
    run = selectors.eval_run_get(project, pk)
    if run is None:
        raise Http404("No such evaluation")
    return run


@project_view(Capability.VIEW)
def eval_list(request: HttpRequest, project: Project) -> HttpResponse:
    runs = selectors.eval_runs_for_project(project)
    return render(request, "evaluation/list.html", {"project": project, "runs": runs})


@project_view(Capability.RUN_JOBS)
def eval_new(request: HttpRequest, project: Project) -> HttpResponse:
    rows = _int(request.GET.get("rows"), DEFAULT_ROWS, 1, MAX_ROWS)
    data = request.POST if request.method == "POST" else None
    form = EvalRunForm(data, project=project)
    formset = config_formset(project, data, rows=rows)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        try:
            drafts = [row for f in formset.forms if (row := f.draft()) is not None]
            chosen = form.choice()
            run = services.eval_run_start(
                project=project,
                user=request.user,
                configs=[config for config, _ in drafts],
                labels=[label for _, label in drafts],
                tag=chosen.tag,
                snapshot=chosen.snapshot,
                split=chosen.split,
                depth=form.cleaned_data["depth"],
                baseline=form.cleaned_data["baseline"],
                resamples=form.cleaned_data["resamples"],
                seed=form.cleaned_data["seed"],
                name=form.cleaned_data["name"],
            )
        except WorkbenchError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Evaluation started as job #{run.job_id}.")
            return redirect("evaluation:detail", slug=project.slug, pk=run.pk)
    return render(
        request,
        "evaluation/new.html",
        {"project": project, "form": form, "formset": formset, "more_rows": min(MAX_ROWS, rows + 2), "rows": rows},
    )


@project_view(Capability.VIEW)
def eval_detail(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    if request.htmx and request.GET.get("status"):
        response = render(request, "evaluation/_status.html", {"project": project, "run": run})
        if run.is_complete:
            response["HX-Refresh"] = "true"  # results are in: reload the whole page once
        return response
    configs = selectors.configs_of(run)
    context: dict = {
        "project": project,
        "run": run,
        "configs": configs,
        # The unjudged pairs are for whoever can get them judged and their qrels imported, not for every reader.
        "can_export_pairs": role_allows(request.role, Capability.MANAGE_DATA),  # type: ignore[attr-defined]
    }
    if run.is_complete:
        try:
            metrics = {c.label: selectors.run_metrics(c) for c in configs}
            context.update(
                selectors.eval_run_tables(
                    run, configs, slice_name=request.GET.get("slice", ""), metric=request.GET.get("metric", "")
                )
            )
            context["heads"] = selectors.column_heads(configs)
            by_position = {str(c.position): c.label for c in configs}
            table = selectors.query_rows(
                project,
                run,
                configs,
                candidate=by_position.get(request.GET.get("vs", "")),
                text=request.GET.get("qq", ""),
                change=request.GET.get("change", ""),
                order=request.GET.get("order", "delta"),
            )
            page = Paginator(table["rows"], selectors.QUERY_ROWS_PER_PAGE).get_page(request.GET.get("qpage"))
            context.update(
                queries=table,
                query_page=page,
                shorts={h["label"]: h["short"] for h in context["heads"]},
                query_orders=selectors.QUERY_ORDERS,
                query_changes=selectors.QUERY_CHANGES,
            )
            context["chart_data"] = charts.chart_data(run, configs, metrics)
        except WorkbenchError as exc:
            context["error"] = str(exc)
    return render(request, "evaluation/detail.html", context)


@project_view(Capability.VIEW)
def eval_query(request: HttpRequest, project: Project, pk: int, query_pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    query = get_object_or_404(Query, pk=query_pk, project=project)
    k = _int(request.GET.get("k"), DRILLDOWN_K, 1, run.depth)
    context: dict = {
        "project": project,
        "run": run,
        "query": query,
        "k": k,
        "can_export_pairs": role_allows(request.role, Capability.MANAGE_DATA),  # type: ignore[attr-defined]
    }
    if not run.is_complete:
        context["error"] = "This evaluation has no results yet."
    else:
        try:
            context.update(selectors.query_drilldown(run, selectors.configs_of(run), query, k=k))
        except WorkbenchError as exc:
            context["error"] = str(exc)
    return render(request, "evaluation/query.html", context)


@project_view(Capability.VIEW)
def eval_compare(request: HttpRequest, project: Project) -> HttpResponse:
    available = list(selectors.comparable_configs(project))
    by_pk = {c.pk: c for c in available}
    baseline_pk = _int(request.GET.get("baseline"), 0, 0, 2**62)
    candidate_pks = [_int(v, 0, 0, 2**62) for v in request.GET.getlist("candidate")]
    context: dict = {
        "project": project,
        "available": available,
        "baseline_pk": baseline_pk,
        "candidate_pks": candidate_pks,
    }
    if baseline_pk or candidate_pks:
        baseline = by_pk.get(baseline_pk)
        candidates = [by_pk[c] for c in candidate_pks if c in by_pk]
        try:
            if baseline is None:
                raise WorkbenchError("Pick a baseline configuration of a finished evaluation.")
            if len(candidates) != len(candidate_pks):
                raise WorkbenchError("Some of the chosen configurations do not exist or have no results.")
            # Per-query results are deferred in the list above; load them for the ones compared.
            chosen = {
                c.pk: c
                for c in EvalConfig.objects.filter(pk__in=[baseline.pk, *candidate_pks]).select_related("eval_run")
            }
            comparison = selectors.comparison_build(
                baseline=chosen[baseline.pk], candidates=[chosen[c.pk] for c in candidates]
            )
        except WorkbenchError as exc:
            context["error"] = str(exc)
        else:
            slice_name = request.GET.get("slice", "all")
            if slice_name not in comparison["slice_sizes"]:
                slice_name = "all"
            params = request.GET.copy()
            links = []
            for name, n in comparison["slice_sizes"].items():
                params["slice"] = name
                links.append({"name": name, "n": n, "query": params.urlencode()})
            context.update(
                comparison=comparison,
                slice=slice_name,
                slice_links=links,
                metric_rows=selectors.metric_rows(
                    metric_names=comparison["metric_names"],
                    columns=comparison["columns"],
                    baseline=comparison["baseline"],
                    means=comparison["means"],
                    comparisons=comparison["comparisons"],
                    slice_name=slice_name,
                ),
            )
    return render(request, "evaluation/compare.html", context)


def _complete_or_400(run: EvalRun) -> HttpResponse | None:
    if not run.is_complete:
        return HttpResponse("This evaluation has no results yet.", status=400, content_type="text/plain")
    return None


@project_view(Capability.VIEW)
def report_json(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    if (bad := _complete_or_400(run)) is not None:
        return bad
    response = JsonResponse(exports.report_json(run, selectors.configs_of(run)), json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="evaluation-{run.pk}.json"'
    return response


@project_view(Capability.VIEW)
def report_csv(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    if (bad := _complete_or_400(run)) is not None:
        return bad
    response = HttpResponse(exports.report_csv(run, selectors.configs_of(run)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{run.pk}.csv"'
    return response


@project_view(Capability.VIEW)
def unjudged_csv(request: HttpRequest, project: Project, pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    if (bad := _complete_or_400(run)) is not None:
        return bad
    k = _int(request.GET.get("k"), DRILLDOWN_K, 1, run.depth)
    qids = None
    if request.GET.get("query"):
        query = get_object_or_404(Query, pk=_int(request.GET["query"], 0, 0, 2**62), project=project)
        qids = [query.external_id]
    try:
        pairs = selectors.unjudged_pairs(run, selectors.configs_of(run), k=k, qids=qids)
    except WorkbenchError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    response = HttpResponse(exports.unjudged_csv(run, pairs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{run.pk}-unjudged-top{k}.csv"'
    return response


@project_view(Capability.VIEW)
def run_file(request: HttpRequest, project: Project, pk: int, config_pk: int) -> HttpResponse:
    run = _run_or_404(project, pk)
    cfg = get_object_or_404(EvalConfig.objects.select_related("eval_run"), pk=config_pk, eval_run=run)
    try:
        path = selectors.run_file_path(cfg)
    except WorkbenchError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"evaluation-{run.pk}-{cfg.run_tag}.trec",
        content_type="text/plain",
    )


@project_view(Capability.RUN_JOBS)
def eval_against_served(request: HttpRequest, project: Project) -> HttpResponse:
    """One click from a training run: the candidate configuration against the served one, on the snapshot's dev
    split (frozen gold) and on each held-out query tag, the served configuration as the baseline."""
    if request.method != "POST":
        return redirect("evaluation:new", slug=project.slug)
    try:
        runs = services.eval_against_served(
            project=project,
            user=request.user,
            configuration_id=_int(request.POST.get("configuration"), 0, 0, 2**31 - 1),
            snapshot_id=_int(request.POST.get("snapshot"), 0, 0, 2**31 - 1) or None,
        )
    except WorkbenchError as exc:
        messages.error(request, str(exc))
        return redirect("evaluation:list", slug=project.slug)
    messages.success(
        request, "Started: " + "; ".join(f"{r.query_set} (job #{r.job_id})" for r in runs) + ". Results appear here."
    )
    return redirect("evaluation:detail", slug=project.slug, pk=runs[0].pk)
