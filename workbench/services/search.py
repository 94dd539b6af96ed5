"""Search over an index version, shared by the search page, the JSON API and evaluation runs.

Loaded indexes and rerankers are cached per process by version id (the engine keeps them), so a request pays only
for the query itself.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from workbench.errors import NotFoundError, WorkbenchError
from workbench.models import Document, IndexVersion, ModelVersion, Passage, Project, Query, SearchLog
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.rerank import CrossEncoderReranker
from workbench.retrieval.search import (
    MAX_K,
    MAX_QUERY_CHARS,
    SEARCH_MODES,
    LoadedIndex,
    SearchResult,
    evict_index,
    load_index,
)
from workbench.selectors import grades_gold

FILTERS = ("tenant", "doc_type", "date_from", "date_to", "tag")
_rerankers: dict[tuple[int, str], CrossEncoderReranker] = {}
_rerankers_lock = threading.Lock()


def torch_threads_apply(n: int) -> None:
    """Set torch's CPU threads for what this process does next (0: all cores). Workers run one task at a time, so
    switching between batch work and query-time work is safe."""
    import os

    import torch

    wanted = n if n > 0 else (os.cpu_count() or 1)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def engine_for(index: IndexVersion) -> LoadedIndex:
    torch_threads_apply(settings.SEARCH_TORCH_THREADS)
    try:
        return load_index(index.path, cache_key=_cache_key(index), encoder_path=index.encoder.path)
    except RetrievalError as exc:
        raise WorkbenchError(f"{index} cannot be loaded: {exc}") from None


def _cache_key(index: IndexVersion) -> str:
    # The path is part of the key: ids can repeat across databases (tests, restores); directories never do.
    return f"index-{index.pk}:{index.path}"


def engine_cache_drop(index: IndexVersion) -> None:
    evict_index(_cache_key(index))


class _ThreadedReranker:
    """Scores with its own torch thread count: a batch of pairs uses the cores a single query encoding should not."""

    def __init__(self, inner: CrossEncoderReranker, threads: int) -> None:
        self.inner, self.threads = inner, threads

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        torch_threads_apply(self.threads)
        try:
            return self.inner.score(query, passages)
        finally:
            torch_threads_apply(settings.SEARCH_TORCH_THREADS)


def reranker_for(model: ModelVersion) -> _ThreadedReranker:
    if model.kind != ModelVersion.Kind.CROSS_ENCODER:
        raise WorkbenchError(f"{model.name} is not a cross-encoder.")
    with _rerankers_lock:
        key = (model.pk, model.path)
        if key not in _rerankers:
            try:
                reranker = CrossEncoderReranker(model.path)
                # Never ask for more tokens than the model has positions for.
                limit = getattr(reranker.model, "max_seq_length", None) or 512
                reranker.max_length = min(settings.RERANK_MAX_LENGTH, limit)
                _rerankers[key] = reranker
            except RetrievalError as exc:
                raise WorkbenchError(str(exc)) from None
        return _ThreadedReranker(_rerankers[key], settings.RERANK_TORCH_THREADS)


def rerankers_offered(project: Project) -> QuerySet[ModelVersion]:
    """Cross-encoders users may pick: never one with an untrained head."""
    return ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.CROSS_ENCODER, usable_for_search=True)


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise WorkbenchError(f"{name} must be a date as YYYY-MM-DD (got {value!r})") from None


def documents_filtered(index: IndexVersion, filters: dict[str, str]) -> QuerySet[Document] | None:
    """Documents allowed by metadata filters, or None when no filter is set. Unknown filters are an error."""
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise WorkbenchError(f"Unknown filter {', '.join(unknown)}; known filters: {', '.join(FILTERS)}.")
    active = {k: str(v).strip() for k, v in filters.items() if str(v).strip()}
    if not active:
        return None
    docs = Document.objects.filter(corpus_id=index.corpus_id)
    if "tenant" in active:
        docs = docs.filter(tenant=active["tenant"])
    if "doc_type" in active:
        docs = docs.filter(doc_type=active["doc_type"])
    if "date_from" in active:
        docs = docs.filter(date__gte=_date(active["date_from"], "date_from"))
    if "date_to" in active:
        docs = docs.filter(date__lte=_date(active["date_to"], "date_to"))
    if "tag" in active:
        if connection.vendor == "postgresql":
            docs = docs.filter(metadata__tags__contains=[active["tag"]])
        else:  # SQLite has no JSON containment: match in Python over the (already filtered) rows
            ids = [
                pk for pk, meta in docs.values_list("pk", "metadata") if active["tag"] in (meta or {}).get("tags", [])
            ]
            docs = docs.filter(pk__in=ids)
    return docs


@dataclass
class SearchOutcome:
    result: SearchResult
    hits: list[dict[str, Any]]
    index: IndexVersion
    query: Query | None


def search_run(
    *,
    project: Project,
    index: IndexVersion,
    query: str,
    mode: str = "hybrid",
    k: int = 10,
    alpha: float = 0.5,
    reranker: ModelVersion | None = None,
    rerank_top_n: int = 50,
    filters: dict[str, str] | None = None,
    user: Any = None,
    via: str = "ui",
) -> SearchOutcome:
    """Search one index version, record the per-stage latency, and return hits with passages and judgments."""
    if index.project_id != project.pk:
        raise WorkbenchError("That index belongs to another project.")
    if mode not in SEARCH_MODES:
        raise WorkbenchError(f"mode must be one of {', '.join(SEARCH_MODES)}")
    if not 1 <= k <= MAX_K:
        raise WorkbenchError(f"k must be between 1 and {MAX_K}")
    if len(query) > MAX_QUERY_CHARS:
        raise WorkbenchError(f"The query has {len(query):,} characters; the limit is {MAX_QUERY_CHARS:,}.")
    docs = documents_filtered(index, filters or {})
    allowed = None
    if docs is not None:
        allowed = set(Passage.objects.filter(document__in=docs).values_list("id", flat=True))
    rerank = reranker_for(reranker) if reranker is not None else None
    engine = engine_for(index)
    try:
        result = engine.search(
            query,
            mode=mode,
            k=k,
            alpha=alpha,
            rerank=rerank,
            rerank_top_n=rerank_top_n,
            allowed_ids=allowed,
        )
    except RetrievalError as exc:
        raise WorkbenchError(str(exc)) from None
    SearchLog.objects.create(
        project=project,
        index=index,
        mode=mode,
        reranked=rerank is not None,
        via=via,
        timings_ms=result.timings_ms,
        total_ms=result.timings_ms["total"],
        user=user if getattr(user, "is_authenticated", False) else None,
    )
    known = Query.objects.filter(project=project, text=result.query).first()
    return SearchOutcome(result, hits_hydrate(result, known), index, known)


def hits_hydrate(result: SearchResult, query: Query | None) -> list[dict[str, Any]]:
    """Hits joined with their passage, document and (when the query is a known one) its judgments."""
    ids = result.passage_ids
    passages = {
        p.pk: p for p in Passage.objects.filter(pk__in=ids).select_related("document").only(
            "id", "ordinal", "text", "char_start", "char_end",
            "document__id", "document__external_id", "document__title", "document__tenant", "document__doc_type",
        )
    }  # fmt: skip
    grades: dict[int, int] = {}
    if query is not None:
        grades = grades_gold(query=query, document_ids={p.document_id for p in passages.values()})
    out = []
    for rank, hit in enumerate(result.hits, start=1):
        passage = passages.get(hit.passage_id)
        if passage is None:  # deleted since the index was built
            continue
        out.append(
            {
                "rank": rank,
                "passage_id": hit.passage_id,
                "document_id": passage.document.external_id,
                "document_pk": passage.document_id,
                "title": passage.document.title,
                "ordinal": passage.ordinal,
                "text": passage.text,
                "score": hit.score,
                "scores": {
                    "dense": hit.dense_score,
                    "bm25": hit.bm25_score,
                    "fused": hit.fused_score,
                    "rerank": hit.rerank_score,
                },
                "judgment": grades.get(passage.document_id),
            }
        )
    return out


def search_params_parse(project: Project, data: dict[str, Any], *, default_index: IndexVersion | None = None) -> dict:
    """Turn request parameters (query string, form or JSON) into ``search_run`` keyword arguments; errors say why."""

    def number(name: str, default: float, kind: type) -> Any:
        raw = data.get(name, default)
        if raw in (None, ""):
            return default
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise WorkbenchError(f"{name} must be a number (got {raw!r})") from None

    index_id = data.get("index")
    if index_id in (None, ""):
        if default_index is None:
            raise WorkbenchError("No index to search: build one on the Indexes page first.")
        index = default_index
    else:
        index = (
            IndexVersion.objects.filter(project=project, pk=number("index", 0, int)).select_related("encoder").first()
        )
        if index is None:
            raise NotFoundError(f"No index {index_id} in this project.")
    reranker = None
    if data.get("rerank") not in (None, "", "0", 0):
        reranker = rerankers_offered(project).filter(pk=number("rerank", 0, int)).first()
        if reranker is None:
            raise NotFoundError(f"No trained reranker {data.get('rerank')} in this project.")
    alpha = number("alpha", 0.5, float)
    if not 0.0 <= alpha <= 1.0:
        raise WorkbenchError("alpha must be between 0 and 1")
    filters = data.get("filters") or {}
    if not isinstance(filters, dict):
        raise WorkbenchError("filters must be an object")
    filters = {**filters, **{f: data[f] for f in FILTERS if data.get(f) not in (None, "")}}
    return {
        "index": index,
        "query": str(data.get("q") or data.get("query") or ""),
        "mode": str(data.get("mode") or "hybrid"),
        "k": number("k", 10, int),
        "alpha": alpha,
        "reranker": reranker,
        "rerank_top_n": number("rerank_top_n", 50, int),
        "filters": filters,
    }


def default_index(project: Project) -> IndexVersion | None:
    return (
        IndexVersion.objects.filter(project=project).select_related("encoder", "corpus").order_by("-created_at").first()
    )
