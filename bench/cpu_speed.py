"""Benchmark: serving speed on this CPU per inference backend, and what each costs in fidelity.

For every backend available here (``workbench.retrieval.backends``: torch float32, torch bf16 where native, torch
dynamic int8, OpenVINO float32):
- encoder: passages/s on SciFact abstracts (256 tokens) against plain sentence-transformers float32 ``encode``, and
  cosine to float32 (the index-build gate is cosine >= 0.999);
- cross-encoders (the trained teacher reranker and, if given, its distilled student): pairs/s and p50/p95 ms per
  query at top 20/50/100, and nDCG@10 / recall@10 / MRR@10 on SciFact *test* queries for BM25 top 50 reranked,
  beside the float32 teacher's figures (target: p95 <= 500 ms at top 50 within 0.5 nDCG point of the teacher);
- adaptive rerank depth: mean depth and nDCG@10 per margin (``workbench.retrieval.adaptive.rerank_depth_effect``);
- the automatic choice the app makes (``measure_backends``) on lists of SciFact *train* queries (never test).

Run: .venv/bin/python bench/cpu_speed.py  (TEACHER, STUDENT: model directories; default TEACHER is the reranker
recorded by bench/scifact_quality.py; QUALITY_QUERIES (50) and LATENCY_QUERIES (20) test queries; ENC_PASSAGES (384);
BACKENDS: a comma list of backends to measure, default all available).
JSON to bench/results/cpu_speed.json with the CPU model and flags inside.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytrec_eval  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_corpus, load_qrels, load_queries, write_result  # noqa: E402
from workbench.retrieval.adaptive import DepthQuery, rerank_depth_effect  # noqa: E402
from workbench.retrieval.backend_measure import DevList, measure_backends  # noqa: E402
from workbench.retrieval.backends import (  # noqa: E402
    TORCH_FP32,
    available_backends,
    cpu_info,
    load_encoder_backend,
    load_reranker_backend,
)
from workbench.retrieval.bm25 import build_bm25  # noqa: E402
from workbench.retrieval.encoders import base_model_path, load_encoder  # noqa: E402

THREADS = int(os.environ.get("THREADS", "2"))
# BACKENDS: a comma list to measure only some of the available backends (default: all of them)
ONLY = {b.strip() for b in os.environ.get("BACKENDS", "").split(",") if b.strip()}


def backends_here() -> list[str]:
    return [b for b in available_backends() if not ONLY or b in ONLY]


DEPTHS = (20, 50, 100)
QUALITY_DEPTH = 50


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def percentiles(ms: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "mean": round(float(np.mean(ms)), 1),
    }


def quality(run: dict[str, dict[str, float]], qrels: dict) -> dict[str, float]:
    per = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "recip_rank"}).evaluate(run)
    mean = {m: float(np.mean([per[q][m] for q in per])) for m in ("ndcg_cut_10", "recall_10")}
    # MRR@10: reciprocal rank of the first relevant document in the top 10 (pytrec's recip_rank is uncut).
    mrr = []
    for q, rel in qrels.items():
        ranked = sorted(run.get(q, {}).items(), key=lambda x: -x[1])[:10]
        mrr.append(next((1.0 / (i + 1) for i, (d, _) in enumerate(ranked) if rel.get(d, 0) > 0), 0.0))
    return {
        "ndcg@10": round(mean["ndcg_cut_10"], 4),
        "recall@10": round(mean["recall_10"], 4),
        "mrr@10": round(float(np.mean(mrr)), 4),
    }


def encoder_section(texts: list[str]) -> dict:
    base = base_model_path()
    sample = random.Random(0).sample(texts, int(os.environ.get("ENC_PASSAGES", 384)))
    plain = load_encoder(base)
    plain.max_seq_length = 256
    plain.encode(sample[:16], batch_size=32)
    t0 = time.perf_counter()
    reference = plain.encode(sample, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    plain_s = time.perf_counter() - t0
    out = {"passages": len(sample), "plain_sentence_transformers_fp32_passages_per_s": round(len(sample) / plain_s, 1)}
    rows = {}
    for name in backends_here():
        encoder = load_encoder_backend(base, name, threads=THREADS)
        encoder.encode_passages(sample[:16], batch_size=32)
        t0 = time.perf_counter()
        vectors = np.asarray(encoder.encode_passages(sample, batch_size=32), dtype=np.float32)
        secs = time.perf_counter() - t0
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        cos = (vectors * reference).sum(1)
        rows[name] = {
            "passages_per_s": round(len(sample) / secs, 1),
            "speedup_vs_plain_fp32": round(plain_s / secs, 2),
            "cosine_mean": round(float(cos.mean()), 6),
            "cosine_min": round(float(cos.min()), 6),
            "passes_index_gate_0.999": bool(cos.min() >= 0.999),
        }
        log(f"encoder {name}: {rows[name]}")
    out["backends"] = rows
    return out


def reranker_section(
    label: str,
    path: str,
    queries: dict[str, str],
    candidates: dict[str, list[tuple[str, float]]],
    text_of: dict[str, str],
    qrels: dict,
    quality_qids: list[str],
    latency_qids: list[str],
    teacher_fp32: dict | None,
) -> tuple[dict, dict[str, dict[str, dict[str, float]]]]:
    rows: dict[str, dict] = {}
    scores_by_backend: dict[str, dict[str, dict[str, float]]] = {}
    for name in backends_here():
        reranker = load_reranker_backend(path, name, threads=THREADS)
        reranker.score("warm up", [text_of[d] for d, _ in candidates[quality_qids[0]][:8]])
        row: dict = {"latency_ms": {}}
        for depth in DEPTHS:
            ms = []
            for q in latency_qids if depth != QUALITY_DEPTH else quality_qids:
                passages = [text_of[d] for d, _ in candidates[q][:depth]]
                t0 = time.perf_counter()
                s = reranker.score(queries[q], passages)
                ms.append((time.perf_counter() - t0) * 1000)
                if depth == QUALITY_DEPTH:
                    scores_by_backend.setdefault(name, {})[q] = {
                        d: float(v) for (d, _), v in zip(candidates[q][:depth], s, strict=True)
                    }
            row["latency_ms"][str(depth)] = percentiles(ms)
        mean_ms = row["latency_ms"][str(QUALITY_DEPTH)]["mean"]
        row["pairs_per_s_top50"] = round(QUALITY_DEPTH * 1000 / max(mean_ms, 1e-9), 1)
        run = {}
        for q in quality_qids:
            reranked = scores_by_backend[name][q]
            run[q] = {d: 1000.0 + v for d, v in reranked.items()}
            run[q].update({d: -i for i, (d, _) in enumerate(candidates[q][QUALITY_DEPTH:100])})
        row["quality_top50"] = quality(run, {q: qrels[q] for q in quality_qids})
        fp32 = scores_by_backend.get(TORCH_FP32)
        if fp32 and name != TORCH_FP32:
            rho = [_spearman(fp32[q], scores_by_backend[name][q]) for q in quality_qids]
            row["spearman_vs_own_fp32"] = round(float(np.nanmean(rho)), 4)
        rows[name] = row
        log(f"{label} {name}: {json.dumps(row)}")
    own = rows[TORCH_FP32]["quality_top50"]["ndcg@10"]
    ref = teacher_fp32["quality_top50"]["ndcg@10"] if teacher_fp32 else own
    for row in rows.values():
        row["ndcg@10_minus_own_fp32"] = round(row["quality_top50"]["ndcg@10"] - own, 4)
        row["ndcg@10_minus_teacher_fp32"] = round(row["quality_top50"]["ndcg@10"] - ref, 4)
        row["meets_target_p95_500ms_within_0.5pt"] = bool(
            row["latency_ms"]["50"]["p95"] <= 500 and row["ndcg@10_minus_teacher_fp32"] >= -0.005
        )
    return rows, scores_by_backend


def _spearman(a: dict[str, float], b: dict[str, float]) -> float:
    from scipy.stats import spearmanr

    keys = sorted(a)
    return float(spearmanr([a[k] for k in keys], [b[k] for k in keys]).correlation)


def app_choice(path: str, queries: dict[str, str], candidates, text_of, qrels_train: dict, qids: list[str]) -> dict:
    dev = [
        DevList(
            query=queries[q],
            passages=[text_of[d] for d, _ in candidates[q][:QUALITY_DEPTH]],
            grades=[qrels_train[q].get(d, 0) for d, _ in candidates[q][:QUALITY_DEPTH]],
        )
        for q in qids
    ]
    report = measure_backends("cross-encoder", path, dev_lists=dev, threads=THREADS, repeats=1, log=log)
    return {k: report[k] for k in ("chosen", "reason", "default") if k in report} | {
        "backends": [
            {k: b.get(k) for k in ("name", "passed", "refused_reason", "items_per_s", "fidelity")}
            for b in report.get("backends", [])
        ]
    }


def main() -> None:
    started = time.perf_counter()
    torch.set_num_threads(THREADS)
    doc_ids, texts = load_corpus()
    ids = [str(d) for d in doc_ids.tolist()]
    text_of = dict(zip(ids, texts, strict=True))
    queries = load_queries()
    qrels = load_qrels("test")
    qrels_train = load_qrels("train")
    log("BM25 first stage")
    bm25 = build_bm25(doc_ids, texts)

    def first_stage(q: str) -> list[tuple[str, float]]:
        rows, scores = bm25.search(queries[q], 100)
        return [(str(int(d)), float(s)) for d, s in zip(rows, scores, strict=True)]

    rng = random.Random(0)
    test_qids = sorted(qrels)
    quality_qids = sorted(rng.sample(test_qids, min(len(test_qids), int(os.environ.get("QUALITY_QUERIES", 50)))))
    latency_qids = quality_qids[: int(os.environ.get("LATENCY_QUERIES", 20))]
    train_qids = sorted(random.Random(1).sample(sorted(qrels_train), 12))
    candidates = {q: first_stage(q) for q in {*quality_qids, *train_qids}}
    bm25_run = {q: {d: s for d, s in candidates[q]} for q in quality_qids}
    result: dict = {
        "benchmark": "cpu_speed",
        "machine": {
            **machine_info(),
            "backends_available": available_backends(),
            "cpu_flags_seen": sorted(cpu_info().flags),
        },
        "threads": THREADS,
        "first_stage": "BM25 (bm25s), top 100 per query",
        "quality_queries": f"{len(quality_qids)} SciFact test queries (seeded sample), BM25 top {QUALITY_DEPTH} "
        "reranked",
        "bm25_quality": quality(bm25_run, {q: qrels[q] for q in quality_qids}),
    }
    log("encoders")
    result["encoder"] = encoder_section(texts)
    teacher = (
        os.environ.get("TEACHER")
        or json.loads((ROOT / "bench/results/scifact_quality.json").read_text())["artifacts"]["reranker"]
    )
    models = [("teacher", teacher)] + ([("student", os.environ["STUDENT"])] if os.environ.get("STUDENT") else [])
    result["rerankers"] = {}
    teacher_fp32 = None
    depth_rows = None
    for label, path in models:
        log(f"{label}: {path}")
        rows, scores = reranker_section(
            label, path, queries, candidates, text_of, qrels, quality_qids, latency_qids, teacher_fp32
        )
        if label == "teacher":
            teacher_fp32 = rows[TORCH_FP32]
            depth_rows = rerank_depth_effect(
                [
                    DepthQuery(
                        ids=[int(d) for d, _ in candidates[q]],
                        scores=[s for _, s in candidates[q]],
                        rerank={int(d): v for d, v in scores[TORCH_FP32][q].items()},
                        qrels={int(d): g for d, g in qrels[q].items()},
                    )
                    for q in quality_qids
                ],
                top_n=QUALITY_DEPTH,
            )
        result["rerankers"][label] = {
            "path": path,
            "backends": rows,
            "app_choice_on_train_lists": app_choice(path, queries, candidates, text_of, qrels_train, train_qids),
        }
    result["adaptive_rerank_depth_teacher_fp32"] = depth_rows
    result["total_seconds"] = round(time.perf_counter() - started)
    with open("/proc/loadavg") as fh:
        result["load_average_at_end"] = fh.read().split()[:3]
    write_result("cpu_speed", result)
    log(f"done in {result['total_seconds']} s")


if __name__ == "__main__":
    main()
