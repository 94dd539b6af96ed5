"""Blending reranker and first-stage scores: the arithmetic, the weight choice on dev, and the search engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.retrieval.blend import DevList, blend_scores, choose_blend_weight, ndcg10, zscores
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.index_build import build_index
from workbench.retrieval.search import LoadedIndex, SearchSpec

PASSAGES = [(300 + i, f"Passage {i} about aspirin, statins and the heart, variant {i}.") for i in range(30)]


def test_zscores_and_blend_arithmetic() -> None:
    assert np.allclose(zscores([1.0, 2.0, 3.0]), [-1.224744871, 0.0, 1.224744871])
    assert np.array_equal(zscores([4.0, 4.0]), [0.0, 0.0])  # a constant list carries no order
    rerank = np.array([0.3, 2.0, -1.0])
    assert np.array_equal(blend_scores([9.0, 8.0, 7.0], rerank, 1.0), rerank)  # weight 1: the reranker, unchanged
    half = blend_scores([3.0, 2.0, 1.0], [1.0, 3.0, 2.0], 0.5)
    assert np.allclose(half, 0.5 * zscores([1.0, 3.0, 2.0]) + 0.5 * zscores([3.0, 2.0, 1.0]))
    # scale-free: multiplying either list by a positive constant changes nothing
    assert np.allclose(blend_scores([30.0, 20.0, 10.0], [10.0, 30.0, 20.0], 0.5), half)
    with pytest.raises(RetrievalError, match="between 0 and 1"):
        blend_scores([1.0], [1.0], 1.5)
    with pytest.raises(RetrievalError, match="one first-stage score per reranked candidate"):
        blend_scores([1.0, 2.0], [1.0], 0.5)


def test_ndcg_counts_missed_positives_in_the_ideal() -> None:
    scores = np.array([3.0, 2.0, 1.0])
    assert ndcg10(scores, [True, False, False]) == pytest.approx(1.0)
    # one more relevant document the list never held: the same ranking can no longer be perfect
    assert ndcg10(scores, [True, False, False], missed=1) == pytest.approx(1 / (1 + 1 / np.log2(3)))
    assert ndcg10(scores, [False, False, False]) == 0.0


def _complementary_lists(n: int, seed: int) -> list[DevList]:
    """Half the queries: the first stage puts the positive 2nd by a hair and the reranker 1st by far; the other half
    the other way round. Either alone is imperfect, a blend of the two is perfect."""
    rng = np.random.default_rng(seed)
    lists = []
    for q in range(n):
        noise = rng.normal(0.0, 0.05, 10)
        if q % 2:
            relevant = [i == 1 for i in range(10)]
            first = np.linspace(1.0, 0.1, 10)  # positive 2nd, just under the 1st
            rerank = noise.copy()
            rerank[1] = 3.0  # far above the rest
        else:
            relevant = [i == 0 for i in range(10)]
            first = np.array([5.0, *np.linspace(1.0, 0.1, 9)])  # positive 1st, far above the rest
            rerank = noise.copy()
            rerank[0], rerank[1] = 1.0, 1.05  # the reranker prefers the 2nd, by a hair
        lists.append(DevList(first_stage=first.tolist(), rerank=rerank.tolist(), relevant=relevant))
    return lists


def test_choose_blend_weight_blends_complementary_scores() -> None:
    choice = choose_blend_weight(_complementary_lists(40, seed=1))
    assert choice.blends and 0.1 <= choice.weight < 1.0
    assert choice.dev == pytest.approx(1.0) and choice.reranker_only < 0.9 and choice.first_stage < 0.9
    assert choice.cross_validated > choice.reranker_only  # the held-out estimate agrees
    assert set(choice.by_weight) == {f"{0.1 * i:.1f}" for i in range(1, 11)}
    assert choice.as_dict()["weight"] == choice.weight


def test_choose_blend_weight_keeps_a_reranker_that_needs_no_help() -> None:
    lists = []
    for _ in range(20):
        relevant = [i == 5 for i in range(10)]
        rerank = [1.0 if i == 5 else -float(i) for i in range(10)]  # perfect on its own
        lists.append(DevList(first_stage=list(np.linspace(1.0, 0.1, 10)), rerank=rerank, relevant=relevant))
    choice = choose_blend_weight(lists)
    assert choice.weight == 1.0 and not choice.blends and choice.dev == pytest.approx(1.0)
    assert choice.cross_validated == choice.reranker_only
    with pytest.raises(RetrievalError, match="at least one dev query"):
        choose_blend_weight([])


def test_spec_checks_and_describes_the_weight() -> None:
    for bad in (0.0, 1.2, -0.1):
        with pytest.raises(RetrievalError, match="rerank weight must be above 0 and at most 1"):
            SearchSpec(rerank_weight=bad).check()
    spec = SearchSpec(rerank_weight=0.6)
    assert spec.normalised(reranked=False).rerank_weight == 1.0  # nothing to blend without a reranker
    assert "blended 0.6 reranker / 0.4 first stage" in spec.normalised(reranked=True).describe("ce")
    assert "blended" not in SearchSpec().describe("ce")


class _Reverse:
    name = "reverse"

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        return np.arange(len(passages), dtype=np.float32)  # ranks the first stage's order backwards


def test_search_blends_the_reranked_candidates(tiny_encoder_path: Path, tmp_path: Path) -> None:
    build_index(out_dir=tmp_path / "ix", passages=PASSAGES, encoder_path=tiny_encoder_path, batch_size=8)
    index = LoadedIndex(tmp_path / "ix")
    query = "aspirin heart variant 7"
    first = index.search_spec(query, SearchSpec(mode="bm25"), k=20)
    alone = index.search_spec(query, SearchSpec(mode="bm25", rerank_top_n=20), k=20, rerank=_Reverse())
    assert alone.passage_ids == first.passage_ids[::-1]
    assert "rerank_weight" not in alone.params
    mostly_first = index.search_spec(
        query, SearchSpec(mode="bm25", rerank_top_n=20, rerank_weight=0.1), k=20, rerank=_Reverse()
    )
    assert mostly_first.params["rerank_weight"] == 0.1
    bm25 = [h.bm25_score for h in first.hits]
    blended = blend_scores(bm25, np.arange(20, dtype=np.float64), 0.1)
    expected = sorted(range(20), key=lambda i: (-blended[i], first.passage_ids[i]))
    assert mostly_first.passage_ids == [first.passage_ids[i] for i in expected]
    assert mostly_first.passage_ids != alone.passage_ids
    scores = [h.score for h in mostly_first.hits]
    assert scores == sorted(scores, reverse=True)
    raw = {h.passage_id: h.rerank_score for h in alone.hits}
    assert all(h.rerank_score == raw[h.passage_id] for h in mostly_first.hits)  # the reranker's own score is kept
    with pytest.raises(RetrievalError, match="rerank weight"):
        index.search(query, mode="bm25", rerank=_Reverse(), rerank_weight=0.0)


def test_the_shared_ndcg_matches_pytrec_eval_on_graded_lists() -> None:
    import pytrec_eval

    from workbench.retrieval.ndcg import ndcg_from_gains, ranked_by

    rng = np.random.default_rng(7)
    for trial in range(20):
        docs = [f"d{i}" for i in range(15)]
        grades = {d: int(g) for d, g in zip(docs, rng.integers(0, 3, size=15), strict=True)}
        grades["outside"] = 2  # relevant but not retrieved: counts in the ideal
        scores = rng.normal(size=15)
        run = {"q": {d: float(s) for d, s in zip(docs, scores, strict=True)}}
        want = pytrec_eval.RelevanceEvaluator({"q": grades}, {"ndcg_cut.10"}).evaluate(run)["q"]["ndcg_cut_10"]
        got = ndcg_from_gains([grades[docs[i]] for i in ranked_by(scores)], grades.values())
        assert got == pytest.approx(want, abs=1e-9), trial
    assert ndcg_from_gains([0, 0], [0, 0]) == 0.0  # nothing relevant
