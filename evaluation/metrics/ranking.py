"""Deterministic ranking of one query's scored docs.

Our pinned order is score descending (full double precision), ties by doc id
ascending. trec_eval differs twice: it breaks ties by doc id *descending*, and
it stores scores as C ``float``, so scores that differ only beyond single
precision are ties to it. A query whose scores collide after rounding to
float32 is therefore re-scored before it is handed to pytrec_eval.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import MetricsError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

_FLOAT32_EXACT = 2**24


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

    Returns ``scores`` itself when no two scores are equal in single precision
    (the common case, and the cheap one); otherwise new scores ``n, n-1, ...,
    1`` following :func:`ranked_doc_ids`. Raises :class:`MetricsError` on NaN
    scores, which have no place in an order.
    """
    if len(scores) < 2:
        if scores and np.isnan(_score_array(scores)).any():
            raise MetricsError("scores must not be NaN")
        return scores
    values = _score_array(scores)
    if np.isnan(values).any():
        raise MetricsError("scores must not be NaN")
    # What trec_eval will see: huge scores overflow to inf, which is fine
    # because equal infinities are then detected as ties too.
    with np.errstate(over="ignore"):
        seen = values.astype(np.float32)
    seen.sort()
    if not (seen[1:] == seen[:-1]).any():
        return scores
    n = len(scores)
    if n > _FLOAT32_EXACT:
        raise MetricsError(f"a query has {n} scored docs; at most {_FLOAT32_EXACT} are supported")
    # Same order as ranked_doc_ids, without sorting every doc id: numpy sorts
    # by score, then only runs of exactly equal scores are sorted by doc id.
    docs = list(scores)
    order = np.argsort(-values, kind="stable")
    ranked_values = values[order]
    tied = np.flatnonzero(ranked_values[1:] == ranked_values[:-1])
    if len(tied):
        ranked = order.tolist()
        # tied[i] == tied[i-1] + 1 inside a run; a gap starts a new run.
        gaps = np.flatnonzero(np.diff(tied) != 1)
        starts = np.r_[tied[0], tied[gaps + 1]]
        stops = np.r_[tied[gaps], tied[-1]] + 2
        for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
            ranked[start:stop] = sorted(ranked[start:stop], key=docs.__getitem__)
        order = np.asarray(ranked)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    # Integers up to 2**24 are exact in float32, so these never collide.
    return dict(zip(docs, (n - position).astype(np.float64).tolist(), strict=True))
