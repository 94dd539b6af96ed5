from __future__ import annotations

import pytest

from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.fusion import reciprocal_rank_fusion


def test_rrf_hand_example() -> None:
    # dense: 1, 2, 3   bm25: 3, 4   (k = 60, alpha = 0.5)
    fused = reciprocal_rank_fusion([1, 2, 3], [3, 4], alpha=0.5, k=60)
    expected = {
        1: 0.5 / 61,
        2: 0.5 / 62,
        3: 0.5 / 63 + 0.5 / 61,
        4: 0.5 / 62,
    }
    assert fused.ids.tolist() == [3, 1, 2, 4]  # 2 and 4 tie: smaller id first
    assert fused.scores.tolist() == pytest.approx([expected[i] for i in fused.ids.tolist()])


def test_alpha_weighs_the_lists() -> None:
    assert reciprocal_rank_fusion([1, 2], [2, 1], alpha=0.9).ids.tolist() == [1, 2]
    assert reciprocal_rank_fusion([1, 2], [2, 1], alpha=0.1).ids.tolist() == [2, 1]
    only_dense = reciprocal_rank_fusion([5, 6], [7], alpha=1.0)
    assert only_dense.ids.tolist() == [5, 6, 7] and only_dense.scores[-1] == 0.0


def test_ties_broken_by_id_and_duplicates_keep_best_rank() -> None:
    assert reciprocal_rank_fusion([9, 8], [8, 9]).ids.tolist() == [8, 9]
    fused = reciprocal_rank_fusion([1, 1, 2], [])
    assert fused.scores.tolist() == pytest.approx([0.5 / 61, 0.5 / 63])


def test_empty_lists_and_validation() -> None:
    assert reciprocal_rank_fusion([], []).ids.size == 0
    with pytest.raises(RetrievalError, match="alpha"):
        reciprocal_rank_fusion([1], [2], alpha=1.5)
    with pytest.raises(RetrievalError, match="constant k"):
        reciprocal_rank_fusion([1], [2], k=0)
