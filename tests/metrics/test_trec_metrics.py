from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluation.metrics import (
    MetricSemantics,
    MetricsError,
    RunMetrics,
    evaluate_run,
    evaluate_runs,
    ranked_doc_ids,
    tie_free_scores,
    top_k_doc_ids,
)

from ._reference import reference_metrics, reference_order

DOCS = [f"d{i}" for i in range(9)]
QIDS = ["q1", "q2", "q3", "q4", "q5"]

# Few distinct values so that ties are frequent; sometimes arbitrary floats.
scores = st.one_of(
    st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0]),
    st.floats(-5, 5, allow_nan=False, allow_infinity=False),
)
runs = st.dictionaries(st.sampled_from(QIDS), st.dictionaries(st.sampled_from(DOCS), scores, max_size=9), max_size=5)
qrels_st = st.dictionaries(
    st.sampled_from(QIDS),
    st.dictionaries(st.sampled_from(DOCS), st.integers(0, 3), max_size=7),
    max_size=5,
)
cutoffs = st.lists(st.integers(1, 12), min_size=1, max_size=3)
semantics_st = st.builds(
    MetricSemantics,
    relevance_threshold=st.integers(1, 3),
    mrr_cutoff=st.one_of(st.none(), st.integers(1, 12)),
    recall_ks=cutoffs,
    precision_ks=cutoffs,
    ndcg_ks=cutoffs,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run=runs, qrels=qrels_st, semantics=semantics_st)
def test_every_metric_equals_pytrec_eval(run, qrels, semantics):
    result = evaluate_run(run, qrels, semantics)
    expected = reference_metrics(run, qrels, semantics)

    judged = sorted(q for q, g in qrels.items() if g)
    assert list(result.qids) == judged
    assert set(result.excluded_qids) == {q for q in run if q not in judged}
    assert set(result.missing_qids) == {q for q in judged if q not in run}
    assert result.metric_names == semantics.metric_names()
    for name in result.metric_names:
        want = np.array([expected[name][q] for q in judged])
        np.testing.assert_allclose(result.per_query[name], want, rtol=0, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    run=st.dictionaries(
        st.sampled_from(QIDS),
        st.lists(st.sampled_from(DOCS), unique=True, max_size=9).map(
            lambda docs: {d: float(len(docs) - i) for i, d in enumerate(docs)}
        ),
    ),
    qrels=qrels_st,
)
def test_tie_free_run_is_passed_to_trec_eval_unchanged(run, qrels):
    """Without ties our numbers are trec_eval's on the very same run."""
    judged = {q: g for q, g in qrels.items() if g}
    result = evaluate_run(run, qrels, MetricSemantics(mrr_cutoff=None))
    trec = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.5", "recip_rank", "map"}).evaluate(run)
    for i, q in enumerate(result.qids):
        got = trec.get(q, {"ndcg_cut_5": 0.0, "recip_rank": 0.0, "map": 0.0})
        assert result.per_query["nDCG@5"][i] == got["ndcg_cut_5"]
        assert result.per_query["MRR"][i] == got["recip_rank"]
        assert result.per_query["MAP"][i] == got["map"]


def test_ties_broken_by_doc_id_ascending_unlike_trec_eval():
    run = {"q": {"b": 1.0, "a": 1.0, "c": 2.0}}
    qrels = {"q": {"a": 1}}
    assert ranked_doc_ids(run["q"]) == ["c", "a", "b"]
    result = evaluate_run(run, qrels)
    assert result.for_query("q")["MRR@10"] == 0.5
    # trec_eval itself breaks ties by doc id descending (c, b, a): RR 1/3.
    raw = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)
    assert raw["q"]["recip_rank"] == pytest.approx(1 / 3)


def test_tie_free_scores_only_rewrites_tied_queries():
    untied = {"a": 0.3, "b": 0.1}
    assert tie_free_scores(untied) is untied
    assert tie_free_scores({"b": 1.0, "a": 1.0, "c": 0.0}) == {"a": 3.0, "b": 2.0, "c": 1.0}
    with pytest.raises(MetricsError, match="NaN"):
        tie_free_scores({"a": math.nan, "b": 1.0})


def test_scores_equal_in_single_precision_are_ranked_by_full_precision():
    # trec_eval keeps scores as C floats: to it these two scores are tied.
    run = {"q": {"a": 1.0 + 1e-12, "b": 1.0}}
    qrels = {"q": {"a": 1}}
    raw = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)
    assert raw["q"]["recip_rank"] == 0.5
    assert tie_free_scores(run["q"]) == {"a": 2.0, "b": 1.0}
    assert evaluate_run(run, qrels).for_query("q")["MRR@10"] == 1.0


@settings(max_examples=200, deadline=None)
@given(scores=st.dictionaries(st.sampled_from(DOCS), scores, max_size=9))
def test_tie_free_scores_encode_our_order_in_single_precision(scores):
    fixed = tie_free_scores(scores)
    as_float32 = {doc: np.float32(value) for doc, value in fixed.items()}
    assert len(set(as_float32.values())) == len(scores)
    assert sorted(fixed, key=lambda doc: -as_float32[doc]) == reference_order(scores) == ranked_doc_ids(scores)


