"""Reciprocal-rank fusion (Cormack et al., 2009) of a dense and a BM25 ranking, with a weight between the two.

RRF uses ranks only, so it needs no score calibration between cosine similarities and BM25 scores:
``score(d) = alpha / (k + rank_dense(d)) + (1 - alpha) / (k + rank_bm25(d))`` with 1-based ranks, a list that does
not contain ``d`` contributing nothing. ``alpha = 0.5`` is plain RRF (scaled by one half); ``k = 60`` is the paper's
constant, which damps the difference between the very top ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.retrieval.errors import RetrievalError

DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class FusedRanking:
    """Fused passage ids (best first, ties broken by ascending id) and their RRF scores."""

    ids: np.ndarray
    scores: np.ndarray


def reciprocal_rank_fusion(
    dense_ids: Sequence[int] | np.ndarray,
    bm25_ids: Sequence[int] | np.ndarray,
    *,
    alpha: float = 0.5,
    k: int = DEFAULT_RRF_K,
) -> FusedRanking:
    """Fuse two rankings (passage ids, best first) into one; ``alpha`` weighs dense, ``1 - alpha`` weighs BM25."""
    if not 0.0 <= alpha <= 1.0:
        raise RetrievalError(f"alpha must be between 0 and 1 (got {alpha})")
    if k < 1:
        raise RetrievalError(f"the RRF constant k must be at least 1 (got {k})")
    scores: dict[int, float] = {}
    for weight, ranking in ((alpha, dense_ids), (1.0 - alpha, bm25_ids)):
        seen: set[int] = set()
        for rank, pid in enumerate(ranking, start=1):
            if int(pid) in seen:  # a duplicate keeps its first (best) rank only
                continue
            seen.add(int(pid))
            scores[int(pid)] = scores.get(int(pid), 0.0) + weight / (k + rank)
    ids = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
    values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    order = np.lexsort((ids, -values))
    return FusedRanking(ids=ids[order], scores=values[order])
