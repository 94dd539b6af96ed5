"""The rerank depth a latency budget affords, from a backend's measured p95 at two list sizes."""

from __future__ import annotations

import pytest

from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.rerank_budget import RerankCost, depth_for_budget, rerank_cost


def _ms(**p95: float) -> dict[str, dict[str, float]]:
    return {size.lstrip("n"): {"p50": v * 0.9, "p95": v} for size, v in p95.items()}


def test_the_cost_line_goes_through_the_measured_sizes() -> None:
    cost = rerank_cost(_ms(n20=450.0, n50=1050.0))
    assert cost is not None and cost.measured_sizes == (20, 50)
    assert cost.per_pair_ms == pytest.approx(20.0, abs=1e-9) and cost.intercept_ms == pytest.approx(50.0, abs=1e-9)
    assert cost.predicted_ms(10) == pytest.approx(250.0, abs=1e-9)
    assert rerank_cost(_ms(n20=450.0, n50=1050.0), stat="p50").per_pair_ms == pytest.approx(18.0, abs=1e-9)


def test_the_depth_is_the_largest_multiple_of_five_within_the_budget() -> None:
    cost = RerankCost(intercept_ms=50.0, per_pair_ms=20.0, measured_sizes=(20, 50))
    fit = depth_for_budget(cost, 500.0, top_n=50)
    # (500 - 50) / 20 = 22.5 pairs -> 20, never 22 (two points do not justify that precision)
    assert (fit.depth, fit.fits, fit.limits_depth) == (20, True, True)
    assert fit.predicted_ms == 450.0 and fit.predicted_top_n_ms == 1050.0
    assert depth_for_budget(cost, 1050.0, top_n=50).depth == 50  # exactly on budget: everything
    assert not depth_for_budget(cost, 5000.0, top_n=50).limits_depth
    assert depth_for_budget(cost, 5000.0, top_n=30).depth == 30  # never deeper than the configuration asks


def test_when_nothing_fits_the_floor_is_kept_and_said() -> None:
    cost = RerankCost(intercept_ms=0.0, per_pair_ms=40.0, measured_sizes=(20, 50))
    fit = depth_for_budget(cost, 100.0, top_n=50)
    assert (fit.depth, fit.fits, fit.predicted_ms) == (5, False, 200.0)
    assert depth_for_budget(cost, 100.0, top_n=3).depth == 3  # a floor no deeper than asked


def test_noisy_or_partial_measurements_do_not_promise_too_much() -> None:
    # slower at 20 than at 50 (a busy machine): cost per pair of the largest size, through the origin
    noisy = rerank_cost(_ms(n20=900.0, n50=800.0))
    assert noisy is not None and noisy.intercept_ms == 0.0 and noisy.per_pair_ms == pytest.approx(16.0, abs=1e-9)
    one = rerank_cost({"50": {"p95": 500.0}, "bad": {"p95": 1.0}, "20": {"p50": 3.0}})
    assert one is not None and one.measured_sizes == (50,) and one.per_pair_ms == pytest.approx(10.0, abs=1e-9)
    assert rerank_cost({}) is None and rerank_cost({"20": {"p50": 1.0}}) is None


def test_bad_budgets_are_refused() -> None:
    cost = RerankCost(0.0, 10.0, (20, 50))
    with pytest.raises(RetrievalError, match="budget must be positive"):
        depth_for_budget(cost, 0.0)
    with pytest.raises(RetrievalError, match="top n"):
        depth_for_budget(cost, 100.0, top_n=0)
