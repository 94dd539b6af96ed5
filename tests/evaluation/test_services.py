"""Evaluation service end to end on a SciFact slice with a tiny encoder: job, artifacts, errors, comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation import selectors, services
from evaluation.metrics import evaluate_run, read_trec_qrels, read_trec_run
from evaluation.models import EvalConfig, EvalRun
from evaluation.tasks import evaluation_run
from tests.evaluation.factories import make_index, make_query, spec
from tests.factories import make_corpus
from workbench.errors import WorkbenchError
from workbench.models import Document, Job, Judgment, QueryTag
from workbench.services import indexes

pytestmark = pytest.mark.django_db

Spec = spec


def test_evaluation_job_end_to_end(built, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, index = built
    test = QueryTag.objects.get(project=project, name="test")
    with django_capture_on_commit_callbacks(execute=True):
        run = services.eval_run_start(
            project=project, user=lead, tag=test, resamples=2000, seed=7,
            configs=[Spec(index=index, mode="bm25"), Spec(index=index, mode="dense"),
                     Spec(index=index, mode="hybrid", alpha=0.3)],
        )  # fmt: skip
    job = Job.objects.get(pk=run.job_id)
    assert job.kind == "evaluation_run" and job.queue == "default"
    assert job.status == "succeeded", (job.message, job.log_tail)
    assert job.progress == 1.0 and "Evaluated 3 configurations on 10 judged queries" in job.message
    run.refresh_from_db()
    assert run.is_complete and run.finished_at and run.seed == 7 and run.resamples == 2000
    assert (
        run.baseline.position == 1 and run.hard_baseline.configuration.mode == "dense"
    )  # the base encoder in dense mode
    report = run.report
    assert set(report["configs"]) == {c.label for c in run.configs.all()}
    assert report["metric_names"][:6] == [f"recall@{k}" for k in (1, 3, 5, 10, 20, 100)]
    assert {"MRR@10", "nDCG@5", "nDCG@10", "MAP", "P@100"} <= set(report["metric_names"])
    assert len(report["comparisons"]) == 2
    cell = report["comparisons"][run.configs.get(position=2).label]["cells"][0]
    assert {"diff", "ci_low", "ci_high", "p_value", "p_holm", "verdict", "wins", "ties", "losses"} <= set(cell)
    assert report["semantics"]["recall_ks"] == run.semantics["recall_ks"]

    doc_ids = set(Document.objects.filter(corpus=corpus).values_list("external_id", flat=True))
    qrels = read_trec_qrels(Path(run.artifact_dir) / "qrels.txt")
    for cfg in run.configs.all():
        ranked = read_trec_run(Path(cfg.run_file))
        assert Path(cfg.run_file).parent == Path(run.artifact_dir)
        assert set(ranked) == set(test.queries.values_list("external_id", flat=True))
        assert all(set(docs) <= doc_ids and 0 < len(docs) <= 100 for docs in ranked.values())
        # The stored numbers are what the run file gives under the stored semantics.
        recomputed = evaluate_run(ranked, qrels, services.metric_semantics(run.semantics))
        assert recomputed.means() == pytest.approx(report["configs"][cfg.label]["metrics"]["means"])
        # Exactly, query by query: the file's scores encode the page's ranking (no ties left for anyone to break).
        stored = cfg.results["metrics"]
        assert list(recomputed.qids) == stored["qids"]
        assert {k: v.tolist() for k, v in recomputed.per_query.items()} == stored["per_query"]
        assert len(cfg.results["metrics"]["per_query"]["nDCG@10"]) == 10
        assert set(cfg.results["top1"]) <= set(ranked)
        latency = cfg.results["latency"]
        assert {
            "total": True,
            "bm25": cfg.configuration.mode != "dense",
            "fuse": cfg.configuration.mode == "hybrid",
        } == {s: s in latency for s in ("total", "bm25", "fuse")}
        assert set(latency["total"]) == {"n", "p50", "p95", "p99"}
    manifest = json.loads((Path(run.artifact_dir) / "manifest.json").read_text())
    assert manifest["kind"] == "evaluation" and manifest["semantics"]["aggregation"] == "max passage score per document"
    assert (Path(run.artifact_dir) / "report.json").is_file()
    # An index that evaluations depend on (through their search configurations) cannot be deleted.
    with pytest.raises(WorkbenchError, match="search configurations"):
        indexes.index_version_delete(index=index)


def test_cancel_and_failure_keep_nothing(built, settings) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, index = built
    test = QueryTag.objects.get(project=project, name="test")

    def start() -> EvalRun:  # queued only: the on-commit enqueue never fires inside the test transaction
        return services.eval_run_start(project=project, user=lead, tag=test, configs=[Spec(index=index)], resamples=200)

    run = start()
    Job.objects.filter(pk=run.job_id).update(cancel_requested=True)
    evaluation_run.apply(args=[run.job_id])
    assert Job.objects.get(pk=run.job_id).status == "cancelled"
    run.refresh_from_db()
    assert not run.is_complete and not run.artifact_dir

    run = start()
    Judgment.objects.filter(query__tags=test).delete()  # the judgments went away before the job ran
    evaluation_run.apply(args=[run.job_id])
    job = Job.objects.get(pk=run.job_id)
    assert job.status == "failed" and "has a judgment on corpus scifact" in job.message
    evals = Path(settings.ARTIFACTS_DIR) / "evals"
    assert not evals.exists() or not any(evals.iterdir())


def test_bad_input_is_refused_with_a_clear_message(built) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, index = built
    test = QueryTag.objects.get(project=project, name="test")

    def start(configs=None, **kw) -> EvalRun:  # type: ignore[no-untyped-def]
        kw.setdefault("tag", test)
        return services.eval_run_start(
            project=project, user=lead, configs=[Spec(index=index)] if configs is None else configs, **kw
        )

    empty = QueryTag.objects.create(project=project, name="empty")
    with pytest.raises(WorkbenchError, match="tag empty has no queries"):
        start(tag=empty)
    make_query(project, "new-1", "a query nobody judged", empty)
    with pytest.raises(WorkbenchError, match="None of the 1 queries in tag empty has a judgment on corpus scifact"):
        start(tag=empty)
    for depth in (0, 5, 1000):
        with pytest.raises(
            WorkbenchError, match=rf"Depth \(documents per query\) must be between 10 and 333 \(got {depth}\)"
        ):
            start(depth=depth)
    newer = make_index(project, corpus, index.encoder, corpus_version=index.corpus_version + 1)
    with pytest.raises(WorkbenchError, match=r"same corpus version: .* from version 1 of scifact, .* from version 2"):
        start([Spec(index=index), Spec(index=newer)])
    other = make_index(project, make_corpus(project, name="other"), index.encoder)
    with pytest.raises(WorkbenchError, match="same corpus: configuration 1 uses scifact, configuration 2 uses other"):
        start([Spec(index=index), Spec(index=other)])
    with pytest.raises(WorkbenchError, match="Configuration 2 repeats configuration 1"):
        start([Spec(index=index, mode="bm25"), Spec(index=index, mode="bm25")])
    with pytest.raises(WorkbenchError, match="at least one configuration"):
        start([])
    with pytest.raises(WorkbenchError, match="Baseline must be between 1 and 1"):
        start(baseline=2)
    assert not EvalRun.objects.exists() and not Job.objects.filter(kind="evaluation_run").exists()


def test_comparisons_across_evaluations_need_equal_semantics_and_queries(built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, index = built
    test = QueryTag.objects.get(project=project, name="test")
    train = QueryTag.objects.get(project=project, name="train")

    def evaluate(mode: str, **kw) -> EvalConfig:  # type: ignore[no-untyped-def]
        kw.setdefault("tag", test)
        run = services.eval_run_start(
            project=project, user=lead, configs=[Spec(index=index, mode=mode)], resamples=500, background=False, **kw
        )
        return EvalConfig.objects.select_related("eval_run").get(eval_run=run)

    dense, hybrid = evaluate("dense"), evaluate("hybrid")
    shallow, other_queries = evaluate("bm25", depth=20), evaluate("bm25", tag=train)
    comparison = selectors.comparison_build(baseline=dense, candidates=[hybrid])
    name = f"{hybrid.label} [evaluation #{hybrid.eval_run_id}]"
    assert comparison["columns"] == [dense.label, name]
    cells = comparison["comparisons"][name]["cells"]
    assert {c["verdict"] for c in cells} <= {"better", "worse", "not significant"}
    assert comparison["comparisons"][name]["resamples"] == 500
    with pytest.raises(WorkbenchError, match=r"results with different semantics cannot be compared: depth: 100 vs 20"):
        selectors.comparison_build(baseline=dense, candidates=[shallow])
    with pytest.raises(WorkbenchError, match="results on different query sets cannot be compared"):
        selectors.comparison_build(baseline=dense, candidates=[other_queries])
    judgment = Judgment.objects.filter(query__tags=test).first()
    judgment.grade = 3 if judgment.grade != 3 else 2
    judgment.save()
    changed = evaluate("bm25")
    with pytest.raises(WorkbenchError, match="different judgments cannot be compared"):
        selectors.comparison_build(baseline=dense, candidates=[changed])
