"""Benchmark: a reranker blended with BM25 at shallow depths, on SciFact *test*, with the weight chosen on dev.

The weight is chosen exactly as a reranker's training run chooses it (``training.ml.rerank_dev``: the app's dev rerank
samples, ``choose_blend_weight`` with its cross-validated check), never on test. Then, for a seeded sample of test
queries, BM25's top 50 are reranked by the teacher (``TEACHER``, float32 through the serving ``CrossEncoderReranker``)
at depths 5 ... 50, alone and blended, the rest kept in BM25 order below (as the search engine does); and the rerank
stage's latency is timed at each depth. Run under the AVX2 cap for AVX2 latencies:

  ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 TEACHER=<reranker dir> \
  MINING_CACHE=<cache> .venv/bin/python bench/rerank_blend_depth.py     (QUALITY_QUERIES 100, LATENCY_QUERIES 20)

Each configuration's per-query nDCG@10 is compared, paired, with the float32 teacher reranking all 50 alone (the
issue's reference) by the app's ``paired_tests`` (randomization p and a 95 % bootstrap interval of the difference).
The depth a 500 ms rerank budget affords is read off this run's own p95 at 20 and 50 candidates exactly as the app
does from a backend measurement (``workbench.retrieval.rerank_budget``), and that depth is then timed to check the
prediction.

JSON to bench/results/rerank_blend_depth.json (BENCH_RESULT_NAME for another name; RERANK_BUDGET_MS, 500).
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
from evaluation.metrics.significance import paired_tests  # noqa: E402
from training.ml.config import CrossEncoderConfig  # noqa: E402
from training.ml.datasets import prepare  # noqa: E402
from training.ml.rerank_dev import RerankDevEvaluator  # noqa: E402
from training.ml.train import first_stage_candidates  # noqa: E402
from workbench.retrieval.adaptive import tail_scores  # noqa: E402
from workbench.retrieval.blend import blend_scores  # noqa: E402
from workbench.retrieval.bm25 import build_bm25  # noqa: E402
from workbench.retrieval.encoders import base_model_path  # noqa: E402
from workbench.retrieval.rerank import CrossEncoderReranker  # noqa: E402
from workbench.retrieval.rerank_budget import depth_for_budget, rerank_cost  # noqa: E402

DEPTHS = tuple(range(5, 55, 5))  # quality at each (one scoring pass of the top 50 serves them all)
TIMED = (5, 10, 15, 20, 30, 50)
TOP = 50
BUDGET_MS = float(os.environ.get("RERANK_BUDGET_MS", 500))
REFERENCE = f"alone@{TOP}"


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
    per_query = {
        name: np.asarray([v["ndcg_cut_10"] for _, v in sorted(evaluator_trec.evaluate(run).items())])
        for name, run in runs.items()
    }
    quality = {name: round(float(v.mean()), 4) for name, v in per_query.items()}
    log(f"test nDCG@10 over {len(qids)} queries: {quality}")
    versus = {}
    for name, values in per_query.items():
        if name == REFERENCE:
            continue
        t = paired_tests(per_query[REFERENCE], values, resamples=10_000, seed=0, classic_tests=False)
        versus[name] = {
            "diff": round(float(t.diff[0, 0]), 4),
            "ci95": [round(float(t.ci_low[0, 0]), 4), round(float(t.ci_high[0, 0]), 4)],
            "p_randomization": round(float(t.p_randomization[0, 0]), 4),
            "wins_ties_losses": [int(t.wins[0, 0]), int(t.ties[0, 0]), int(t.losses[0, 0])],
        }
    # 3. the rerank stage's latency at each depth (the serving reranker, float32)
    latency_qids = qids[: int(os.environ.get("LATENCY_QUERIES", 20))]

    def timed(depth: int) -> dict[str, float]:
        ms = []
        for q in latency_qids:
            ids = list(runs["bm25"][q])[:depth]
            t = time.perf_counter()
            reranker.score(queries[q], [text_of[d] for d in ids])
            ms.append((time.perf_counter() - t) * 1000)
        out = {f"p{p}": round(float(np.percentile(ms, p)), 1) for p in (50, 95)}
        log(f"depth {depth}: {out}")
        return out

    latency = {str(depth): timed(depth) for depth in TIMED}
    # 4. the depth the budget affords, read off the p95 at 20 and 50 as the app reads a backend measurement
    cost = rerank_cost({k: latency[k] for k in ("20", "50")})
    assert cost is not None
    fit = depth_for_budget(cost, BUDGET_MS, top_n=TOP)
    measured = latency.get(str(fit.depth)) or timed(fit.depth)
    budget = {
        "budget_ms": BUDGET_MS,
        "cost_line": {"intercept_ms": round(cost.intercept_ms, 1), "per_pair_ms": round(cost.per_pair_ms, 2)},
        "depth": fit.depth,
        "fits": fit.fits,
        "predicted_p95_ms": fit.predicted_ms,
        "measured_p95_ms": measured["p95"],
        "blended_test_ndcg@10": quality.get(f"blended@{fit.depth}"),
        "blended_vs_teacher_alone_top50": versus.get(f"blended@{fit.depth}"),
    }
    log(f"budget {BUDGET_MS:.0f} ms: {budget}")
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
            "reference": f"{REFERENCE} (the float32 teacher reranking all {TOP} alone)",
            "vs_reference": versus,
            "rerank_latency_ms": latency,
            "latency_queries": len(latency_qids),
            "rerank_budget": budget,
        },
    )


if __name__ == "__main__":
    main()
