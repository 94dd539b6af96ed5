"""Query-time search over an index directory: dense, BM25 or hybrid (RRF), optionally reranked and filtered.

``load_index`` loads an index directory once per process (FAISS memory-mapped, BM25, ids, stored texts and the
encoder) and caches it; ``LoadedIndex.search`` returns ranked hits with every stage's score and per-stage timings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.retrieval.adaptive import DEFAULT_MARGIN, DEFAULT_MIN_N, adaptive_rerank_depth, tail_scores
from workbench.retrieval.artifacts import read_manifest
from workbench.retrieval.blend import blend_scores
from workbench.retrieval.bm25 import BM25Index, load_bm25
from workbench.retrieval.cache import BoundedCache
from workbench.retrieval.encoders import embedding_dimension, encode_query, load_encoder, model_fingerprint
from workbench.retrieval.errors import QueryTooLongError, RetrievalError
from workbench.retrieval.faiss_index import DenseIndex, load_dense_index
from workbench.retrieval.fusion import DEFAULT_RRF_K, reciprocal_rank_fusion
from workbench.retrieval.index_build import BM25_SUBDIR
from workbench.retrieval.passage_store import PassageStore, has_texts
from workbench.retrieval.rerank import Reranker
from workbench.retrieval.sentence_vectors import SentenceVectorStore, has_sentence_vectors

MAX_QUERY_CHARS = 10_000
MAX_K = 1000
SEARCH_MODES = ("dense", "bm25", "hybrid")
# How many candidates each list contributes to hybrid fusion: deeper lists let a passage found by only one retriever
# still make the fused top k.
DEFAULT_FUSION_DEPTH = 100
# "load" is the cold start: loading a model or index this process had not loaded yet (0 when warm).
TIMING_STAGES = ("load", "embed", "dense", "bm25", "fuse", "rerank", "total")

PassageTexts = Callable[[list[int]], list[str]]


@dataclass(frozen=True)
class Hit:
    """One ranked passage. ``score`` is the final stage's score; the others are None where a stage did not run."""

    passage_id: int
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None
    fused_score: float | None = None
    rerank_score: float | None = None


@dataclass(frozen=True)
class SearchResult:
    """Hits best first (score descending, ties by passage id), timings in milliseconds, and the settings used."""

    query: str
    mode: str
    hits: list[Hit]
    timings_ms: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    # The query's unit vector when the search embedded it (dense / hybrid), so a caller scoring the same text against
    # the same encoder's vectors (the answer sentence scorer) need not embed it again.
    query_vector: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def passage_ids(self) -> list[int]:
        return [hit.passage_id for hit in self.hits]


