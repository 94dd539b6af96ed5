"""Running one search configuration over many queries: passage hits -> document rankings, latency, top-1 scores.

Evaluation runs use it today; pooling for judging campaigns and hard-negative mining will too, which is why it lives
in the core (no app above needs importing).

Judgments are per document (BEIR qrels) while the engine ranks passages, so a document scores the maximum score of
its passages, which is its first occurrence in a ranked passage list. The engine is asked for ``PASSAGES_PER_DOC x
depth`` passages so that ``depth`` distinct documents are usually available after aggregation.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from workbench.models import Passage, SearchConfiguration
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.rerank import Reranker
from workbench.retrieval.search import MAX_K, TIMING_STAGES, Hit, LoadedIndex, SearchSpec
from workbench.services.engines import engine_for, reranker_for

AGGREGATION = "max passage score per document"
PASSAGES_PER_DOC = 3
_LOOKUP_CHUNK = 500

Progress = Callable[[int, str], None]  # (queries done in this config, message)


def passages_to_retrieve(depth: int) -> int:
    """How many passages to ask for so that ``depth`` documents remain after aggregation (the engine's cap)."""
    return min(MAX_K, PASSAGES_PER_DOC * depth)


def doc_scores(hits: Iterable[Hit], doc_of: Mapping[int, str], depth: int) -> dict[str, float]:
    """The top ``depth`` documents by their best passage's score (passages of unknown documents are skipped)."""
    best: dict[str, float] = {}
    for hit in hits:
        doc = doc_of.get(hit.passage_id)
        if doc is not None and doc not in best:  # hits are sorted by score: the first is the maximum
            best[doc] = float(hit.score)
    # Truncate in the pinned evaluation order (DESIGN.md: score descending, doc id ascending) so ties at the
    # boundary keep the documents the metrics would rank first.
    return {doc: best[doc] for doc in heapq.nsmallest(depth, best, key=lambda d: (-best[d], d))}


class PassageDocuments:
    """Passage id -> document external id, looked up lazily in chunks and shared across configurations."""

    def __init__(self, corpus_id: int) -> None:
        self.corpus_id = corpus_id
        self.known: dict[int, str] = {}
        self._missing: set[int] = set()

    def resolve(self, passage_ids: Iterable[int]) -> Mapping[int, str]:
        wanted = sorted({int(p) for p in passage_ids} - self.known.keys() - self._missing)
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start : start + _LOOKUP_CHUNK]
            rows = Passage.objects.filter(pk__in=chunk, corpus_id=self.corpus_id).values_list(
                "pk", "document__external_id"
            )
            found = dict(rows)
            self.known.update(found)
            # Deleted since the index was built: such hits cannot be mapped to a judged document.
            self._missing.update(set(chunk) - found.keys())
        return self.known

    @property
    def missing_count(self) -> int:
        return len(self._missing)


@dataclass
class ConfigOutcome:
    """What one configuration produced over the query set."""

    run: dict[str, dict[str, float]] = field(default_factory=dict)  # qid -> {doc: score}
    timings: list[dict[str, float]] = field(default_factory=list)
    top1: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # qid -> why it could not be searched


def configuration_run(
    configuration: SearchConfiguration,
    queries: Sequence[tuple[str, str]],
    *,
    depth: int,
    documents: PassageDocuments | None = None,
    progress: Progress | None = None,
) -> ConfigOutcome:
    """Search every (qid, text) with a saved or draft configuration: its engine and reranker are loaded here."""
    engine = engine_for(configuration.index)
    reranker = reranker_for(configuration.reranker) if configuration.reranker_id else None
    return run_config(
        engine,
        queries,
        spec=configuration.spec,
        reranker=reranker,
        depth=depth,
        documents=documents or PassageDocuments(configuration.index.corpus_id),
        progress=progress,
    )


def run_config(
    engine: LoadedIndex,
    queries: Sequence[tuple[str, str]],
    *,
    spec: SearchSpec,
    reranker: Reranker | None,
    depth: int,
    documents: PassageDocuments,
    progress: Progress | None = None,
    batch: int = 50,
) -> ConfigOutcome:
    """Search every (qid, text) and aggregate passages to documents; timings are the engine's per-stage ms."""
    k = passages_to_retrieve(depth)
    out = ConfigOutcome()
    if queries:
        # Untimed warm-up: the first call pays for lazy initialisation that no user query would see.
        with contextlib.suppress(RetrievalError):
            engine.search_spec(queries[0][1], spec, k=k, rerank=reranker)
    pending: list[tuple[str, list[Hit]]] = []

    def flush() -> None:
        doc_of = documents.resolve(h.passage_id for _, hits in pending for h in hits)
        for qid, hits in pending:
            scores = doc_scores(hits, doc_of, depth)
            out.run[qid] = scores
            if scores:
                out.top1[qid] = max(scores.values())
        pending.clear()

    for done, (qid, text) in enumerate(queries, start=1):
        try:
            result = engine.search_spec(text, spec, k=k, rerank=reranker)
        except RetrievalError as exc:
            out.failed[qid] = str(exc)
            out.run[qid] = {}
        else:
            out.timings.append(result.timings_ms)
            pending.append((qid, result.hits))
        if len(pending) >= batch:
            flush()
        if progress is not None:
            progress(done, qid)
    flush()
    # A query that could not be searched stays in the run with no documents: it scores 0, never disappears.
    return out


def latency_percentiles(timings: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """p50/p95/p99 (ms) per stage over the searches in which the stage ran."""
    stats: dict[str, dict[str, float]] = {}
    for stage in TIMING_STAGES:
        values = np.array([t.get(stage, 0.0) for t in timings if t.get(stage, 0.0) > 0.0])
        if values.size:
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            stats[stage] = {"n": int(values.size), "p50": float(p50), "p95": float(p95), "p99": float(p99)}
    return stats
