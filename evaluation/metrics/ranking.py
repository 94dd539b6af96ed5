"""Deterministic ranking of one query's scored docs.

Our pinned order is score descending, ties by doc id ascending. trec_eval
breaks ties by doc id *descending*, so a run with ties must be re-scored before
it is handed to pytrec_eval.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import MetricsError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _rank_key(item: tuple[str, float]) -> tuple[float, str]:
    return (-item[1], item[0])


def _score_array(scores: Mapping[str, float]) -> np.ndarray:
    try:
        values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    except (TypeError, ValueError) as exc:
        raise MetricsError(f"scores must be real numbers: {exc}") from None
    return values


def ranked_doc_ids(scores: Mapping[str, float]) -> list[str]:
    """Doc ids in our pinned order: score descending, then doc id ascending."""
    return [doc for doc, _ in sorted(scores.items(), key=_rank_key)]


def top_k_doc_ids(scores: Mapping[str, float], k: int) -> list[str]:
    """The first ``k`` doc ids of :func:`ranked_doc_ids`, without a full sort."""
    if k <= 0:
        raise MetricsError(f"k must be a positive integer, got {k}")
    if len(scores) <= k:
        return ranked_doc_ids(scores)
    values = _score_array(scores)
    # Everything scoring at least the k-th largest score is a candidate; ties
    # at the boundary are resolved by the exact sort of this small set.
    threshold = np.partition(values, len(values) - k)[len(values) - k]
    docs = list(scores)
    candidates = [(docs[i], values[i]) for i in np.flatnonzero(values >= threshold)]
    return [doc for doc, _ in sorted(candidates, key=_rank_key)[:k]]


def tie_free_scores(scores: Mapping[str, float]) -> Mapping[str, float]:
    """Scores that encode our order with no ties, for trec_eval.

    Returns ``scores`` itself when it has no tied scores (the common case, and
    the cheap one); otherwise new scores ``n, n-1, ..., 1`` following
    :func:`ranked_doc_ids`. Raises :class:`MetricsError` on NaN scores, which
    have no place in an order.
    """
    if len(scores) < 2:
        if scores and np.isnan(_score_array(scores)).any():
            raise MetricsError("scores must not be NaN")
        return scores
    values = _score_array(scores)
    values.sort()  # NaN sorts last
    if np.isnan(values[-1]):
        raise MetricsError("scores must not be NaN")
    if not (values[1:] == values[:-1]).any():
        return scores
    ranked = ranked_doc_ids(scores)
    n = len(ranked)
    return {doc: float(n - i) for i, doc in enumerate(ranked)}