@dataclass(frozen=True)
class SearchSpec:
    """How to search an index, apart from which index and reranker: the engine half of a search configuration.

    ``alpha`` and ``fusion_depth`` matter only in hybrid mode and ``rerank_top_n`` only with a reranker;
    ``rerank_adaptive`` reranks fewer candidates when the first stage is confident (``workbench.retrieval.adaptive``:
    at least ``rerank_min_n``, those within ``rerank_margin`` of the score spread from the top); ``rerank_weight``
    below 1 blends the reranker's scores with the first stage's (``workbench.retrieval.blend``);
    ``normalised`` resets what does not matter, so two specs that rank alike compare equal.
    """

    mode: str = "hybrid"
    alpha: float = 0.5
    fusion_depth: int = DEFAULT_FUSION_DEPTH
    rerank_top_n: int = 50
    rerank_adaptive: bool = False
    rerank_min_n: int = DEFAULT_MIN_N
    rerank_margin: float = DEFAULT_MARGIN
    rerank_weight: float = 1.0

    def check(self) -> SearchSpec:
        """Raise ``RetrievalError`` naming the first bad field; return self."""
        if self.mode not in SEARCH_MODES:
            raise RetrievalError(f"mode must be one of {', '.join(SEARCH_MODES)} (got {self.mode!r})")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise RetrievalError(f"the dense weight alpha must be between 0 and 1 (got {self.alpha})")
        if not 1 <= int(self.fusion_depth) <= MAX_K:
            raise RetrievalError(f"fusion depth must be between 1 and {MAX_K} (got {self.fusion_depth})")
        if not 1 <= int(self.rerank_top_n) <= MAX_K:
            raise RetrievalError(f"rerank top n must be between 1 and {MAX_K} (got {self.rerank_top_n})")
        if self.rerank_adaptive:
            if not 1 <= int(self.rerank_min_n) <= int(self.rerank_top_n):
                raise RetrievalError(
                    f"the adaptive rerank minimum must be between 1 and rerank top n {self.rerank_top_n} "
                    f"(got {self.rerank_min_n})"
                )
            if not 0.0 <= float(self.rerank_margin) <= 1.0:
                raise RetrievalError(f"the adaptive rerank margin must be between 0 and 1 (got {self.rerank_margin})")
        if not 0.0 < float(self.rerank_weight) <= 1.0:
            raise RetrievalError(
                f"the rerank weight must be above 0 and at most 1 (got {self.rerank_weight}); 1 is the reranker alone"
            )
        return self

    def normalised(self, *, reranked: bool) -> SearchSpec:
        hybrid = self.mode == "hybrid"
        adaptive = reranked and bool(self.rerank_adaptive)
        return SearchSpec(
            mode=self.mode,
            alpha=round(float(self.alpha), 6) if hybrid else 0.5,
            fusion_depth=int(self.fusion_depth) if hybrid else DEFAULT_FUSION_DEPTH,
            rerank_top_n=int(self.rerank_top_n) if reranked else 50,
            rerank_adaptive=adaptive,
            rerank_min_n=int(self.rerank_min_n) if adaptive else DEFAULT_MIN_N,
            rerank_margin=round(float(self.rerank_margin), 6) if adaptive else DEFAULT_MARGIN,
            rerank_weight=round(float(self.rerank_weight), 6) if reranked else 1.0,
        )

    def describe(self, reranker: str | None = None) -> str:
        parts = [self.mode]
        if self.mode == "hybrid":
            parts.append(f"α={self.alpha:g}")
            if self.fusion_depth != DEFAULT_FUSION_DEPTH:
                parts.append(f"fusion depth {self.fusion_depth}")
        if reranker:
            parts.append(f"rerank {reranker} top {self.rerank_top_n}")
            if self.rerank_adaptive:
                parts.append(f"adaptive ≥{self.rerank_min_n}, margin {self.rerank_margin:g}")
            if self.rerank_weight < 1.0:
                parts.append(f"blended {self.rerank_weight:g} reranker / {1 - self.rerank_weight:g} first stage")
        return " · ".join(parts)


