"""Hand-made cases with a scripted engine: document aggregation, qrels, metric values, slices and verdicts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from django.urls import reverse

from evaluation import services
from evaluation.metrics import read_trec_run
from evaluation.models import EvalConfig
from tests.evaluation.factories import (
    FakeEngine,
    fake_engines,
    judge,
    make_doc,
    make_encoder,
    make_index,
    make_query,
    spec,
)
from tests.factories import make_corpus, make_project, make_user
from workbench.models import QueryTag

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny():  # type: ignore[no-untyped-def]
    """Four documents (d1 has two passages), three queries in tag "test"; q3 has no judgments."""
    project = make_project()
    corpus = make_corpus(project)
    d1, (p1a, p1b) = make_doc(corpus, "d1", passages=2, tenant="acme")
    d2, (p2,) = make_doc(corpus, "d2", doc_type="faq")
    d3, (p3,) = make_doc(corpus, "d3")
    d4, (p4,) = make_doc(corpus, "d4")
    test = QueryTag.objects.create(project=project, name="test", held_out=True)
    extra = QueryTag.objects.create(project=project, name="extra")
    q1 = make_query(project, "q1", "aspirin fever", test, extra)
    q2 = make_query(project, "q2", "statins", test)
    make_query(project, "q3", "unjudged", test)
    judge(q1, d1, 1)
    judge(q1, d1, 2, source="annotator")  # max grade per (query, document) counts: 2
    judge(q1, d3, 0)
    judge(q1, d4, 3, source="annotator", cant_judge=True)  # can't-judge: not a judgment at all
    judge(q2, d2, 1)
    encoder = make_encoder(project)
    hits = {
        # d1's passages score 0.8 and 0.7: the document scores 0.8 (its best passage) and appears once.
        "aspirin fever": [(p2.pk, 0.9), (p1b.pk, 0.8), (p1a.pk, 0.7), (p3.pk, 0.6), (p4.pk, 0.5)],
        "statins": [(p2.pk, 0.4), (p1a.pk, 0.3)],
        "unjudged": [(p3.pk, 0.2)],
    }
    return project, corpus, test, encoder, hits


def test_metrics_of_a_hand_made_case(tiny, client) -> None:  # type: ignore[no-untyped-def]
    project, corpus, test, encoder, hits = tiny
    index = make_index(project, corpus, encoder)
    engine = FakeEngine(hits)
    with fake_engines({index.pk: engine}):
        run = services.eval_run_start(
            project=project, user=None, tag=test, depth=10, resamples=200, background=False,
            configs=[spec(index=index, mode="dense")],
        )  # fmt: skip
    cfg = EvalConfig.objects.get(eval_run=run)
    ranked = read_trec_run(Path(cfg.run_file))
    assert ranked["q1"] == {"d2": 0.9, "d1": 0.8, "d3": 0.6, "d4": 0.5}
    assert list(ranked["q2"]) == ["d2", "d1"] and set(ranked) == {"q1", "q2", "q3"}
    means = run.report["configs"][cfg.label]["metrics"]["means"]
    ndcg_q1 = (2 / math.log2(3)) / 2  # d1 (grade 2) at rank 2; ideal: it at rank 1
    expected = {
        "recall@1": 0.5, "recall@3": 1.0, "P@1": 0.5, "P@3": 1 / 3, "MRR@10": 0.75, "MAP": 0.75,
        "nDCG@5": (ndcg_q1 + 1) / 2, "nDCG@10": (ndcg_q1 + 1) / 2,
    }  # fmt: skip
    for name, value in expected.items():
        assert means[name] == pytest.approx(value), name
    metrics = run.report["configs"][cfg.label]["metrics"]
    assert metrics["n_evaluated"] == 2 and metrics["n_excluded"] == 1
    # Depth 10 caps the cutoffs: recall@20/@100 are not reported, and the page says so.
    assert "recall@20" not in means and "recall@100" not in means
    assert any("recall@20 and P@20, recall@100 and P@100 are not reported" in n for n in run.notes)
    assert run.semantics["aggregation"] == "max passage score per document" and run.semantics["depth"] == 10
    assert run.semantics["recall_ks"] == [1, 3, 5, 10]
    # Slices: the query set's own tag would repeat "all"; metadata slices follow relevant documents.
    assert run.slices["tag=extra"] == ["q1"]
    assert run.slices["tenant=acme"] == ["q1"] and run.slices["doc_type=faq"] == ["q2"]
    assert "hard" not in run.slices and any("hard subset is empty" in n for n in run.notes)
    latency = cfg.results["latency"]
    assert set(latency) == {"embed", "dense", "total"} and latency["total"]["n"] == 3
    assert latency["total"]["p50"] <= latency["total"]["p95"] <= latency["total"]["p99"]
    assert cfg.results["top1"] == {"q1": 0.9, "q2": 0.4, "q3": 0.2}
    assert engine.calls == 4  # one untimed warm-up, then each query once

    # Pages of a one-configuration evaluation: nothing to compare, everything else shown.
    client.force_login(make_user(is_superuser=True))
    html = client.get(reverse("evaluation:detail", kwargs={"slug": project.slug, "pk": run.pk})).content.decode()
    assert "MRR@10" in html and "0.7500" in html and "recall@20" not in html.split('id="comparison"')[1]
    q1 = project.queries.get(external_id="q1")
    url = reverse("evaluation:query", kwargs={"slug": project.slug, "pk": run.pk, "query_pk": q1.pk})
    html = client.get(url).content.decode()
    assert 'title="grade 2"' in html and "d4" in html.split("Unjudged documents in the top 10")[1]  # can't-judge
    csv_url = reverse("evaluation:unjudged_csv", kwargs={"slug": project.slug, "pk": run.pk})
    rows = client.get(csv_url).content.decode().splitlines()[1:]
    assert sorted(r.split(",")[0] + "/" + r.split(",")[2] for r in rows) == ["q1/d2", "q1/d4", "q2/d1", "q3/d3"]


def test_verdicts_wins_and_ci_on_a_clear_improvement(tiny) -> None:  # type: ignore[no-untyped-def]
    project, corpus, test, encoder, _ = tiny
    docs = {}
    hits_a, hits_b = {}, {}
    for i in range(12):
        rel, (rp,) = make_doc(corpus, f"r{i}")
        _, (np_,) = make_doc(corpus, f"n{i}")
        query = make_query(project, f"c{i}", f"claim {i}", test)
        judge(query, rel, 1)
        docs[i] = rel
        hits_a[query.text] = [(np_.pk, 0.9), (rp.pk, 0.8)]  # relevant at rank 2
        hits_b[query.text] = [(rp.pk, 0.9), (np_.pk, 0.8)]  # relevant at rank 1
    a, b = make_index(project, corpus, encoder), make_index(project, corpus, encoder)
    with fake_engines({a.pk: FakeEngine(hits_a), b.pk: FakeEngine(hits_b)}):
        run = services.eval_run_start(
            project=project, user=None, tag=test, depth=10, background=False,
            configs=[spec(index=a, mode="dense"), spec(index=b, mode="dense")], labels=["A", "B"],
        )  # fmt: skip
    assert run.resamples == 10_000 and run.seed == 0
    comparison = run.report["comparisons"]["B"]
    assert comparison["resamples"] == 10_000 and comparison["test"] == "randomization"
    cells = {(c["metric"], c["slice"]): c for c in comparison["cells"]}
    # q1 and q2 of the fixture: A and B return nothing for them (the fake knows only the claims), so they tie.
    mrr = cells[("MRR@10", "all")]
    assert mrr["verdict"] == "better" and (mrr["wins"], mrr["ties"], mrr["losses"]) == (12, 2, 0)
    assert mrr["diff"] == pytest.approx(6 / 14) and mrr["ci_low"] > 0 and mrr["ci_high"] <= 0.5 + 1e-9
    assert mrr["p_value"] < mrr["p_holm"] <= 0.05
    recall3 = cells[("recall@3", "all")]
    assert recall3["verdict"] == "not significant" and recall3["diff"] == 0 and recall3["ties"] == 14
    # The hard subset: no base encoder is evaluated, so the first configuration (A) defines it.
    assert run.hard_baseline.label == "A"
    assert run.slices["hard"] == ["q1", "q2"]  # A never ranks q1/q2's relevant documents
    assert any("Hard subset" in n and "the first configuration" in n for n in run.notes)


def test_hard_subset_baseline_is_the_base_encoder_in_dense_mode(tiny) -> None:  # type: ignore[no-untyped-def]
    project, corpus, test, encoder, hits = tiny
    base = make_encoder(project, builtin=True)
    plain, builtin = make_index(project, corpus, encoder), make_index(project, corpus, base)
    with fake_engines({plain.pk: FakeEngine(hits), builtin.pk: FakeEngine({})}):
        run = services.eval_run_start(
            project=project, user=None, tag=test, depth=10, resamples=200, background=False,
            configs=[spec(index=plain, mode="bm25"), spec(index=builtin, mode="dense")],
        )  # fmt: skip
    assert run.hard_baseline.position == 2 and run.baseline.position == 1
    assert run.slices["hard"] == ["q1", "q2"]  # the base encoder retrieved nothing
    assert any("the base encoder in dense mode" in n for n in run.notes)


def test_doc_scores_truncates_ties_in_the_pinned_order() -> None:
    from evaluation.metrics import top_k_doc_ids
    from workbench.retrieval.search import Hit
    from workbench.services.batch_search import doc_scores

    hits = [Hit(1, 0.9), Hit(2, 0.5), Hit(3, 0.5), Hit(4, 0.5), Hit(5, 0.1)]
    doc_of = {1: "d-a", 2: "d-z", 3: "d-b", 4: "d-m", 5: "d-c"}
    best = {doc_of[h.passage_id]: h.score for h in hits}
    for depth in range(1, 6):
        assert list(doc_scores(hits, doc_of, depth)) == top_k_doc_ids(best, depth)