@settings(max_examples=100, deadline=None)
@given(scores=st.dictionaries(st.sampled_from(DOCS), scores, max_size=9), k=st.integers(1, 10))
def test_top_k_is_a_prefix_of_the_full_ranking(scores, k):
    assert top_k_doc_ids(scores, k) == reference_order(scores)[:k]


def test_hand_computed_example():
    # Ranking: d1 (grade 0), d2 (3), d3 (unjudged), d4 (1), d5 (unjudged);
    # d9 (grade 2) is relevant but not retrieved, so 3 relevant docs in all.
    run = {"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7, "d4": 0.6, "d5": 0.5}}
    qrels = {"q1": {"d1": 0, "d2": 3, "d4": 1, "d9": 2}}
    sem = MetricSemantics(recall_ks=(1, 3, 5), precision_ks=(1, 3, 5), ndcg_ks=(1, 5))
    m = evaluate_run(run, qrels, sem).for_query("q1")
    assert m["recall@1"] == 0
    assert m["recall@3"] == pytest.approx(1 / 3)
    assert m["recall@5"] == pytest.approx(2 / 3)
    assert m["P@1"] == 0
    assert m["P@3"] == pytest.approx(1 / 3)
    assert m["P@5"] == pytest.approx(2 / 5)
    assert m["MRR@10"] == pytest.approx(1 / 2)
    assert m["nDCG@1"] == 0
    dcg = 3 / math.log2(3) + 1 / math.log2(5)
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert m["nDCG@5"] == pytest.approx(dcg / ideal)
    assert m["MAP"] == pytest.approx((1 / 2 + 2 / 4) / 3)

    # MRR cut at 1: the first relevant doc is at rank 2.
    assert evaluate_run(run, qrels, MetricSemantics(mrr_cutoff=1)).for_query("q1")["MRR@1"] == 0

    # Threshold 2: only d2 and d9 are relevant; nDCG keeps the linear gain.
    strict = evaluate_run(run, qrels, MetricSemantics(relevance_threshold=2, ndcg_ks=(5,)))
    s = strict.for_query("q1")
    assert s["recall@5"] == pytest.approx(1 / 2)
    assert s["P@5"] == pytest.approx(1 / 5)
    assert s["MAP"] == pytest.approx((1 / 2) / 2)
    assert s["nDCG@5"] == pytest.approx(dcg / ideal)


def test_query_policy_excluded_and_missing():
    run = {"judged": {"a": 1.0}, "unjudged": {"a": 1.0}}
    qrels = {"judged": {"a": 1}, "absent": {"x": 2}, "empty": {}}
    m = evaluate_run(run, qrels)
    assert m.qids == ("absent", "judged")
    assert m.n_evaluated == 2
    assert m.excluded_qids == ("unjudged",) and m.n_excluded == 1
    assert m.missing_qids == ("absent",)
    assert all(v == 0 for v in m.for_query("absent").values())
    assert m.means()["MAP"] == pytest.approx(0.5)


def test_queries_with_only_non_relevant_judgments_score_zero():
    m = evaluate_run({"q": {"a": 1.0, "b": 0.5}}, {"q": {"a": 0, "b": 0}})
    assert m.n_evaluated == 1
    assert all(v == 0 for v in m.for_query("q").values())


def test_numpy_scores_and_int_scores_are_accepted():
    qrels = {"q": {"a": 1, "b": 2}}
    expected = evaluate_run({"q": {"a": 1.0, "b": 2.0}}, qrels).means()
    assert evaluate_run({"q": {"a": np.float32(1), "b": np.float32(2)}}, qrels).means() == expected
    assert evaluate_run({"q": {"a": 1, "b": 2}}, qrels).means() == expected


def test_bad_inputs_raise_metrics_error():
    with pytest.raises(MetricsError, match="grades must be integers"):
        evaluate_run({}, {"q": {"a": 1.5}})
    with pytest.raises(MetricsError, match="strings"):
        evaluate_run({"q": {1: 1.0}}, {"q": {"a": 1}})
    with pytest.raises(MetricsError, match="NaN"):
        evaluate_run({"q": {"a": math.nan, "b": 1.0}}, {"q": {"a": 1}})
    with pytest.raises(MetricsError, match="real numbers"):
        evaluate_run({"q": {"a": "high", "b": 1.0}}, {"q": {"a": 1}})
    with pytest.raises(MetricsError, match="not evaluated"):
        evaluate_run({}, {"q": {"a": 1}}).for_query("other")


def test_evaluate_runs_shares_qids_and_round_trips_to_dict():
    qrels = {"q1": {"a": 1}, "q2": {"b": 2}}
    results = evaluate_runs({"x": {"q1": {"a": 1.0}}, "y": {"q2": {"b": 1.0}}}, qrels)
    assert results["x"].qids == results["y"].qids == ("q1", "q2")
    rebuilt = RunMetrics.from_dict(results["x"].to_dict())
    assert rebuilt.qids == results["x"].qids
    assert rebuilt.semantics == results["x"].semantics
    for name, values in results["x"].per_query.items():
        np.testing.assert_array_equal(rebuilt.per_query[name], values)
    with pytest.raises(MetricsError):
        RunMetrics.from_dict(results["x"].to_dict(include_per_query=False))
