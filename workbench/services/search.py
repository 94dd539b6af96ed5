"""Search through a search configuration, shared by the search page and the JSON API.

Which configuration answers: the one the request names (a saved configuration, or explicit index/mode/... giving an
ad-hoc one), else the one the project serves (``ServingRecord``), never "the newest index". Every search is logged
with its per-stage timings (including the cold-start "load" stage) and which configuration answered.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from workbench.errors import NotFoundError, WorkbenchError
from workbench.models import Document, IndexVersion, Passage, Project, Query, SearchConfiguration, SearchLog
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.search import DEFAULT_FUSION_DEPTH, MAX_K, MAX_QUERY_CHARS, SearchResult
from workbench.selectors import grades_gold
from workbench.services.configurations import rerankers_offered, search_configuration_draft, served_arm
from workbench.services.engines import backend_choice, engine_load, reranker_load

FILTERS = ("tenant", "doc_type", "date_from", "date_to", "tag")
EXPLICIT = (
    "index", "mode", "alpha", "fusion_depth", "rerank", "rerank_top_n", "rerank_adaptive", "rerank_min_n",
    "rerank_margin", "rerank_weight",
)  # fmt: skip
CUSTOM, SERVED = "custom", "served"  # the search page's two choices besides a saved configuration
# One result per document: the engine ranks this many passages per wanted document (at least PER_DOCUMENT_MIN), so
# k distinct documents are found even when documents have several passages near the top.
PER_DOCUMENT_FACTOR, PER_DOCUMENT_MIN = 5, 50
MORE_PER_DOCUMENT = 5  # other passages of a document offered under "more from this document"


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
    configuration: SearchConfiguration
    served: bool
    query: Query | None
    arm: str = ""
    per_document: bool = False
    passages_ranked: int = 0  # how deep the engine ranked passages (k, or deeper for one result per document)
    rerank_depth: int | None = None  # candidates the reranker scored (fewer than top n under adaptive depth)
    backends: dict[str, str] | None = None  # inference backend per stage ("embed", "rerank")

    @property
    def index(self) -> IndexVersion:
        return self.configuration.index


def per_document_depth(k: int) -> int:
    return min(MAX_K, max(k * PER_DOCUMENT_FACTOR, PER_DOCUMENT_MIN, k))


def hits_by_document(hits: list[dict[str, Any]], *, k: int, more: int = MORE_PER_DOCUMENT) -> list[dict[str, Any]]:
    """Passage hits (best first) -> at most ``k`` documents, each its best passage with up to ``more`` of its other
    passages from the same list under ``"more"``; ranks are document ranks. A document's score is its best passage's
    (max-passage, as evaluation ranks documents)."""
    out: list[dict[str, Any]] = []
    by_doc: dict[int, dict[str, Any]] = {}
    for hit in hits:
        doc = by_doc.get(hit["document_pk"])
        if doc is None:
            if len(out) == k:
                continue
            doc = {**hit, "rank": len(out) + 1, "passage_rank": hit["rank"], "more": []}
            by_doc[hit["document_pk"]] = doc
            out.append(doc)
        elif len(doc["more"]) < more:
            doc["more"].append(
                {key: hit[key] for key in ("passage_id", "ordinal", "text", "score")} | {"passage_rank": hit["rank"]}
            )
    return out


def search_run(
    *,
    project: Project,
    configuration: SearchConfiguration,
    query: str,
    k: int = 10,
    filters: dict[str, str] | None = None,
    served: bool = False,
    arm: str = "",
    shadow: SearchConfiguration | None = None,
    answered_ids: list[int] | None = None,
    user: Any = None,
    via: str = "ui",
    per_document: bool = False,
) -> SearchOutcome:
    """Search with one configuration, record the per-stage latency, and return hits with passages and judgments.

    ``served``: the configuration answered because the project serves it (the request named none). ``shadow``:
    searched too, off the request thread, and logged only. ``answered_ids``: for a shadow search, the passages the
    answering configuration returned (their overlap with this one's top 10 is logged).
    ``per_document``: one hit per document (its best passage, with its other passages under ``"more"``), from a
    deeper passage list (``per_document_depth(k)``); the timings are those of that deeper search plus a "group"
    stage, so they stay what the user waited for.
    """
    index = configuration.index
    if configuration.project_id != project.pk or index.project_id != project.pk:
        raise WorkbenchError("That configuration belongs to another project.")
    if not 1 <= k <= MAX_K:
        raise WorkbenchError(f"k must be between 1 and {MAX_K}")
    if len(query) > MAX_QUERY_CHARS:
        raise WorkbenchError(f"The query has {len(query):,} characters; the limit is {MAX_QUERY_CHARS:,}.")
    docs = documents_filtered(index, filters or {})
    allowed = None
    if docs is not None:
        allowed = set(Passage.objects.filter(document__in=docs).values_list("id", flat=True))
    rerank, rerank_load_ms = (None, 0.0)
    if configuration.reranker_id:
        rerank, rerank_load_ms = reranker_load(configuration.reranker)
    engine, index_load_ms = engine_load(index)
    depth = per_document_depth(k) if per_document else k
    try:
        result = engine.search_spec(query, configuration.spec, k=depth, rerank=rerank, allowed_ids=allowed)
    except RetrievalError as exc:
        raise WorkbenchError(str(exc)) from None
    load_ms = round(index_load_ms + rerank_load_ms, 3)
    if load_ms:  # a cold start is part of what this user waited for
        result.timings_ms["load"] = load_ms
        result.timings_ms["total"] = round(result.timings_ms["total"] + load_ms, 3)
    used = stage_backends(result, index)
    rerank_depth = result.params.get("rerank_candidates") if rerank is not None else None
    known = Query.objects.filter(project=project, text=result.query).first()
    t0 = time.perf_counter()
    hits = hits_hydrate(result, known)
    if per_document:
        hits = hits_by_document(hits, k=k)
        group_ms = round((time.perf_counter() - t0) * 1000, 3)  # reading the deeper list's passages + grouping
        result.timings_ms["group"] = group_ms
        result.timings_ms["total"] = round(result.timings_ms["total"] + group_ms, 3)
    SearchLog.objects.create(
        project=project,
        index=index,
        configuration=configuration if configuration.pk else None,
        served=served,
        mode=configuration.mode,
        reranked=rerank is not None,
        rerank_depth=rerank_depth,
        backends=used,
        via=via,
        timings_ms=result.timings_ms,
        total_ms=result.timings_ms["total"],
        top_score=result.hits[0].score if result.hits else None,
        overlap_at_10=overlap_at_10(answered_ids, result.passage_ids) if answered_ids is not None else None,
        arm=arm,
        user=user if getattr(user, "is_authenticated", False) else None,
    )
    if shadow is not None:
        shadow_submit(
            project=project, configuration=shadow, query=query, k=k, filters=filters, via=via, user=user,
            answered_ids=result.passage_ids,
        )  # fmt: skip
    return SearchOutcome(
        result, hits, configuration, served, known, arm=arm, per_document=per_document, passages_ranked=depth,
        rerank_depth=rerank_depth, backends=used,
    )  # fmt: skip


def stage_backends(result: SearchResult, index: IndexVersion) -> dict[str, str]:
    """Backend label per stage that ran one; a query encoder on the default path because the measurement was made
    on another CPU says so."""
    used = {}
    if embed := result.params.get("embed_backend"):
        choice = backend_choice(index.encoder)
        used["embed"] = f"{embed} (fallback)" if choice.note and not choice.backend else embed
    if rerank := result.params.get("rerank_backend"):
        used["rerank"] = rerank
    return used


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


def _flag(value: Any, default: bool) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "on", "yes"}
    return bool(value)


def search_params_parse(project: Project, data: dict[str, Any], *, caller: str = "") -> dict:
    """Turn request parameters (query string, form or JSON) into ``search_run`` keyword arguments; errors say why.

    ``configuration`` (id) picks a saved configuration; ``index`` (id) with ``mode``, ``alpha``, ``fusion_depth``,
    ``rerank`` and ``rerank_top_n`` makes an ad-hoc one; with neither, the project's served configuration answers
    (and any of those settings given override its own, as an ad-hoc configuration). ``caller`` (a user or token id)
    keeps a caller in the same release arm when a canary takes a share of the traffic.
    """

    def number(name: str, default: float, kind: type) -> Any:
        raw = data.get(name, default)
        if raw in (None, ""):
            return default
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise WorkbenchError(f"{name} must be a number (got {raw!r})") from None

    served, arm, shadow = False, "", None
    choice = data.get("configuration")
    if choice == CUSTOM:  # the search page's "custom settings": the explicit parameters below decide
        choice = None
    elif choice == SERVED:  # the search page's "served": whatever the form's other fields say
        choice, data = None, {k: v for k, v in data.items() if k not in EXPLICIT}
    elif choice not in (None, ""):
        data = {k: v for k, v in data.items() if k not in EXPLICIT}  # a saved configuration fixes these
    if choice not in (None, ""):
        configuration = (
            SearchConfiguration.objects.filter(project=project, pk=number("configuration", 0, int))
            .select_related("index__encoder", "index__corpus", "reranker")
            .first()
        )
        if configuration is None:
            raise NotFoundError(f"No search configuration {data.get('configuration')} in this project.")
    else:
        base = None
        if data.get("index") not in (None, ""):
            index = (
                IndexVersion.objects.filter(project=project, pk=number("index", 0, int))
                .select_related("encoder", "corpus")
                .first()
            )
            if index is None:
                raise NotFoundError(f"No index {data.get('index')} in this project.")
        else:
            base, arm, shadow = served_arm(project, caller)
            if base is None:
                raise WorkbenchError(
                    "This project serves no search configuration yet: an ML lead picks one on the Configurations "
                    "page (or name an index or configuration in the request)."
                )
            index = base.index
        if base is not None and not any(data.get(name) not in (None, "") for name in EXPLICIT):
            configuration, served = base, True
        else:
            # Explicit settings (on the served configuration's when the request names no index): no release arm.
            arm, shadow = "", None
            reranker = base.reranker if base is not None else None
            if data.get("rerank") not in (None, ""):
                reranker = None
                if data.get("rerank") not in ("0", 0):
                    reranker = rerankers_offered(project).filter(pk=number("rerank", 0, int)).first()
                    if reranker is None:
                        raise NotFoundError(f"No trained reranker {data.get('rerank')} in this project.")
            configuration = search_configuration_draft(
                project=project,
                index=index,
                mode=str(data.get("mode") or (base.mode if base else "hybrid")),
                alpha=number("alpha", base.alpha if base else 0.5, float),
                fusion_depth=number("fusion_depth", base.fusion_depth if base else DEFAULT_FUSION_DEPTH, int),
                reranker=reranker,
                rerank_top_n=number("rerank_top_n", base.rerank_top_n if base else 50, int),
                rerank_adaptive=_flag(data.get("rerank_adaptive"), base.rerank_adaptive if base else False),
                rerank_min_n=number("rerank_min_n", base.rerank_min_n if base else 10, int),
                rerank_margin=number("rerank_margin", base.rerank_margin if base else 0.5, float),
                rerank_weight=number("rerank_weight", base.rerank_weight if base else 1.0, float),
            )
    filters = data.get("filters") or {}
    if not isinstance(filters, dict):
        raise WorkbenchError("filters must be an object")
    filters = {**filters, **{f: data[f] for f in FILTERS if data.get(f) not in (None, "")}}
    per_document = data.get("per_document", False)
    if isinstance(per_document, str):
        per_document = per_document.strip().lower() in {"1", "true", "on", "yes"}
    return {
        "configuration": configuration,
        "served": served,
        "arm": arm,
        "shadow": shadow,
        "query": str(data.get("q") or data.get("query") or ""),
        "k": number("k", 10, int),
        "filters": filters,
        "per_document": bool(per_document),
    }


# Shadow searches run off the request thread: the caller never waits for the candidate.
_shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow-search")
SHADOW_INLINE = False  # tests run them inline, inside the test's transaction
log = logging.getLogger(__name__)


def overlap_at_10(answered: list[int], other: list[int]) -> float:
    """Share of the answered top 10 that the other list also has in its top 10."""
    top = answered[:10]
    return len(set(top) & set(other[:10])) / len(top) if top else 1.0


def shadow_submit(
    *,
    project: Project,
    configuration: SearchConfiguration,
    query: str,
    k: int,
    filters: Any,
    via: str,
    user: Any,
    answered_ids: list[int],
) -> None:
    """Search the shadow configuration with the same request and log it (arm "shadow"); failures are logged only."""

    def run() -> None:
        try:
            search_run(
                project=project, configuration=configuration, query=query, k=k, filters=filters, arm="shadow",
                via=via, user=user, answered_ids=answered_ids,
            )  # fmt: skip
        except Exception:
            log.warning("shadow search with %s failed", configuration, exc_info=True)
        finally:
            if not SHADOW_INLINE:
                connection.close()

    if SHADOW_INLINE:
        run()
    else:
        _shadow_pool.submit(run)
