from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.metrics import (
    MetricSemantics,
    MetricsError,
    aggregate_slices,
    evaluate_run,
    hard_subset,
    slice_masks,
)


def test_slice_masks_ignore_unknown_queries():
    masks = slice_masks(["a", "b", "c"], {"x": {"a", "c", "zzz"}, "empty": set()})
    np.testing.assert_array_equal(masks, [[True, False], [False, False], [True, False]])


def test_aggregate_slices_means_and_sizes():
    run = {"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q3": {"c": 1.0}}
    qrels = {"q1": {"a": 1}, "q2": {"x": 1}, "q3": {"c": 1}}
    metrics = evaluate_run(run, qrels, MetricSemantics(recall_ks=(1,), precision_ks=(), ndcg_ks=()))
    out = aggregate_slices(metrics, {"odd": ["q1", "q3"], "two": ["q2", "unjudged"], "none": []})
    assert list(out) == ["all", "odd", "two", "none"]
    assert out["all"].n == 3 and out["all"].means["recall@1"] == pytest.approx(2 / 3)
    assert out["odd"].n == 2 and out["odd"].means["MAP"] == 1.0
    assert out["two"].n == 1 and out["two"].means["MRR@10"] == 0.0
    assert out["none"].n == 0 and math.isnan(out["none"].means["MAP"])
    assert out["none"].to_dict()["means"]["MAP"] is None
    with pytest.raises(MetricsError, match="reserved"):
        aggregate_slices(metrics, {"all": ["q1"]})


def test_hard_subset():
    baseline = {
        "found": {"rel": 3.0, "x": 2.0},
        "missed": {"x": 3.0, "y": 2.0, "rel": 1.0},  # relevant doc at rank 3
        "negative": {"rel": 3.0, "neg": 2.0},  # an audited hard negative in the top 2
        "tie": {"rel": 1.0, "z": 1.0, "a": 1.0},  # ties: a, rel, z -> rel at rank 2
        "nothing_relevant": {"x": 1.0},
    }
    qrels = {
        "found": {"rel": 1},
        "missed": {"rel": 2, "x": 0},
        "negative": {"rel": 1},
        "tie": {"rel": 1},
        "nothing_relevant": {"x": 0},
        "not_retrieved": {"rel": 1},
        "unjudged": {},
    }
    negatives = {"negative": {"neg"}, "found": {"other"}}
    assert hard_subset(baseline, qrels, k=2, hard_negatives=negatives) == {
        "missed",
        "negative",
        "not_retrieved",
    }
    assert hard_subset(baseline, qrels, k=1) == {"missed", "tie", "not_retrieved"}
    # With threshold 2 only "missed" has a relevant doc (grade 2) at all.
    assert hard_subset(baseline, qrels, k=2, relevance_threshold=2) == {"missed"}
    with pytest.raises(MetricsError):
        hard_subset(baseline, qrels, k=0)


def test_hard_subset_agrees_with_mrr_at_k():
    """Without hard negatives, hard == has relevant docs and MRR@k == 0."""
    rng = np.random.default_rng(3)
    run = {f"q{i}": {f"d{j}": float(rng.integers(0, 4)) for j in range(12)} for i in range(60)}
    qrels = {f"q{i}": {f"d{j}": int(rng.integers(0, 3)) for j in range(0, 30, 3)} for i in range(60)}
    m = evaluate_run(run, qrels, MetricSemantics(mrr_cutoff=5))
    has_relevant = {q for q, g in qrels.items() if max(g.values()) >= 1}
    expected = {q for q, v in zip(m.qids, m.per_query["MRR@5"], strict=True) if v == 0} & has_relevant
    assert hard_subset(run, qrels, k=5) == expected
