"""Benchmark: a reranker blended with BM25 at shallow depths, on SciFact *test*, with the weight chosen on dev.

The weight is chosen exactly as a reranker's training run chooses it (``training.ml.rerank_dev``: the app's dev rerank
samples, ``choose_blend_weight`` with its cross-validated check), never on test. Then, for a seeded sample of test
queries, BM25's top 50 are reranked by the teacher (``TEACHER``, float32 through the serving ``CrossEncoderReranker``)
at depths 5 ... 50, alone and blended, the rest kept in BM25 order below (as the search engine does); and the rerank
stage's latency is timed at each depth. Run under the AVX2 cap for AVX2 latencies:

  ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 TEACHER=<reranker dir> \
  MINING_CACHE=<cache> .venv/bin/python bench/rerank_blend_depth.py     (QUALITY_QUERIES 100, LATENCY_QUERIES 20)

JSON to bench/results/rerank_blend_depth.json.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-blend-"))
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pytrec_eval  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_corpus, load_qrels, load_queries, write_result  # noqa: E402
from bench._training import scifact_snapshot  # noqa: E402
from training.ml.config import CrossEncoderConfig  # noqa: E402
from training.ml.datasets import prepare  # noqa: E402
from training.ml.rerank_dev import RerankDevEvaluator  # noqa: E402
from training.ml.train import first_stage_candidates  # noqa: E402
from workbench.retrieval.adaptive import tail_scores  # noqa: E402
from workbench.retrieval.blend import blend_scores  # noqa: E402
from workbench.retrieval.bm25 import build_bm25  # noqa: E402
from workbench.retrieval.encoders import base_model_path  # noqa: E402
from workbench.retrieval.rerank import CrossEncoderReranker  # noqa: E402

DEPTHS = (5, 10, 15, 20, 30, 50)
TOP = 50


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def main() -> None:
    torch.set_num_threads(2)
    teacher_path = os.environ["TEACHER"]
    reranker = CrossEncoderReranker(teacher_path, precision="float32")
    # 1. the weight, on dev, as a training run picks it
    setup = scifact_snapshot(time.strftime("%Y%m%d-%H%M%S"), log)
    prepared = prepare(setup.data, setup.collection)
    cache = os.environ.get("MINING_CACHE") or tempfile.mkdtemp(prefix="blend-mining-")
    _, samples = first_stage_candidates(base_model_path(), prepared, CrossEncoderConfig(), cache, None, log)
    evaluator = RerankDevEvaluator(samples)
    dev = evaluator(reranker.model, steps=0)
    choice = evaluator.blend_choice(0)
    assert choice is not None
    weight = choice.weight
    log(f"dev: reranker {dev['dev_ndcg@10']:.4f}, first stage {dev['dev_base_ndcg@10']:.4f}; blend {choice.as_dict()}")
    # 2. test: BM25 top 50, reranked at each depth, alone and blended
    doc_ids, texts = load_corpus()
    text_of = dict(zip([str(d) for d in doc_ids.tolist()], texts, strict=True))
    queries, qrels = load_queries(), load_qrels("test")
    bm25 = build_bm25(doc_ids, texts)
    qids = sorted(random.Random(0).sample(sorted(qrels), min(len(qrels), int(os.environ.get("QUALITY_QUERIES", 100)))))
    runs: dict[str, dict[str, dict[str, float]]] = {}
    for q in qids:
        rows, scores = bm25.search(queries[q], TOP)
        ids = [str(int(d)) for d in rows]
        first = np.asarray(scores, dtype=np.float64)
        rr = np.asarray(reranker.score(queries[q], [text_of[d] for d in ids]), dtype=np.float64)
        runs.setdefault("bm25", {})[q] = {d: float(s) for d, s in zip(ids, first, strict=True)}
        for depth in DEPTHS:
            for name, w in (("alone", 1.0), ("blended", weight)):
                head = blend_scores(first[:depth], rr[:depth], w)
                tail = tail_scores(float(head.min()), len(ids) - depth)  # below the head, as search does
                runs.setdefault(f"{name}@{depth}", {})[q] = dict(zip(ids, [*head.tolist(), *tail], strict=True))
    evaluator_trec = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in qids}, {"ndcg_cut.10"})
    quality = {
        name: round(float(np.mean([v["ndcg_cut_10"] for v in evaluator_trec.evaluate(run).values()])), 4)
        for name, run in runs.items()
    }
    log(f"test nDCG@10 over {len(qids)} queries: {quality}")
    # 3. the rerank stage's latency at each depth (the serving reranker, float32)
    latency = {}
    for depth in DEPTHS:
        ms = []
        for q in qids[: int(os.environ.get("LATENCY_QUERIES", 20))]:
            ids = list(runs["bm25"][q])[:depth]
            t = time.perf_counter()
            reranker.score(queries[q], [text_of[d] for d in ids])
            ms.append((time.perf_counter() - t) * 1000)
        latency[str(depth)] = {f"p{p}": round(float(np.percentile(ms, p)), 1) for p in (50, 95)}
        log(f"depth {depth}: {latency[str(depth)]}")
    write_result(
        "rerank_blend_depth",
        {
            "benchmark": "rerank_blend_depth",
            "machine": {**machine_info(), "isa_cap": os.environ.get("ATEN_CPU_CAPABILITY", "")},
            "teacher": teacher_path,
            "dev": {"reranker": dev["dev_ndcg@10"], "first_stage": dev["dev_base_ndcg@10"], "blend": choice.as_dict()},
            "test_queries": len(qids),
            "first_stage": f"BM25 top {TOP}",
            "test_ndcg@10": quality,
            "rerank_latency_ms": latency,
        },
    )


if __name__ == "__main__":
    main()
