"""Measuring CPU inference backends for a model version (a background job) and recording the choice.

The measurement itself is the Django-free ``workbench.retrieval.backend_measure``; this module picks the samples
from the project (never from held-out queries), runs it with the thresholds from settings, and stores the chosen
backend and the report on the ``ModelVersion``. The engine (``workbench.services.engines.backend_choice``) uses
the backend only on the CPU it was measured on.
"""

from __future__ import annotations

import random
from typing import Any

from django.conf import settings
from django.db import transaction

from workbench.errors import WorkbenchError
from workbench.jobs import JobReporter, job_create
from workbench.models import IndexVersion, Job, ModelVersion, Passage, Project, Query, SearchConfiguration
from workbench.retrieval.backend_measure import DevList, Thresholds, measure_backends
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.rerank_budget import BudgetFit, depth_for_budget, rerank_cost
from workbench.retrieval.texts import passage_text
from workbench.selectors import grades_gold
from workbench.services.engines import (
    backend_choice,
    engine_cache_drop,
    engine_for,
    rerank_max_length,
    rerankers_cache,
    torch_threads_apply,
)

JOB_KIND = "backend_measure"
SAMPLE_PASSAGES = 200
SAMPLE_QUERIES = 20
DEV_LISTS = 12
DEV_DEPTH = 50
REPEATS = 5
SEED = 13


def thresholds() -> Thresholds:
    return Thresholds(
        encoder_cosine_min=settings.BACKEND_ENCODER_COSINE_MIN,
        rerank_ndcg_delta_max=settings.BACKEND_RERANK_NDCG_DELTA_MAX,
        rerank_spearman_min=settings.BACKEND_RERANK_SPEARMAN_MIN,
        rerank_top10_overlap_min=settings.BACKEND_RERANK_TOP10_OVERLAP_MIN,
    )


def backend_measure_start(*, model: ModelVersion, user: Any) -> Job:
    """Queue a speed + fidelity measurement of every backend for ``model`` (bi-encoder or cross-encoder)."""
    if model.kind not in (ModelVersion.Kind.BI_ENCODER, ModelVersion.Kind.CROSS_ENCODER):
        raise WorkbenchError(f"{model.name} is a {model.get_kind_display()}: only encoders and rerankers run here.")
    if not Passage.objects.filter(corpus__project=model.project).exists():
        raise WorkbenchError("Measuring backends needs sample passages: import a corpus first.")
    running = Job.objects.filter(
        project=model.project, kind=JOB_KIND, status__in=Job.ACTIVE, params__model_id=model.pk
    ).first()
    if running is not None:
        raise WorkbenchError(f"{model.name} is already being measured (job #{running.pk}).")
    with transaction.atomic():
        return job_create(
            project=model.project,
            kind=JOB_KIND,
            title=f"Measure inference backends of {model.name}",
            params={"model_id": model.pk},
            user=user,
        )


def _held_out_query_ids(project: Project) -> set[int]:
    return set(Query.objects.filter(project=project, tags__held_out=True).values_list("pk", flat=True))


def sample_passages(project: Project, n: int = SAMPLE_PASSAGES) -> list[str]:
    """A seeded sample of the project's passages as the encoders see them (title + passage)."""
    ids = list(Passage.objects.filter(corpus__project=project).order_by("id").values_list("id", flat=True))
    chosen = sorted(random.Random(SEED).sample(ids, min(n, len(ids))))
    rows = Passage.objects.filter(pk__in=chosen).order_by("id").values_list("document__title", "text")
    return [passage_text(title, text) for title, text in rows]


def sample_queries(project: Project, n: int = SAMPLE_QUERIES) -> list[Query]:
    """A seeded sample of queries outside held-out tags, judged ones first (dev lists need grades)."""
    held = _held_out_query_ids(project)
    queries = [q for q in Query.objects.filter(project=project).order_by("id") if q.pk not in held]
    judged = set(
        Query.objects.filter(pk__in=[q.pk for q in queries], judgments__cant_judge=False).values_list("pk", flat=True)
    )
    rng = random.Random(SEED)
    first = [q for q in queries if q.pk in judged]
    rest = [q for q in queries if q.pk not in judged]
    rng.shuffle(first)
    rng.shuffle(rest)
    return (first + rest)[:n]


def _dev_index(project: Project) -> IndexVersion | None:
    """The index dev lists are retrieved from: the served configuration's, else the newest."""
    served = SearchConfiguration.objects.filter(serving_records__project=project).select_related("index").first()
    if served is not None:
        return served.index
    return IndexVersion.objects.filter(project=project).select_related("encoder").first()


