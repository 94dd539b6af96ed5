"""How many candidates a reranker can rescore within a latency budget on this CPU (Django-free).

A cross-encoder's cost per query is close to linear in the number of pairs it scores (one forward pass per pair,
batched), so two measured list sizes give the line ``ms = intercept + per_pair * depth``. The backend measurement
(``backend_measure``) times lists of 20 and 50 candidates; ``rerank_cost`` fits the line through the p95 of each and
``depth_for_budget`` reads off the largest depth whose predicted p95 stays within the budget.

Depths are rounded down to a multiple of ``STEP`` so a configuration reads "top 15", not "top 17", and an estimate
from two points is not presented as more precise than it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from workbench.retrieval.errors import RetrievalError

STEP = 5
MIN_DEPTH = 5  # below this a reranker barely changes the first page


@dataclass(frozen=True)
class RerankCost:
    """p95 milliseconds of one query's rerank as ``intercept_ms + per_pair_ms * depth``."""

    intercept_ms: float
    per_pair_ms: float
    measured_sizes: tuple[int, ...]

    def predicted_ms(self, depth: int) -> float:
        return max(0.0, self.intercept_ms + self.per_pair_ms * depth)


def rerank_cost(rerank_ms: Mapping[str, Mapping[str, float]], *, stat: str = "p95") -> RerankCost | None:
    """The cost line through the measured list sizes (``{"20": {"p95": ...}, "50": {...}}``); None when fewer than
    one size was measured. With one size the line goes through the origin; a negative slope (noise on a busy
    machine) falls back to the largest size's cost per pair, through the origin, which overestimates small depths
    rather than promising what the measurement does not show."""
    points = sorted(
        (int(size), float(row[stat]))
        for size, row in rerank_ms.items()
        if str(size).isdigit() and int(size) > 0 and isinstance(row, Mapping) and row.get(stat) is not None
    )
    if not points:
        return None
    sizes = tuple(s for s, _ in points)
    if len(points) >= 2:
        x = np.asarray([s for s, _ in points], dtype=np.float64)
        y = np.asarray([v for _, v in points], dtype=np.float64)
        slope, intercept = np.polyfit(x, y, 1)
        if slope > 0:
            return RerankCost(float(max(intercept, 0.0)), float(slope), sizes)
    size, ms = points[-1]
    return RerankCost(0.0, ms / size, sizes)


@dataclass(frozen=True)
class BudgetFit:
    budget_ms: float
    depth: int  # the largest affordable depth (a multiple of STEP, at most top_n); MIN_DEPTH when nothing fits
    fits: bool  # False: even MIN_DEPTH is predicted over the budget
    predicted_ms: float  # predicted p95 at ``depth``
    top_n: int
    predicted_top_n_ms: float  # predicted p95 when reranking all ``top_n``

    @property
    def limits_depth(self) -> bool:
        return self.depth < self.top_n


def depth_for_budget(cost: RerankCost, budget_ms: float, *, top_n: int = 50) -> BudgetFit:
    """The largest depth (multiple of ``STEP``, at most ``top_n``) whose predicted p95 is within ``budget_ms``."""
    if budget_ms <= 0:
        raise RetrievalError(f"the rerank budget must be positive (got {budget_ms} ms)")
    if top_n < 1:
        raise RetrievalError(f"rerank top n must be at least 1 (got {top_n})")
    if cost.predicted_ms(top_n) <= budget_ms:
        depth = top_n
    else:
        affordable = (budget_ms - cost.intercept_ms) / cost.per_pair_ms if cost.per_pair_ms > 0 else top_n
        depth = min(top_n, int(affordable // STEP) * STEP)
    floor = min(MIN_DEPTH, top_n)
    fits = depth >= floor
    depth = max(depth, floor)
    return BudgetFit(
        budget_ms=float(budget_ms),
        depth=int(depth),
        fits=fits,
        predicted_ms=round(cost.predicted_ms(depth), 1),
        top_n=int(top_n),
        predicted_top_n_ms=round(cost.predicted_ms(top_n), 1),
    )
