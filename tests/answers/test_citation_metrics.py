"""Hand-computed cases of the answer metrics (Django-free): ALCE recall/precision incl. over-citation, rates, CIs."""

from __future__ import annotations

import pytest

from evaluation.metrics.citations import (
    CONTRADICTED,
    PARTIAL,
    SUPPORTED,
    UNSUPPORTED,
    AnswerJudgement,
    ClaimSupport,
    agreement,
    alce_claim,
    answer_scores,
    compare_answer_runs,
    judge_calibration,
    per_query_scores,
    summarize,
)
from evaluation.metrics.errors import MetricsError


def test_single_citation_is_precise_exactly_when_it_supports() -> None:
    assert alce_claim(ClaimSupport((1,), SUPPORTED, {1: True})) == (1, 1, 1)
    assert alce_claim(ClaimSupport((1,), UNSUPPORTED, {1: False})) == (0, 0, 1)


def test_no_citation_means_no_recall_and_no_precision_denominator() -> None:
    assert alce_claim(ClaimSupport((), SUPPORTED, {})) == (0, 0, 0)


def test_over_citation_rule() -> None:
    # [1] supports alone, [2] does not and is not needed: [2] is an over-citation (ALCE), so precision 1/2.
    assert alce_claim(ClaimSupport((1, 2), SUPPORTED, {1: True, 2: False})) == (1, 1, 2)
    # Neither supports alone but together they do: both are needed, both precise.
    assert alce_claim(ClaimSupport((1, 2), SUPPORTED, {1: False, 2: False})) == (1, 2, 2)
    # Three citations: [1] alone supports; [2] and [3] are each removable -> 1 of 3 precise.
    assert alce_claim(ClaimSupport((1, 2, 3), SUPPORTED, {1: True, 2: False, 3: False})) == (1, 1, 3)
    # Both support alone: both precise.
    assert alce_claim(ClaimSupport((1, 2), SUPPORTED, {1: True, 2: True})) == (1, 2, 2)
    # Jointly unsupported with several citations: none precise.
    assert alce_claim(ClaimSupport((1, 2), UNSUPPORTED, {1: False, 2: False})) == (0, 0, 2)


def test_gold_oracle_joint_support_is_any_supporting_citation() -> None:
    claim = ClaimSupport.from_alone([1, 2], {1: False, 2: True})
    assert claim.label == SUPPORTED and alce_claim(claim) == (1, 1, 2)
    assert ClaimSupport.from_alone([3], {}).label == UNSUPPORTED


def test_answer_scores_by_hand() -> None:
    a = AnswerJudgement(
        "q1",
        abstained=False,
        claims=(
            ClaimSupport((1, 2), SUPPORTED, {1: True, 2: False}),  # recall 1, precise 1 of 2
            ClaimSupport((3,), UNSUPPORTED, {3: False}),  # recall 0, precise 0 of 1
            ClaimSupport((), PARTIAL, {}),  # recall 0, no citations
        ),
        usefulness=4,
    )
    s = answer_scores(a)
    assert s["citation_recall"] == pytest.approx(1 / 3)
    assert s["citation_precision"] == pytest.approx(1 / 3)
    assert s["faithfulness"] == pytest.approx(1 / 3)
    assert s["hallucination"] == 1.0  # the unsupported claim
    assert s["usefulness"] == 4


def test_partial_is_not_a_hallucination_and_the_reviewer_flag_wins() -> None:
    partial = AnswerJudgement("q", abstained=False, claims=(ClaimSupport((1,), PARTIAL, {1: False}),))
    assert answer_scores(partial)["hallucination"] == 0.0
    flagged = AnswerJudgement("q", abstained=False, claims=partial.claims, hallucination=True)
    assert answer_scores(flagged)["hallucination"] == 1.0
    contradicted = AnswerJudgement("q", abstained=False, claims=(ClaimSupport((1,), CONTRADICTED, {1: False}),))
    assert answer_scores(contradicted)["hallucination"] == 1.0


def test_undetermined_claims_are_counted_not_averaged() -> None:
    a = AnswerJudgement(
        "q", abstained=False, claims=(ClaimSupport((1,), None, {}), ClaimSupport((2,), SUPPORTED, {2: True}))
    )
    s = answer_scores(a)
    assert s["faithfulness"] == 1.0  # 1 of the 1 determined claim
    assert s["citation_recall"] is None  # ALCE needs every claim determined
    report = summarize([a])
    assert report["slices"]["all"]["undetermined_claims"] == 1


def test_abstained_answers_have_no_citation_figures() -> None:
    s = answer_scores(AnswerJudgement("q", abstained=True, usefulness=2))
    assert s["citation_recall"] is None and s["faithfulness"] is None and s["usefulness"] == 2