def dev_lists(project: Project, n: int = DEV_LISTS, depth: int = DEV_DEPTH) -> list[DevList]:
    """Queries with their first-stage candidates (hybrid search of the dev index) and gold grades per candidate.

    Without an index, each sampled query is paired with sampled passages (no grades: top-10 overlap is gated)."""
    queries = sample_queries(project, n)
    index = _dev_index(project)
    if index is None or not queries:
        passages = sample_passages(project, depth)
        texts = [q.text for q in queries] or [p[:200] for p in passages[:n]]
        return [DevList(query=t, passages=passages) for t in texts]
    engine = engine_for(index)
    out = []
    for query in queries:
        result = engine.search(query.text, mode="hybrid", k=depth)
        ids = result.passage_ids
        if not ids:
            continue
        doc_of = dict(Passage.objects.filter(pk__in=ids).values_list("pk", "document_id"))
        gold = grades_gold(query=query, document_ids=set(doc_of.values()))
        grades = [gold.get(doc_of.get(pid, -1), 0) for pid in ids]
        passages = [passage_text(*row) for row in _titles_texts(ids)]
        out.append(DevList(query=query.text, passages=passages, grades=grades if gold else None))
    return out


def _titles_texts(ids: list[int]) -> list[tuple[str, str]]:
    rows = {
        pk: (title, text)
        for pk, title, text in Passage.objects.filter(pk__in=ids).values_list("pk", "document__title", "text")
    }
    return [rows.get(pid, ("", "")) for pid in ids]


def backend_measure_run(*, job: Job, report: JobReporter) -> dict:
    """Body of the measurement job: sample, measure every backend, store the choice and the report."""
    model = ModelVersion.objects.get(pk=job.params["model_id"], project=job.project)
    threads = settings.RERANK_TORCH_THREADS if model.kind == ModelVersion.Kind.CROSS_ENCODER else settings.TORCH_THREADS
    torch_threads_apply(threads)
    report.progress(0.05, "Choosing samples", force=True)
    kwargs: dict[str, Any] = {}
    if model.kind == ModelVersion.Kind.BI_ENCODER:
        kind = "bi-encoder"
        kwargs["passages"] = sample_passages(job.project)
        kwargs["queries"] = [q.text for q in sample_queries(job.project)]
        report.log(f"{len(kwargs['passages'])} sample passages, {len(kwargs['queries'])} queries")
    else:
        kind = "cross-encoder"
        kwargs["dev_lists"] = dev_lists(job.project)
        kwargs["max_length"] = rerank_max_length(model.path)
        judged = sum(d.grades is not None for d in kwargs["dev_lists"])
        report.log(f"{len(kwargs['dev_lists'])} dev lists ({judged} judged)")
    report.progress(0.1, "Measuring backends", force=True)
    try:
        measured = measure_backends(
            kind, model.path, threads=threads, thresholds=thresholds(), repeats=REPEATS, log=report.log, **kwargs
        )
    except RetrievalError as exc:
        raise WorkbenchError(str(exc)) from None
    backend_record(model=model, report=measured)
    return {
        "model_id": model.pk,
        "chosen": measured["chosen"],
        "message": f"{model.name}: {measured['chosen']} ({measured['reason']}).",
    }


def backend_record(*, model: ModelVersion, report: dict) -> ModelVersion:
    """Store a measurement on the model version and drop what this process cached with the old backend."""
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=model.pk)
        locked.inference_backend = report["chosen"]
        locked.backend_report = report
        locked.save(update_fields=["inference_backend", "backend_report"])
    for index in IndexVersion.objects.filter(encoder=model):
        engine_cache_drop(index)
    rerankers_cache.evict_where(lambda key: isinstance(key, tuple) and key[:1] == (model.pk,))
    model.inference_backend, model.backend_report = locked.inference_backend, locked.backend_report
    return model


def rerank_budget_fit(model: ModelVersion, *, top_n: int = DEV_DEPTH) -> BudgetFit | None:
    """How deep ``model`` can rerank within ``RERANK_BUDGET_MS`` with the backend it uses on this CPU; None when
    that has not been measured here (never measured, a non-reranker, or measured on another CPU)."""
    if model.kind != ModelVersion.Kind.CROSS_ENCODER:
        return None
    choice = backend_choice(model)
    if not choice.backend:
        return None
    row = next((b for b in (model.backend_report or {}).get("backends", []) if b.get("name") == choice.backend), None)
    cost = rerank_cost((row or {}).get("rerank_ms") or {})
    if cost is None:
        return None
    return depth_for_budget(cost, settings.RERANK_BUDGET_MS, top_n=top_n)


def rerank_budget_warning(configuration: SearchConfiguration) -> str:
    """What to tell whoever saves ``configuration`` when its reranker is measured too slow on this CPU for its
    depth ("" when it fits or nothing was measured here)."""
    if configuration.reranker is None:
        return ""
    fit = rerank_budget_fit(configuration.reranker, top_n=configuration.rerank_top_n)
    if fit is None or not fit.limits_depth:
        return ""
    return (
        f"Reranking the top {fit.top_n} with {configuration.reranker.name} is predicted at p95 "
        f"{fit.predicted_top_n_ms:.0f} ms on this CPU, over the {fit.budget_ms:.0f} ms rerank budget: "
        + (f"the top {fit.depth} fits." if fit.fits else f"even the top {fit.depth} does not fit.")
    )
