from __future__ import annotations

import json

import pytest

from evaluation.metrics import MetricSemantics, MetricsError, SemanticsMismatchError


def test_defaults_and_metric_names():
    sem = MetricSemantics()
    assert sem.relevance_threshold == 1
    assert sem.mrr_cutoff == 10
    assert sem.metric_names() == (
        "recall@1", "recall@3", "recall@5", "recall@10", "recall@20", "recall@100",
        "P@1", "P@3", "P@5", "P@10", "P@20", "P@100",
        "MRR@10", "nDCG@5", "nDCG@10", "MAP",
    )  # fmt: skip
    assert MetricSemantics(mrr_cutoff=None).mrr_name == "MRR"


def test_round_trip_through_json():
    sem = MetricSemantics(relevance_threshold=2, recall_ks=(10, 1, 10), mrr_cutoff=None)
    assert sem.recall_ks == (1, 10)
    data = json.loads(json.dumps(sem.to_dict()))
    assert MetricSemantics.from_dict(data) == sem


@pytest.mark.parametrize(
    "kwargs",
    [
        {"recall_ks": (0,)},
        {"precision_ks": (5, -1)},
        {"ndcg_ks": (2.5,)},
        {"mrr_cutoff": 0},
        {"mrr_cutoff": True},
        {"relevance_threshold": 0},
        {"recall_ks": "10"},
        {"tie_breaking": "score desc, then doc id descending"},
        {"version": 99},
    ],
)
def test_invalid_semantics_are_refused(kwargs):
    with pytest.raises(MetricsError):
        MetricSemantics(**kwargs)


def test_unknown_fields_are_refused():
    with pytest.raises(MetricsError, match="unknown semantics fields: colour"):
        MetricSemantics.from_dict({**MetricSemantics().to_dict(), "colour": "blue"})


def test_mismatch_is_a_value_error_naming_the_difference():
    a, b = MetricSemantics(), MetricSemantics(relevance_threshold=2)
    a.require_same(MetricSemantics())
    assert a.differences(b) == {"relevance_threshold": (1, 2)}
    with pytest.raises(SemanticsMismatchError, match="relevance_threshold: 1 vs 2") as info:
        a.require_same(b)
    assert isinstance(info.value, ValueError)
