"""Adaptive rerank depth: rerank fewer candidates when the first stage is confident (Django-free).

The rule (score gap, scale-free so it works for cosine, BM25 and RRF scores alike): over the first-stage top
``top_n`` scores ``s_1 >= ... >= s_N``, rerank the candidates whose score lies within ``margin`` of the spread
``s_1 - s_N`` from the top, i.e. ``s_i >= s_1 - margin * (s_1 - s_N)``, and clamp that count to
``[min_n, top_n]``. A query whose best candidates stand far above the rest (confident) reranks few passages; a
flat list reranks most of them. ``margin = 1`` reranks all ``top_n`` (no adaptivity); a smaller margin reranks
fewer. Candidates below the depth keep their first-stage order under the reranked ones.

``rerank_depth_effect`` replays the rule over precomputed full-depth rerank scores (a pair's cross-encoder score does
not depend on which other pairs are scored), so a benchmark measures quality against depth for many margins with one
reranking pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.ndcg import ndcg_from_gains

DEFAULT_MARGIN = 0.5
DEFAULT_MIN_N = 10
# Passages under the depth are ranked below the lowest rerank score, this far apart, in first-stage order.
TAIL_STEP = 1e-3


def adaptive_rerank_depth(first_stage_scores: Sequence[float], *, top_n: int, min_n: int, margin: float) -> int:
    """How many of the first-stage candidates (scores best first) to rerank under the score-gap rule."""
    if not 0.0 <= margin <= 1.0:
        raise RetrievalError(f"the adaptive rerank margin must be between 0 and 1 (got {margin})")
    if min_n < 1:
        raise RetrievalError(f"the adaptive rerank minimum must be at least 1 (got {min_n})")
    scores = np.asarray(first_stage_scores[:top_n], dtype=np.float64)
    n = int(scores.size)
    if n == 0:
        return 0
    spread = scores[0] - scores[-1]
    if spread <= 0:  # a flat list: nothing tells the candidates apart
        return n
    within = int(np.count_nonzero(scores >= scores[0] - margin * spread - 1e-12))
    return max(min(min_n, n), min(within, n))


def tail_scores(lowest_rerank: float, count: int) -> list[float]:
    """Scores for the un-reranked tail: below every reranked one, keeping first-stage order (ranking stays
    "score descending")."""
    return [lowest_rerank - 1.0 - j * TAIL_STEP for j in range(count)]


@dataclass(frozen=True)
class DepthQuery:
    """One query for ``rerank_depth_effect``: first-stage ids best first with scores, full-depth rerank scores of
    (at least) the top ``top_n`` ids, and graded qrels."""

    ids: Sequence[int]
    scores: Sequence[float]
    rerank: Mapping[int, float]
    qrels: Mapping[int, int]


def _ndcg10(ranked: Sequence[int], qrels: Mapping[int, int]) -> float:
    return ndcg_from_gains([qrels.get(pid, 0) for pid in ranked], qrels.values())


def rerank_with_depth(query: DepthQuery, depth: int) -> list[int]:
    """The final ranking when the top ``depth`` are reranked and the rest keep first-stage order."""
    head = sorted(query.ids[:depth], key=lambda pid: (-query.rerank[pid], pid))
    return [*head, *query.ids[depth:]]


def rerank_depth_effect(
    queries: Sequence[DepthQuery],
    *,
    top_n: int = 50,
    min_n: int = DEFAULT_MIN_N,
    margins: Sequence[float] = (0.2, 0.35, 0.5, 0.65, 0.8, 1.0),
) -> list[dict[str, float]]:
    """Quality against depth: for each margin, the mean and p95 depth reranked and mean nDCG@10 (queries without
    a relevant judgment count as 0, as in ``_ndcg10``), plus a full-depth row (``margin`` None) to compare with."""
    if not queries:
        raise RetrievalError("rerank_depth_effect needs at least one query")
    rows: list[dict[str, float]] = []
    full = [rerank_with_depth(q, min(top_n, len(q.ids))) for q in queries]
    rows.append(
        {
            "margin": None,  # type: ignore[dict-item]
            "mean_depth": float(np.mean([min(top_n, len(q.ids)) for q in queries])),
            "p95_depth": float(np.percentile([min(top_n, len(q.ids)) for q in queries], 95)),
            "ndcg10": float(np.mean([_ndcg10(r, q.qrels) for r, q in zip(full, queries, strict=True)])),
        }
    )
    for margin in margins:
        depths = [adaptive_rerank_depth(q.scores, top_n=top_n, min_n=min_n, margin=margin) for q in queries]
        ranked = [rerank_with_depth(q, d) for q, d in zip(queries, depths, strict=True)]
        rows.append(
            {
                "margin": float(margin),
                "mean_depth": float(np.mean(depths)),
                "p95_depth": float(np.percentile(depths, 95)),
                "ndcg10": float(np.mean([_ndcg10(r, q.qrels) for r, q in zip(ranked, queries, strict=True)])),
            }
        )
    return rows
