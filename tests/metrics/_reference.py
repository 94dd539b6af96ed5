"""Independent reference: pytrec_eval called directly on tie-free runs."""

from __future__ import annotations

import pytrec_eval

from evaluation.metrics import MetricSemantics


def reference_order(scores: dict[str, float]) -> list[str]:
    """Score descending, ties by doc id ascending (two stable sorts)."""
    return sorted(sorted(scores), key=lambda doc: -scores[doc])


def _strictly_decreasing(docs: list[str]) -> dict[str, float]:
    return {doc: 1.0 / (i + 1) for i, doc in enumerate(docs)}


def reference_metrics(
    run: dict[str, dict[str, float]],
    qrels: dict[str, dict[str, int]],
    semantics: MetricSemantics,
) -> dict[str, dict[str, float]]:
    """metric name -> {qid: value} over judged queries, straight from pytrec_eval."""
    judged = {q: g for q, g in qrels.items() if g}
    level = semantics.relevance_threshold
    measures = {"recip_rank", "map"}
    for name, ks in (
        ("recall", semantics.recall_ks),
        ("P", semantics.precision_ks),
        ("ndcg_cut", semantics.ndcg_ks),
    ):
        measures |= {f"{name}.{k}" for k in ks}
    ordered = {q: reference_order(s) for q, s in run.items() if q in judged}
    full = pytrec_eval.RelevanceEvaluator(judged, measures, relevance_level=level).evaluate(
        {q: _strictly_decreasing(docs) for q, docs in ordered.items()}
    )
    # MRR@k is recip_rank on the run cut at k: evaluate the cut run for real.
    cut = semantics.mrr_cutoff
    cut_run = {q: _strictly_decreasing(docs[:cut]) for q, docs in ordered.items()}
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}, relevance_level=level).evaluate(cut_run)

    def get(results: dict, qid: str, key: str) -> float:
        return results[qid][key] if qid in results else 0.0

    out: dict[str, dict[str, float]] = {}
    for k in semantics.recall_ks:
        out[f"recall@{k}"] = {q: get(full, q, f"recall_{k}") for q in judged}
    for k in semantics.precision_ks:
        out[f"P@{k}"] = {q: get(full, q, f"P_{k}") for q in judged}
    out[semantics.mrr_name] = {q: get(rr, q, "recip_rank") for q in judged}
    for k in semantics.ndcg_ks:
        out[f"nDCG@{k}"] = {q: get(full, q, f"ndcg_cut_{k}") for q in judged}
    out["MAP"] = {q: get(full, q, "map") for q in judged}
    return out
