"""Reads for the core app's pages."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from labeling.models import Judgment
from workbench.models import Corpus, Document, IndexVersion, Job, Membership, Project, Query, QueryTag, SearchLog


def projects_for_user(user: Any) -> QuerySet[Project]:
    qs = Project.objects.all() if user.is_superuser else Project.objects.filter(memberships__user=user)
    return qs.annotate(n_members=Count("memberships", distinct=True)).order_by("name")


def project_overview(project: Project) -> dict:
    corpora = project.corpora.annotate(
        n_documents=Count("documents", distinct=True),
    ).order_by("name")
    return {
        "corpora": corpora,
        "n_queries": project.queries.count(),
        "n_judgments": Judgment.objects.filter(project=project).count(),
        "tags": QueryTag.objects.filter(project=project).annotate(n=Count("queries")).order_by("name"),
        "recent_jobs": Job.objects.filter(project=project)[:8],
    }


def corpus_passage_count(corpus: Corpus) -> int:
    return corpus.passages.count()


def members(project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("user__username")


def documents_search(corpus: Corpus, *, text: str = "", tenant: str = "", doc_type: str = "") -> QuerySet[Document]:
    """Documents matching a full-text query (PostgreSQL ranking when available, substring match otherwise)."""
    qs = corpus.documents.all()
    if tenant:
        qs = qs.filter(tenant=tenant)
    if doc_type:
        qs = qs.filter(doc_type=doc_type)
    text = text.strip()
    if not text:
        return qs.order_by("id")
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = SearchVector("title", weight="A", config="english") + SearchVector(
            "text", weight="B", config="english"
        )
        query = SearchQuery(text, search_type="websearch", config="english")
        return qs.annotate(rank=SearchRank(vector, query)).filter(rank__gt=0).order_by("-rank", "id")
    terms = text.split()
    cond = Q()
    for term in terms:
        cond &= Q(title__icontains=term) | Q(text__icontains=term)
    return qs.filter(cond).order_by("id")


def facet_values(corpus: Corpus, field: str) -> list[str]:
    return list(corpus.documents.exclude(**{field: ""}).order_by(field).values_list(field, flat=True).distinct()[:200])


def queries_list(project: Project, *, tag: str = "", text: str = "") -> QuerySet[Query]:
    qs = project.queries.prefetch_related("tags").annotate(n_judgments=Count("judgments"))
    if tag:
        qs = qs.filter(tags__name=tag)
    if text.strip():
        qs = qs.filter(Q(text__icontains=text.strip()) | Q(external_id=text.strip()))
    return qs.order_by("id")


def jobs_for_project(project: Project, *, status: str = "") -> QuerySet[Job]:
    qs = Job.objects.filter(project=project).select_related("created_by")
    return qs.filter(status=status) if status else qs


LATENCY_WINDOWS = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
LATENCY_STAGES = ("embed", "dense", "bm25", "fuse", "rerank", "total")


def latency_stats(project: Project, *, window: str = "24h", limit: int = 50_000) -> list[dict]:
    """p50/p95/p99 per stage and index version over a time window (stages that did not run are left out)."""
    since = timezone.now() - timezone.timedelta(hours=LATENCY_WINDOWS.get(window, 24))
    logs = (
        SearchLog.objects.filter(project=project, created_at__gte=since)
        .order_by("-created_at")
        .values_list("index_id", "timings_ms")[:limit]
    )
    by_index: dict[int, list[dict]] = {}
    for index_id, timings in logs:
        by_index.setdefault(index_id, []).append(timings)
    names = {i.pk: str(i) for i in IndexVersion.objects.filter(pk__in=by_index).select_related("corpus", "encoder")}
    rows = []
    for index_id, timings in sorted(by_index.items()):
        stages = []
        for stage in LATENCY_STAGES:
            values = np.array([t.get(stage, 0.0) for t in timings if t.get(stage, 0.0) > 0.0])
            if values.size:
                p50, p95, p99 = np.percentile(values, [50, 95, 99])
                stages.append({"stage": stage, "n": int(values.size), "p50": p50, "p95": p95, "p99": p99})
        rows.append(
            {"index_id": index_id, "index": names.get(index_id, f"#{index_id}"), "n": len(timings), "stages": stages}
        )
    return rows