def test_abstention_precision_and_recall_by_hand() -> None:
    answers = [
        AnswerJudgement("a", abstained=True, should_abstain=True),
        AnswerJudgement("b", abstained=True, should_abstain=False),
        AnswerJudgement("c", abstained=False, should_abstain=True),
        AnswerJudgement("d", abstained=False, should_abstain=False),
        AnswerJudgement("e", abstained=False, should_abstain=False),
        AnswerJudgement("f", abstained=False, should_abstain=None),  # unknown: not counted
    ]
    m = summarize(answers, resamples=200)["slices"]["all"]["metrics"]
    assert m["abstention_precision"]["mean"] == pytest.approx(1 / 2)  # a of {a, b}
    assert m["abstention_recall"]["mean"] == pytest.approx(1 / 2)  # a of {a, c}
    assert m["answer_rate"]["mean"] == pytest.approx(2 / 3)  # d, e of {b, d, e}
    assert m["abstention_precision"]["n"] == 2 and m["abstention_recall"]["n"] == 2


def test_confidence_intervals_bracket_the_mean_and_are_reproducible() -> None:
    answers = [
        AnswerJudgement(
            f"q{i}",
            abstained=False,
            claims=(ClaimSupport((1,), SUPPORTED if i % 3 else UNSUPPORTED, {1: bool(i % 3)}),),
        )
        for i in range(30)
    ]
    one = summarize(answers, resamples=500, seed=3)["slices"]["all"]["metrics"]["citation_recall"]
    two = summarize(answers, resamples=500, seed=3)["slices"]["all"]["metrics"]["citation_recall"]
    assert one == two
    assert one["mean"] == pytest.approx(20 / 30)
    assert one["low"] < one["mean"] < one["high"]


def test_slices_and_failed_queries() -> None:
    answers = [
        AnswerJudgement("a", abstained=False, claims=(ClaimSupport((1,), SUPPORTED, {1: True}),)),
        AnswerJudgement("b", abstained=False, claims=(ClaimSupport((1,), UNSUPPORTED, {1: False}),)),
    ]
    r = summarize(answers, slices={"tag=x": ["a", "zz"]}, failed=["zz"], resamples=100)
    assert r["slices"]["tag=x"]["n"] == 1 and r["slices"]["tag=x"]["failed"] == 1
    assert r["slices"]["tag=x"]["metrics"]["faithfulness"]["mean"] == 1.0
    assert r["slices"]["all"]["metrics"]["faithfulness"]["mean"] == 0.5
    with pytest.raises(MetricsError):
        summarize([answers[0], answers[0]])


def test_compare_two_runs_paired() -> None:
    base = [
        AnswerJudgement(f"q{i}", abstained=False, claims=(ClaimSupport((1,), UNSUPPORTED, {1: False}),))
        for i in range(20)
    ]
    better = [
        AnswerJudgement(f"q{i}", abstained=False, claims=(ClaimSupport((1,), SUPPORTED, {1: True}),)) for i in range(20)
    ]
    cells = compare_answer_runs(per_query_scores(base), per_query_scores(better), resamples=2000)
    by = {c["metric"]: c for c in cells}
    assert by["citation_recall"]["diff"] == 1.0 and by["citation_recall"]["verdict"] == "better"
    assert by["hallucination"]["diff"] == -1.0 and by["hallucination"]["verdict"] == "better"  # lower is better
    assert by["usefulness"]["n"] == 0 and by["usefulness"]["verdict"] == "no data"


def test_agreement_and_kappa() -> None:
    items = {1: {"r1": "supported", "r2": "supported"}, 2: {"r1": "unsupported", "r2": "supported"},
             3: {"r1": "unsupported", "r2": "unsupported"}, 4: {"r1": "supported"}}  # fmt: skip
    a = agreement(items)
    assert a["n"] == 3 and a["disagreements"] == 1 and a["observed"] == pytest.approx(2 / 3)
    # kappa by hand: po = 2/3; pe = (1/3*2/3) + (2/3*1/3) = 4/9; (2/3 - 4/9) / (1 - 4/9) = 0.4
    assert a["kappa"] == pytest.approx(0.4)


def test_judge_calibration_gate_and_undetermined() -> None:
    human = {i: SUPPORTED if i % 2 else UNSUPPORTED for i in range(40)}
    perfect = dict(human)
    perfect[99] = None  # undetermined output for a claim: counted only
    cal = judge_calibration(human, perfect, min_kappa=0.6, min_items=30)
    assert cal["kappa"] == 1.0 and cal["bias"] == 0.0 and cal["n"] == 40 and cal["undetermined"] == 1
    assert cal["usable"]
    lenient = {i: SUPPORTED for i in range(40)}
    cal = judge_calibration(human, lenient, min_kappa=0.6, min_items=30)
    assert cal["bias"] == pytest.approx(0.5) and not cal["usable"]
    few = judge_calibration(human, {i: human[i] for i in range(5)}, min_items=30)
    assert not few["usable"] and "only 5" in few["why"]