def check_query(query: str) -> str:
    """Validate a query: non-empty and at most ``MAX_QUERY_CHARS`` characters. Returns it stripped."""
    if not isinstance(query, str):
        raise RetrievalError("the query must be text")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryTooLongError(f"the query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    text = query.strip()
    if not text:
        raise RetrievalError("the query is empty")
    return text


class _Timer:
    def __init__(self) -> None:
        self.ms = dict.fromkeys(TIMING_STAGES, 0.0)
        self._start = time.perf_counter()

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.ms[stage] += (now - since) * 1000.0
        return now

    def finish(self) -> dict[str, float]:
        self.ms["total"] = (time.perf_counter() - self._start) * 1000.0
        return {k: round(v, 3) for k, v in self.ms.items()}


class LoadedIndex:
    """An index directory loaded for serving. Prefer ``load_index`` (cached) to constructing it directly."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        encoder_path: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        mmap: bool = True,
        verify_encoder: bool = True,
        query_encoder: Any = None,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.manifest = read_manifest(self.directory)
        self.dense: DenseIndex = load_dense_index(self.directory, mmap=mmap)
        self.bm25: BM25Index = load_bm25(self.directory / BM25_SUBDIR, mmap=mmap)
        if not np.array_equal(self.dense.ids, self.bm25.ids):
            raise RetrievalError(f"{self.directory}: dense and BM25 indexes list different passages")
        self.texts = PassageStore(self.directory) if has_texts(self.directory) else None
        self.sentences = (
            SentenceVectorStore(self.directory, passage_count=len(self.dense))
            if has_sentence_vectors(self.directory)
            else None
        )
        encoder_info = self.manifest.get("encoder") or {}
        path = encoder_path or encoder_info.get("path")
        if not path:
            raise RetrievalError(f"{self.directory}: the manifest names no encoder; pass encoder_path")
        self.encoder = load_encoder(path, device=device)
        if embedding_dimension(self.encoder) != self.dense.dim:
            raise RetrievalError(
                f"dimension mismatch: the encoder at {path} makes {embedding_dimension(self.encoder)}-d vectors "
                f"but the index holds {self.dense.dim}-d vectors"
            )
        # What embeds queries: a backend object (``workbench.retrieval.backends``) or the torch float32 path.
        self.query_encoder = query_encoder
        expected = encoder_info.get("fingerprint")
        if verify_encoder and expected and model_fingerprint(path) != expected:
            raise RetrievalError(
                f"the encoder at {path} is not the one this index was built with (fingerprint differs)"
            )

    @property
    def passage_count(self) -> int:
        return len(self.dense)

    def texts_for(self, passage_ids: Sequence[int]) -> list[str]:
        """Stored texts of the given passages (the index must have been built with ``store_texts``)."""
        if self.texts is None:
            raise RetrievalError(f"{self.directory} stores no passage texts; pass passage_texts to search")
        rows = self.dense.rows_for_ids(np.asarray(passage_ids, dtype=np.int64))
        by_id = dict(zip(np.asarray(self.dense.ids)[rows].tolist(), self.texts.get(rows), strict=True))
        missing = [pid for pid in passage_ids if pid not in by_id]
        if missing:
            raise RetrievalError(f"passages {missing[:5]} are not in this index")
        return [by_id[pid] for pid in passage_ids]

    def stored_sentence_vectors(self, passage_id: int, text: str) -> dict[tuple[int, int], np.ndarray]:
        """{(start, end): unit vector} of the citable sentences of ``text``, passage ``passage_id``'s text, as
        embedded at build time; empty when the index stores none for it (older index, passage changed since)."""
        if self.sentences is None:
            return {}
        rows = self.dense.rows_for_ids(np.asarray([passage_id], dtype=np.int64))
        return self.sentences.for_row(int(rows[0]), len(text)) if len(rows) else {}

    def search(
        self,
        query: str,
        *,
        mode: str = "hybrid",
        k: int = 10,
        alpha: float = 0.5,
        rrf_k: int = DEFAULT_RRF_K,
        fusion_depth: int = DEFAULT_FUSION_DEPTH,
        rerank: Reranker | None = None,
        rerank_top_n: int = 50,
        rerank_adaptive: bool = False,
        rerank_min_n: int = DEFAULT_MIN_N,
        rerank_margin: float = DEFAULT_MARGIN,
        rerank_weight: float = 1.0,
        allowed_ids: Iterable[int] | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        passage_texts: PassageTexts | None = None,
    ) -> SearchResult:
        """Search the index.

        - ``mode``: ``dense`` (FAISS), ``bm25`` or ``hybrid`` (reciprocal-rank fusion of both lists, each
          ``fusion_depth`` deep; ``alpha`` weighs dense, ``1 - alpha`` BM25).
        - ``rerank``: a ``Reranker`` rescoring the first-stage top ``max(k, rerank_top_n)``, so every returned hit
          carries a rerank score. Texts come from ``passage_texts(ids)`` or the index's stored texts.
          ``rerank_adaptive``: rerank only the first ``adaptive_rerank_depth`` of the top ``rerank_top_n`` (at least
          ``rerank_min_n``); the rest keep first-stage order below them (``rerank_score`` None). The depth reranked
          is ``params["rerank_candidates"]``, the reranker's backend ``params["rerank_backend"]``.
          ``rerank_weight`` < 1: the reranked candidates are ordered by ``blend_scores`` of their first-stage and
          rerank scores (a hit's ``score``; ``rerank_score`` stays the reranker's own).
        - ``allowed_ids``: only these passages may be returned (a metadata filter applied inside each retriever).
        - ``ef_search`` / ``nprobe``: per-call HNSW / IVF search depth (the index defaults otherwise).
        """
        text = check_query(query)
        if mode not in SEARCH_MODES:
            raise RetrievalError(f"mode must be one of {', '.join(SEARCH_MODES)} (got {mode!r})")
        if not 1 <= k <= MAX_K:
            raise RetrievalError(f"k must be between 1 and {MAX_K} (got {k})")
        if rerank is not None and rerank_top_n < 1:
            raise RetrievalError(f"rerank_top_n must be at least 1 (got {rerank_top_n})")
        if not 0.0 < rerank_weight <= 1.0:
            raise RetrievalError(f"the rerank weight must be above 0 and at most 1 (got {rerank_weight})")
        timer = _Timer()
        settings: dict[str, Any] = {"k": k, "mode": mode, "filtered": allowed_ids is not None}
        n_first = max(k, rerank_top_n) if rerank is not None else k
        depth = max(n_first, fusion_depth) if mode == "hybrid" else n_first

        allowed_rows = None
        if allowed_ids is not None:
            allowed_rows = self.dense.rows_for_ids(np.fromiter((int(i) for i in allowed_ids), dtype=np.int64))
            settings["allowed_count"] = int(allowed_rows.size)
            if allowed_rows.size == 0:
                return SearchResult(text, mode, [], timer.finish(), settings)

        dense_scores: dict[int, float] = {}
        bm25_scores: dict[int, float] = {}
        vector = None
        if mode in ("dense", "hybrid"):
            t = time.perf_counter()
            if self.query_encoder is not None:
                vector = self.query_encoder.encode_query(text)
                settings["embed_backend"] = getattr(self.query_encoder, "name", "")
            else:
                vector = encode_query(self.encoder, text)
                settings["embed_backend"] = "torch-fp32"
            t = timer.add("embed", t)
            ids, scores = self.dense.search(
                vector, depth, ef_search=ef_search, nprobe=nprobe, allowed_rows=allowed_rows
            )
            timer.add("dense", t)
            dense_scores = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
            settings.update(ef_search=ef_search, nprobe=nprobe)
        if mode in ("bm25", "hybrid"):
            t = time.perf_counter()
            ids, scores = self.bm25.search(text, depth, allowed_rows=allowed_rows)
            timer.add("bm25", t)
            bm25_scores = {int(i): float(s) for i, s in zip(ids, scores, strict=True)}

        fused_scores: dict[int, float] = {}
        if mode == "hybrid":
            t = time.perf_counter()
            fused = reciprocal_rank_fusion(_ranked(dense_scores), _ranked(bm25_scores), alpha=alpha, k=rrf_k)
            fused_scores = dict(zip(fused.ids.tolist(), fused.scores.tolist(), strict=True))
            timer.add("fuse", t)
            settings.update(alpha=alpha, rrf_k=rrf_k, fusion_depth=depth)
            first_stage = fused_scores
        else:
            first_stage = dense_scores if mode == "dense" else bm25_scores

        ranked = _ranked(first_stage)[:n_first]
        final = {pid: first_stage[pid] for pid in ranked}
        rerank_scores: dict[int, float] = {}
        if rerank is not None and ranked:
            t = time.perf_counter()
            head = ranked
            if rerank_adaptive:
                depth = adaptive_rerank_depth(
                    [first_stage[pid] for pid in ranked],
                    top_n=rerank_top_n,
                    min_n=rerank_min_n,
                    margin=rerank_margin,
                )
                head = ranked[:depth]
                settings.update(rerank_adaptive=True, rerank_min_n=rerank_min_n, rerank_margin=rerank_margin)
            texts = passage_texts(head) if passage_texts is not None else self.texts_for(head)
            values = np.asarray(rerank.score(text, list(texts)), dtype=np.float64)
            if values.shape != (len(head),):
                raise RetrievalError(f"the reranker returned {values.shape} scores for {len(head)} passages")
            rerank_scores = dict(zip(head, values.tolist(), strict=True))
            if rerank_weight < 1.0:
                values = blend_scores([first_stage[pid] for pid in head], values, rerank_weight)
                settings["rerank_weight"] = rerank_weight
            final = dict(zip(head, values.tolist(), strict=True))
            tail = ranked[len(head) :]
            if tail:
                final.update(zip(tail, tail_scores(float(values.min()), len(tail)), strict=True))
            timer.add("rerank", t)
            settings["rerank_candidates"] = len(head)
            settings["rerank_backend"] = getattr(rerank, "name", "")

        hits = [
            Hit(
                passage_id=pid,
                score=final[pid],
                dense_score=dense_scores.get(pid),
                bm25_score=bm25_scores.get(pid),
                fused_score=fused_scores.get(pid),
                rerank_score=rerank_scores.get(pid),
            )
            for pid in _ranked(final)[:k]
        ]
        return SearchResult(text, mode, hits, timer.finish(), settings, query_vector=vector)

    def search_spec(
        self,
        query: str,
        spec: SearchSpec,
        *,
        k: int = 10,
        rerank: Reranker | None = None,
        allowed_ids: Iterable[int] | None = None,
        passage_texts: PassageTexts | None = None,
    ) -> SearchResult:
        """``search`` with the settings of a ``SearchSpec`` (what search configurations and batch runs use)."""
        return self.search(
            query,
            mode=spec.mode,
            k=k,
            alpha=spec.alpha,
            fusion_depth=spec.fusion_depth,
            rerank=rerank,
            rerank_top_n=spec.rerank_top_n,
            rerank_adaptive=spec.rerank_adaptive,
            rerank_min_n=spec.rerank_min_n,
            rerank_margin=spec.rerank_margin,
            rerank_weight=spec.rerank_weight,
            allowed_ids=allowed_ids,
            passage_texts=passage_texts,
        )


def _ranked(scores: dict[int, float]) -> list[int]:
    """Passage ids by score descending, ties broken by ascending id (the pinned ranking convention)."""
    return sorted(scores, key=lambda pid: (-scores[pid], pid))


# Loaded indexes per process, bounded (``indexes_cache.resize``) and with a load lock per key.
indexes_cache: BoundedCache[LoadedIndex] = BoundedCache(4, name="indexes")


def load_index(
    directory: str | os.PathLike[str],
    *,
    cache_key: str | None = None,
    encoder_path: str | os.PathLike[str] | None = None,
    device: str = "cpu",
) -> LoadedIndex:
    """Load an index directory once per process; ``cache_key`` (e.g. the index version id) defaults to its path."""
    return load_index_timed(directory, cache_key=cache_key, encoder_path=encoder_path, device=device)[0]


def load_index_timed(
    directory: str | os.PathLike[str],
    *,
    cache_key: str | None = None,
    encoder_path: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    query_encoder: Callable[[], Any] | None = None,
) -> tuple[LoadedIndex, float]:
    """``load_index`` and the milliseconds spent loading (0.0 when it was cached): the cold-start stage users see.

    ``query_encoder``: makes the backend object that embeds queries (called once, on a cache miss)."""
    key = cache_key or str(Path(directory).resolve())
    start = time.perf_counter()
    loaded, fresh = indexes_cache.get_or_load(
        key,
        lambda: LoadedIndex(
            directory,
            encoder_path=encoder_path,
            device=device,
            query_encoder=query_encoder() if query_encoder is not None else None,
        ),
    )
    return loaded, ((time.perf_counter() - start) * 1000.0 if fresh else 0.0)


def evict_index(directory_or_key: str | os.PathLike[str]) -> bool:
    """Drop one cached index (e.g. after its version is deleted); True if it was cached."""
    if indexes_cache.evict(str(directory_or_key)):
        return True
    return indexes_cache.evict(str(Path(directory_or_key).resolve()))


def clear_index_cache() -> None:
    """Forget every cached index."""
    indexes_cache.clear()
