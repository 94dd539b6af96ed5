"""Benchmark: SciFact test baselines through the engine (BM25, base dense model, hybrid RRF), scored by pytrec_eval.

The index is built with ``build_index`` (Flat + BM25, cached MiniLM passage embeddings) and queried with
``LoadedIndex.search``, the path the search page uses. Document = title + " " + text, document-level qrels, nDCG@10
and recall@100 over the 300 test queries (BEIR convention; a query with no results counts as 0). Runs are handed to
pytrec_eval with strictly decreasing scores per rank, so it evaluates exactly our ranking (ties broken by id).

Published reference points: BM25 0.665 (BEIR paper, Elasticsearch with an English stemming analyzer),
all-MiniLM-L6-v2 0.645 nDCG@10.

Prints JSON and writes bench/results/baselines.json.
Run: .venv/bin/python bench/baselines.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytrec_eval  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import corpus_embeddings, load_corpus, load_qrels, load_queries, write_result  # noqa: E402
from workbench.retrieval.encoders import base_model_path, cpu_has_fast_bf16  # noqa: E402
from workbench.retrieval.index_build import build_index  # noqa: E402
from workbench.retrieval.search import LoadedIndex  # noqa: E402

DEPTH = 100
PUBLISHED_NDCG10 = {"bm25": 0.665, "dense": 0.645}


def evaluate(index: LoadedIndex, qrels: dict, queries: dict, **search_kwargs: object) -> dict:
    run: dict[str, dict[str, float]] = {}
    total_ms = []
    for qid in qrels:
        result = index.search(queries[qid], k=DEPTH, **search_kwargs)
        total_ms.append(result.timings_ms["total"])
        run[qid] = {str(h.passage_id): float(DEPTH - rank) for rank, h in enumerate(result.hits)}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)

    def mean(metric: str) -> float:
        return round(float(np.mean([per_query.get(q, {}).get(metric, 0.0) for q in qrels])), 4)

    return {
        "ndcg@10": mean("ndcg_cut_10"),
        "recall@100": mean("recall_100"),
        "search_ms_mean": round(float(np.mean(total_ms)), 2),
    }


def main() -> None:
    torch.set_num_threads(1)  # serving setting: one query at a time
    started = time.perf_counter()
    doc_ids, texts = load_corpus()
    qrels = load_qrels("test")
    queries = load_queries()
    passages = list(zip(doc_ids.tolist(), texts, strict=True))
    precisions = ["float32"] + (["bfloat16"] if cpu_has_fast_bf16() else [])
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in precisions:
            out = Path(tmp) / precision
            manifest = build_index(
                out_dir=out,
                passages=passages,
                encoder_path=base_model_path(),
                index_type="flat",
                embeddings=corpus_embeddings(precision),
                store_texts=False,
            )
            index = LoadedIndex(out)
            suffix = "" if precision == "float32" else f" ({precision} passages)"
            if precision == "float32":
                rows["bm25"] = evaluate(index, qrels, queries, mode="bm25")
                rows["bm25"]["published_ndcg@10"] = PUBLISHED_NDCG10["bm25"]
                rows["bm25"]["params"] = manifest["parameters"]["bm25"]
            rows["dense" + suffix] = evaluate(index, qrels, queries, mode="dense")
            rows["dense" + suffix]["published_ndcg@10"] = PUBLISHED_NDCG10["dense"]
            for alpha in (0.3, 0.5, 0.7):
                rows[f"hybrid_rrf_alpha{alpha}" + suffix] = evaluate(index, qrels, queries, mode="hybrid", alpha=alpha)
    result = {
        "benchmark": "baselines",
        "machine": machine_info(),
        "dataset": "SciFact (BEIR) test: 300 queries, 5,183 documents, title + text",
        "evaluation": "pytrec_eval ndcg_cut.10 and recall.100, mean over all test queries",
        "model": "all-MiniLM-L6-v2, exact (Flat) inner product on normalised vectors",
        "hybrid": f"RRF k=60, alpha weighs dense, each list {DEPTH} deep",
        "bm25_note": f"bm25s, k1 1.2, b 0.75, English stopwords, stemmer {rows['bm25']['params']['stemmer']}; the "
        "published 0.665 used Elasticsearch's English analyzer (stemming)",
        "results": rows,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_result("baselines", result)


if __name__ == "__main__":
    main()
