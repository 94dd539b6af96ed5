"""Gate decisions on constructed numbers and comparisons: floors and per-slice non-inferiority."""

from __future__ import annotations

from releases.services.gates import FAILED, NOT_COMPUTABLE, PASSED, floor_gate, gates_blocking, noninferiority_gate


def cell(metric: str, slice_: str, diff: float, verdict: str, p_holm: float = 0.01) -> dict:
    return {"metric": metric, "slice": slice_, "diff": diff, "verdict": verdict, "p_holm": p_holm}


def test_floors_pass_fail_and_unknown() -> None:
    assert floor_gate("recall@5", 0.81, 0.8, higher_is_better=True).status == PASSED
    assert floor_gate("recall@5", 0.8, 0.8, higher_is_better=True).status == PASSED  # "at least"
    assert floor_gate("recall@5", 0.79, 0.8, higher_is_better=True).status == FAILED
    assert floor_gate("p95", 1199.0, 1200.0, higher_is_better=False).status == PASSED
    assert floor_gate("p95", 1200.0, 1200.0, higher_is_better=False).status == FAILED  # "below"
    unknown = floor_gate("hallucination rate", None, 0.05, higher_is_better=False, why="no answer QA yet")
    assert unknown.status == NOT_COMPUTABLE and unknown.detail == "no answer QA yet"


def test_noninferiority_fails_only_significant_drops_beyond_the_margin() -> None:
    metrics = ["nDCG@10", "recall@10"]
    fine = [
        cell("nDCG@10", "all", -0.015, "worse"),  # significant but within the margin
        cell("nDCG@10", "tag=hard", -0.10, "not significant", 0.4),  # large but not significant
        cell("recall@10", "all", 0.05, "better"),
        cell("MAP", "all", -0.5, "worse"),  # not a gated metric
    ]
    assert noninferiority_gate(fine, metrics=metrics, margin=0.02).status == PASSED
    bad = [*fine, cell("recall@10", "tenant=acme", -0.04, "worse", 0.003)]
    gate = noninferiority_gate(bad, metrics=metrics, margin=0.02)
    assert gate.status == FAILED and "recall@10 on tenant=acme: -0.040" in gate.detail and "MAP" not in gate.detail
    assert noninferiority_gate([cell("MAP", "all", -1, "worse")], metrics=metrics, margin=0.02).status == (
        NOT_COMPUTABLE
    )


def test_blocking_gates_are_failed_or_unknown() -> None:
    gates = [{"status": s, "name": s} for s in (PASSED, FAILED, NOT_COMPUTABLE, "not applicable")]
    assert [g["status"] for g in gates_blocking(gates)] == [FAILED, NOT_COMPUTABLE]


def test_hallucination_gate_reads_the_release_answer_qa(db) -> None:  # type: ignore[no-untyped-def]
    from releases.models import Release
    from releases.services.gates import answer_hallucination, gates_evaluate
    from tests.answers.factories import make_finished_answer_run
    from tests.factories import make_project

    project = make_project()
    run = make_finished_answer_run(project, answers=2)
    release = Release.objects.create(project=project, number=1, name="r", configuration=run.configuration)
    assert answer_hallucination(release)[0] is None  # no answer run among its reports
    release.answer_runs.add(run)
    value, why = answer_hallucination(release)
    assert value is None and "neither reviews nor gold" in why  # not reviewed, no gold: still not computable
    run.summary = {**run.summary, "gold": {"slices": {"all": {"metrics": {"hallucination": {"mean": 0.02}}}}}}
    run.save(update_fields=["summary"])
    gate = next(g for g in gates_evaluate(release) if g.name == "hallucination rate")
    assert gate.status == PASSED and gate.measured == 0.02 and "from gold evidence" in gate.detail
