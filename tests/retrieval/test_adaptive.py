"""Adaptive rerank depth: the score-gap rule, the search engine using it, and the benchmark helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.retrieval.adaptive import DepthQuery, adaptive_rerank_depth, rerank_depth_effect, rerank_with_depth
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.index_build import build_index
from workbench.retrieval.search import LoadedIndex, SearchSpec

PASSAGES = [(200 + i, f"Passage {i} about aspirin, statins and the heart, variant {i}.") for i in range(30)]


def test_confident_lists_rerank_few_and_flat_lists_rerank_most() -> None:
    confident = [10.0, 9.8, 2.0, *np.linspace(1.9, 1.0, 47)]
    assert adaptive_rerank_depth(confident, top_n=50, min_n=5, margin=0.5) == 5  # 2 within the margin -> min 5
    assert adaptive_rerank_depth(confident, top_n=50, min_n=1, margin=0.5) == 2
    flat = list(np.linspace(1.0, 0.0, 50))
    assert adaptive_rerank_depth(flat, top_n=50, min_n=5, margin=0.5) == 25
    assert adaptive_rerank_depth(flat, top_n=50, min_n=5, margin=1.0) == 50  # margin 1: no adaptivity
    assert adaptive_rerank_depth(flat, top_n=20, min_n=5, margin=1.0) == 20  # only the top n count
    assert adaptive_rerank_depth([3.0] * 8, top_n=50, min_n=2, margin=0.1) == 8  # ties: nothing tells them apart
    assert adaptive_rerank_depth([1.0, 0.5], top_n=50, min_n=10, margin=0.1) == 2  # never more than there are
    assert adaptive_rerank_depth([], top_n=50, min_n=10, margin=0.5) == 0
    with pytest.raises(RetrievalError, match="margin"):
        adaptive_rerank_depth(flat, top_n=50, min_n=5, margin=1.5)


def test_spec_checks_and_normalises_adaptive_settings() -> None:
    with pytest.raises(RetrievalError, match="minimum must be between 1 and rerank top n 20"):
        SearchSpec(rerank_top_n=20, rerank_adaptive=True, rerank_min_n=30).check()
    spec = SearchSpec(rerank_adaptive=True, rerank_min_n=7, rerank_margin=0.3)
    assert spec.normalised(reranked=False) == SearchSpec()  # without a reranker it means nothing
    assert "adaptive ≥7, margin 0.3" in spec.normalised(reranked=True).describe("ce")


def test_rerank_depth_effect_replays_margins_over_one_reranking() -> None:
    ids = list(range(20))
    first = [1.0 - i * 0.01 for i in ids]
    first[0] = 5.0  # one confident query: the first stage is sure of id 0
    rerank = {i: float(i == 3) for i in ids}  # the reranker finds the relevant id 3
    query = DepthQuery(ids=ids, scores=first, rerank=rerank, qrels={3: 1})
    assert rerank_with_depth(query, 2) == ids  # 3 not reranked: first-stage order
    assert rerank_with_depth(query, 5)[0] == 3
    rows = rerank_depth_effect([query], top_n=20, min_n=2, margins=(0.1, 1.0))
    full, narrow, wide = rows
    assert full["margin"] is None and full["mean_depth"] == 20 and full["ndcg10"] == pytest.approx(1.0)
    assert narrow["mean_depth"] == 2 and narrow["ndcg10"] < 1.0
    assert wide["mean_depth"] == 20 and wide["ndcg10"] == pytest.approx(1.0)


class _Counting:
    name = "counting"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        self.calls.append(len(passages))
        return np.arange(len(passages), dtype=np.float32)  # reverses the head


def test_search_reranks_the_adaptive_depth_and_keeps_the_tail_below(tiny_encoder_path: Path, tmp_path: Path) -> None:
    build_index(out_dir=tmp_path / "ix", passages=PASSAGES, encoder_path=tiny_encoder_path, batch_size=8)
    index = LoadedIndex(tmp_path / "ix")
    reranker = _Counting()
    spec = SearchSpec(mode="bm25", rerank_top_n=20, rerank_adaptive=True, rerank_min_n=3, rerank_margin=0.0)
    result = index.search_spec("aspirin heart variant 7", spec, k=10, rerank=reranker)
    depth = result.params["rerank_candidates"]
    assert reranker.calls == [depth] and 3 <= depth < 20 and result.params["rerank_backend"] == "counting"
    assert len(result.hits) == 10
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)  # ranking stays "score descending" with the tail below
    assert all(h.rerank_score is not None for h in result.hits[:depth])
    assert all(h.rerank_score is None for h in result.hits[depth:])
    plain = index.search_spec(
        "aspirin heart variant 7", SearchSpec(mode="bm25", rerank_top_n=20), k=10, rerank=reranker
    )
    assert plain.params["rerank_candidates"] == 20 and "rerank_adaptive" not in plain.params
