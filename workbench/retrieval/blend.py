"""Blending reranker and first-stage scores (Django-free).

A reranker trained on a few hundred labelled queries often knows things the first stage does not and misses things
it knows; interpolating the two is the standard remedy in IR. Scores live on different scales (cosine, BM25, RRF,
logits), so each list is z-scored per query over the reranked candidates and then mixed:
``weight * z(rerank) + (1 - weight) * z(first stage)``. ``weight = 1`` is the reranker alone (no blending).

``choose_blend_weight`` picks the weight on dev lists (first-stage order, both scores, which candidates are relevant
and how many relevant documents the list missed) and estimates its gain by cross-validation over the dev queries, so
a weight picked among eleven is not credited with what it gained by being picked.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.ndcg import ndcg_from_gains, ranked_by

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(1, 11))  # 0 (the first stage alone) is not a reranker
CV_FOLDS, CV_SEEDS = 2, 5


def zscores(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per-list standardisation; a constant list (or one value) maps to zeros."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return x
    std = float(x.std())
    return (x - x.mean()) / std if std > 0 else np.zeros_like(x)


def blend_scores(
    first_stage: Sequence[float] | np.ndarray, rerank: Sequence[float] | np.ndarray, weight: float
) -> np.ndarray:
    """``weight * z(rerank) + (1 - weight) * z(first_stage)`` over one query's candidates; weight 1 returns the
    reranker's own scores unchanged (so an unblended configuration ranks, and reports scores, as before)."""
    if not 0.0 <= weight <= 1.0:
        raise RetrievalError(f"the rerank weight must be between 0 and 1 (got {weight})")
    r = np.asarray(rerank, dtype=np.float64)
    f = np.asarray(first_stage, dtype=np.float64)
    if r.shape != f.shape:
        raise RetrievalError(f"blending needs one first-stage score per reranked candidate ({f.shape} vs {r.shape})")
    if weight >= 1.0:
        return r
    return weight * zscores(r) + (1.0 - weight) * zscores(f)


@dataclass(frozen=True)
class DevList:
    """One dev query: candidates in first-stage order with both scores, which are relevant, and how many relevant
    documents the first stage did not bring (they count in the ideal ranking, as for every other ranking)."""

    first_stage: Sequence[float]
    rerank: Sequence[float]
    relevant: Sequence[bool]
    missed: int = 0


def ndcg10(scores: np.ndarray, relevant: Sequence[bool], missed: int = 0) -> float:
    """Binary-gain nDCG@10 of the list ranked by ``scores`` (ties by position), ideal over ``relevant`` plus
    ``missed`` relevant documents outside the list."""
    gains = [1.0 if relevant[i] else 0.0 for i in ranked_by(scores)]
    return ndcg_from_gains(gains, [1.0] * (int(sum(bool(x) for x in relevant)) + int(missed)))


@dataclass(frozen=True)
class BlendChoice:
    weight: float  # chosen on all dev lists; 1.0 when blending does not help
    dev: float  # dev nDCG@10 at that weight (optimistic: the weight was chosen on these lists)
    cross_validated: float  # held-out estimate of the choose-then-blend procedure
    reranker_only: float
    first_stage: float
    by_weight: dict[str, float] = field(default_factory=dict)

    @property
    def blends(self) -> bool:
        return self.weight < 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "weight": self.weight,
            "dev": round(self.dev, 6),
            "cross_validated": round(self.cross_validated, 6),
            "reranker_only": round(self.reranker_only, 6),
            "first_stage": round(self.first_stage, 6),
            "by_weight": {k: round(v, 6) for k, v in self.by_weight.items()},
        }


def _mean_at(per_weight: dict[float, list[float]], weight: float, idx: Sequence[int]) -> float:
    return float(np.mean([per_weight[weight][i] for i in idx])) if idx else 0.0


def _pick(per_weight: dict[float, list[float]], idx: Sequence[int]) -> float:
    # ties go to the larger weight: the reranker alone unless blending is strictly better
    return max(WEIGHTS, key=lambda w: (round(_mean_at(per_weight, w, idx), 9), w))


def choose_blend_weight(lists: Sequence[DevList], *, seed: int = 0) -> BlendChoice:
    """The rerank weight for these dev lists, with a cross-validated estimate of what blending gains.

    The weight is kept at 1 (the reranker alone) unless the cross-validated blend beats the reranker alone: with few
    dev queries a weight picked among eleven would otherwise look better than it is."""
    if not lists:
        raise RetrievalError("choosing a rerank weight needs at least one dev query")
    per_weight = {
        w: [ndcg10(blend_scores(d.first_stage, d.rerank, w), d.relevant, d.missed) for d in lists] for w in WEIGHTS
    }
    first = float(
        np.mean([ndcg10(-np.arange(len(d.first_stage), dtype=np.float64), d.relevant, d.missed) for d in lists])
    )
    everyone = list(range(len(lists)))
    reranker_only = _mean_at(per_weight, 1.0, everyone)
    held_out = []
    if len(lists) >= 2 * CV_FOLDS:
        for s in range(CV_SEEDS):
            shuffled = random.Random(seed * 1000 + s).sample(everyone, len(everyone))
            folds = [shuffled[f::CV_FOLDS] for f in range(CV_FOLDS)]
            total = 0.0
            for f, test in enumerate(folds):
                pick_on = [i for g, fold in enumerate(folds) if g != f for i in fold]
                best = _pick(per_weight, pick_on)
                total += sum(per_weight[best][i] for i in test)
            held_out.append(total / len(everyone))
    cross_validated = float(np.mean(held_out)) if held_out else reranker_only
    weight = _pick(per_weight, everyone) if cross_validated > reranker_only + 1e-9 else 1.0
    return BlendChoice(
        weight=weight,
        dev=_mean_at(per_weight, weight, everyone),
        cross_validated=cross_validated if weight < 1.0 else reranker_only,
        reranker_only=reranker_only,
        first_stage=first,
        by_weight={str(w): _mean_at(per_weight, w, everyone) for w in WEIGHTS},
    )
