from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.metrics import (
    MetricSemantics,
    MetricsError,
    SemanticsMismatchError,
    compare_metrics,
    evaluate_and_compare,
    evaluate_run,
    hard_subset,
)

SEMANTICS = MetricSemantics(recall_ks=(1, 10), precision_ks=(1,), ndcg_ks=(10,))


def make_data(n_queries: int = 120, seed: int = 0):
    """A baseline, a clearly better system and a copy of the baseline."""
    rng = np.random.default_rng(seed)
    qrels, base, better = {}, {}, {}
    for i in range(n_queries):
        qid = f"q{i:03d}"
        docs = [f"d{j}" for j in range(30)]
        qrels[qid] = {d: int(rng.integers(0, 4)) for d in rng.choice(docs, 6, replace=False)}
        noise = rng.random(30)
        grades = np.array([qrels[qid].get(d, 0) for d in docs])
        base[qid] = dict(zip(docs, (noise + 0.1 * grades).tolist(), strict=True))
        better[qid] = dict(zip(docs, (noise + 0.6 * grades).tolist(), strict=True))
    return qrels, base, better


def test_evaluate_and_compare_end_to_end():
    qrels, base, better = make_data()
    runs = {"bm25": base, "tuned": better, "same": {q: dict(s) for q, s in base.items()}}
    hard = hard_subset(base, qrels, k=1)
    slices = {"even": [q for i, q in enumerate(sorted(qrels)) if i % 2 == 0], "hard": hard, "empty": []}
    report = evaluate_and_compare(runs, qrels, slices=slices, semantics=SEMANTICS, resamples=2000, seed=1)

    assert report.baseline == "bm25"
    assert report.metric_names == SEMANTICS.metric_names()
    assert report.slice_sizes == {"all": 120, "even": 60, "hard": len(hard), "empty": 0}
    assert set(report.comparisons) == {"tuned", "same"}
    overall = report.slice_summaries["tuned"]["all"].means
    assert overall == report.metrics["tuned"].means()

    tuned = report.comparisons["tuned"]
    assert tuned.holm_family_size == len(SEMANTICS.metric_names()) * 3  # empty slice left out
    cell = tuned.cell("nDCG@10")
    assert cell.verdict == "better" and cell.diff > 0 and cell.ci_low > 0
    assert cell.p_holm >= cell.p_value and cell.p_value == cell.p_randomization
    assert cell.wins + cell.ties + cell.losses == cell.n == 120
    assert cell.candidate_mean - cell.baseline_mean == pytest.approx(cell.diff)
    # The page shows the same mean in the metrics table and the comparison.
    assert cell.baseline_mean == report.slice_summaries["bm25"]["all"].means["nDCG@10"]
    assert tuned.cell("MAP", "even").candidate_mean == report.slice_summaries["tuned"]["even"].means["MAP"]
    assert tuned.cell("MAP", "hard").verdict == "better"
    empty = tuned.cell("MAP", "empty")
    assert empty.n == 0 and empty.p_value is None and empty.verdict == "not significant"

    same = report.comparisons["same"]
    assert {c.verdict for c in same.cells} == {"not significant"}
    assert all(c.ties == c.n for c in same.cells)

    # Everything the page needs is JSON (NaN never leaks out).
    text = json.dumps(report.to_dict(include_per_query=True), allow_nan=False)
    assert json.loads(text)["comparisons"]["tuned"]["resamples"] == 2000


def test_reproducible_and_holm_scopes():
    qrels, base, better = make_data(60, seed=2)
    runs = {"a": base, "b": better, "c": better}
    kwargs = {"semantics": SEMANTICS, "resamples": 500, "seed": 9, "classic_tests": False}
    first = evaluate_and_compare(runs, qrels, **kwargs)
    second = evaluate_and_compare(runs, qrels, **kwargs)
    assert first.to_dict() == second.to_dict()
    pooled = evaluate_and_compare(runs, qrels, holm_scope="all", **kwargs)
    for name in ("b", "c"):
        for per, pool in zip(first.comparisons[name].cells, pooled.comparisons[name].cells, strict=True):
            assert pool.p_value == per.p_value and pool.p_holm >= per.p_holm
    assert pooled.comparisons["b"].holm_family_size == 2 * first.comparisons["b"].holm_family_size


def test_bootstrap_test_option():
    qrels, base, better = make_data(60, seed=4)
    report = evaluate_and_compare({"a": base, "b": better}, qrels, semantics=SEMANTICS, test="bootstrap", resamples=500)
    cell = report.comparisons["b"].cell("nDCG@10")
    assert cell.p_randomization is None and cell.p_value == cell.p_bootstrap
    assert cell.verdict == "better"


def test_refuses_mismatched_semantics_and_query_sets():
    qrels, base, better = make_data(20)
    a = evaluate_run(base, qrels, SEMANTICS)
    b = evaluate_run(
        better, qrels, MetricSemantics(relevance_threshold=2, recall_ks=(1, 10), precision_ks=(1,), ndcg_ks=(10,))
    )
    with pytest.raises(SemanticsMismatchError, match="relevance_threshold"):
        compare_metrics(a, b)
    fewer = evaluate_run(better, dict(list(qrels.items())[:10]), SEMANTICS)
    with pytest.raises(MetricsError, match="different query sets"):
        compare_metrics(a, fewer)
    comparison = compare_metrics(a, evaluate_run(better, qrels, SEMANTICS), resamples=300, candidate_name="new")
    assert comparison.candidate == "new" and comparison.cell("MAP").verdict == "better"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": "nope"}, "baseline"),
        ({"holm_scope": "global"}, "holm_scope"),
        ({"test": "t-test"}, "unknown test"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_arguments(kwargs, message):
    qrels, base, better = make_data(10)
    with pytest.raises(MetricsError, match=message):
        evaluate_and_compare({"a": base, "b": better}, qrels, resamples=50, **kwargs)


def test_no_runs():
    with pytest.raises(MetricsError, match="no runs"):
        evaluate_and_compare({}, {})
