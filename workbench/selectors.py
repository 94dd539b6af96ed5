"""Reads for the core app's pages."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet

from labeling.models import Judgment
from workbench.models import Corpus, Document, Job, Membership, Project, Query, QueryTag


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
