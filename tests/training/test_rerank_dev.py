"""The reranker dev evaluator: one ideal for every ranking, scores kept per step, and the blend choice from them."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.rerank_dev import RerankDevEvaluator


class _Fixed:
    """A model whose scores are given per (query, document)."""

    class model_card_data:  # the attribute the library writes metrics to
        @staticmethod
        def set_evaluation_metrics(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            pass

    def __init__(self, scores: dict[tuple[str, str], float]) -> None:
        self.scores = scores
        self.pairs: list[list[str]] = []

    def predict(self, pairs, **kwargs):  # type: ignore[no-untyped-def]
        self.pairs.extend(pairs)
        return np.array([self.scores.get((q, d), 0.0) for q, d in pairs])


SAMPLES = [
    # q1 has two positives; the first stage found only p1, 3rd
    {"query": "q1", "positive": ["p1", "p_missed"], "documents": ["a", "b", "p1"], "first_stage_scores": [3, 2, 1]},
    {"query": "q2", "positive": ["p2"], "documents": ["p2", "c"], "first_stage_scores": [0.9, 0.1]},
    {"query": "q3", "positive": ["p3"], "documents": ["d", "e"], "first_stage_scores": [0.5, 0.4]},  # none found
]


def test_every_ranking_shares_the_ideal_with_the_missed_positives() -> None:
    evaluator = RerankDevEvaluator(SAMPLES)
    in_order = _Fixed({("q1", "a"): 3, ("q1", "b"): 2, ("q1", "p1"): 1, ("q2", "p2"): 2, ("q2", "c"): 1})
    metrics = evaluator(in_order)
    # a model that keeps the first stage's order scores exactly what the first stage scores
    assert metrics["dev_ndcg@10"] == pytest.approx(metrics["dev_base_ndcg@10"])
    assert metrics["dev_map"] == pytest.approx(metrics["dev_base_map"])
    ideal_q1 = 1 + 1 / np.log2(3)  # two relevant documents, one of them never in the list
    assert metrics["dev_base_ndcg@10"] == pytest.approx(((1 / np.log2(4)) / ideal_q1 + 1.0 + 0.0) / 3)
    assert evaluator.primary_metric == "dev_ndcg@10"
    assert all(q != "q3" for q, _ in in_order.pairs)  # a list without a positive is not scored: it is 0 anyway
    best = _Fixed({("q1", "p1"): 5, ("q2", "p2"): 2})
    metrics = evaluator(best, steps=7)
    assert metrics["dev_ndcg@10"] == pytest.approx((1 / ideal_q1 + 1.0 + 0.0) / 3)  # not 1.0 for q1: p_missed
    assert set(evaluator.scores_by_step) == {-1, 7}
    choice = evaluator.blend_choice(7)
    assert choice is not None and choice.reranker_only == pytest.approx(metrics["dev_ndcg@10"])
    assert choice.first_stage == pytest.approx(metrics["dev_base_ndcg@10"])
    assert evaluator.blend_choice(99) is None
    no_scores = RerankDevEvaluator([{k: v for k, v in s.items() if k != "first_stage_scores"} for s in SAMPLES])
    no_scores(best, steps=1)
    assert no_scores.blend_choice(1) is None
