"""The run files an evaluation exports reproduce its numbers under trec_eval (no database needed)."""

from __future__ import annotations

import pytrec_eval

from evaluation.metrics import MetricSemantics, evaluate_run, read_trec_qrels
from evaluation.trec import read_query_run, write_qrels, write_run


def _trec_eval(run_path, qrels_path, semantics: MetricSemantics) -> dict[str, dict[str, float]]:
    """What trec_eval computes from the two files as written (encoded ids, rank column ignored)."""
    qrels = read_trec_qrels(qrels_path)
    run: dict[str, dict[str, float]] = {}
    for line in run_path.read_text(encoding="utf-8").splitlines():
        qid, _q0, doc, _rank, score, _tag = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    measures = {"P.1,2", "ndcg_cut.3", "map", "recip_rank"}
    return pytrec_eval.RelevanceEvaluator(qrels, measures, relevance_level=semantics.relevance_threshold).evaluate(run)


def test_exported_hybrid_like_run_gives_the_page_numbers_under_trec_eval(tmp_path):
    # RRF-like ties, a tie that exists only in float32, and ids whose order changes once percent-encoded
    # ("a b" < "a!" but "a%20b" > "a!").
    rrf = 1 / 61
    run = {
        "q 1": {"a b": rrf, "a!": rrf, "z": 0.5 * (1 + 1e-12), "y": 0.5, "m": 1 / 62},
        "q2": {"d1": 0.0, "d2": 0.0, "d10": 0.0, "x": -1.0},
    }
    qrels = {"q 1": {"a b": 1, "y": 2, "m": 0}, "q2": {"d1": 1, "d10": 3}}
    semantics = MetricSemantics(mrr_cutoff=None, recall_ks=(1,), precision_ks=(1, 2), ndcg_ks=(3,))
    page = evaluate_run(run, qrels, semantics)
    write_run(run, tmp_path / "run.trec", tag="hybrid", depth=100)
    write_qrels(qrels, tmp_path / "qrels.txt")
    trec = _trec_eval(tmp_path / "run.trec", tmp_path / "qrels.txt", semantics)
    keys = {"P@1": "P_1", "P@2": "P_2", "nDCG@3": "ndcg_cut_3", "MAP": "map", "MRR": "recip_rank"}
    for qid, encoded in (("q 1", "q%201"), ("q2", "q2")):
        mine = page.for_query(qid)
        assert {name: trec[encoded][key] for name, key in keys.items()} == {name: mine[name] for name in keys}
    # The drill-down reads the file back: same order as the page, scores equal to float32 precision.
    back = read_query_run(tmp_path / "run.trec", "q 1")
    assert sorted(back, key=lambda d: -back[d]) == ["z", "y", "a b", "a!", "m"]
    assert back["z"] == run["q 1"]["z"] and back["a b"] == rrf and back["m"] == 1 / 62
    assert abs(back["a!"] - rrf) <= 2 * 2.0**-23 * rrf and abs(back["y"] - 0.5) <= 2 * 2.0**-23 * 0.5
