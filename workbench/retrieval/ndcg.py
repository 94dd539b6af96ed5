"""nDCG@k from gains, the one implementation the Django-free rankers share (blend weights, backend fidelity,
adaptive depth). Semantics as trec_eval's ``ndcg_cut``: linear gain, log2(rank + 1) discount, the ideal ranking
built from every relevant document's gain (including those the list missed), 0 when nothing is relevant.
The evaluation pages use pytrec_eval itself; these helpers score the small lists a job compares thousands of times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def ranked_by(scores: Sequence[float] | np.ndarray) -> list[int]:
    """Positions ordered by score, highest first, ties by position (stable, as a first-stage list is)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def ndcg_from_gains(ranked_gains: Iterable[float], ideal_gains: Iterable[float], k: int = 10) -> float:
    """nDCG@k of a ranking given the gains in rank order and the gains of every relevant document."""
    gains = [max(float(g), 0.0) for g in ranked_gains][:k]
    ideal = sorted((float(g) for g in ideal_gains if g > 0), reverse=True)[:k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = float(sum(g * discounts[r] for r, g in enumerate(ideal)))
    if idcg <= 0:
        return 0.0
    return float(sum(g * discounts[r] for r, g in enumerate(gains)) / idcg)
