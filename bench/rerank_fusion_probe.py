"""Probe: does a reranker that loses to the first stage on its own help when fused with it? (dev split only)

A fresh-head reranker trained on SciFact's 686 train queries stays under the dense first stage on dev (0.76 vs 0.78
after 6 epochs, ``distill_quality-epyc-bf16-teacher6.json``), so the app keeps the first stage. Interpolating the two
is the standard remedy in IR. This scores the app's own dev rerank samples (each dev query's first-stage top 20, as
``training.ml.train`` builds them) with a trained reranker (``TEACHER``) and reports dev nDCG@10 of: the first stage,
the reranker, their reciprocal-rank fusion (k = 60), and a per-query z-scored linear blend ``w * reranker + (1 - w) *
first stage`` for w in 0, 0.1, ..., 1 -- with w chosen by 2-fold cross-validation over dev queries (seeded), so the
fused figure is not tuned on the queries it is reported on. Nothing touches SciFact's test split.

Run: TEACHER=<reranker dir> .venv/bin/python bench/rerank_fusion_probe.py   (MINING_CACHE: a mining cache to reuse)
JSON to bench/results/rerank_fusion_probe.json.
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
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-fusion-"))
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pytrec_eval  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import write_result  # noqa: E402
from bench._training import scifact_snapshot  # noqa: E402
from training.ml.config import CrossEncoderConfig  # noqa: E402
from training.ml.datasets import prepare  # noqa: E402
from training.ml.train import first_stage_candidates  # noqa: E402
from workbench.retrieval.blend import blend_scores  # noqa: E402
from workbench.retrieval.encoders import base_model_path, load_encoder  # noqa: E402

WEIGHTS = [round(0.1 * i, 1) for i in range(11)]
RRF_K = 60


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def ndcg10(runs: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    per = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(runs)
    return float(np.mean([per[q]["ndcg_cut_10"] for q in runs]))


def main() -> None:
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(2)
    teacher_path = os.environ["TEACHER"]
    setup = scifact_snapshot(time.strftime("%Y%m%d-%H%M%S"), log)
    prepared = prepare(setup.data, setup.collection)
    cache = os.environ.get("MINING_CACHE") or tempfile.mkdtemp(prefix="fusion-mining-")
    _, samples = first_stage_candidates(base_model_path(), prepared, CrossEncoderConfig(), cache, None, log)
    base = load_encoder(base_model_path())
    teacher = CrossEncoder(teacher_path, device="cpu", local_files_only=True)
    queries: dict[str, dict[str, np.ndarray]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for i, s in enumerate(samples):
        q = f"q{i}"
        docs = s["documents"]
        qv = base.encode([s["query"]], normalize_embeddings=True, convert_to_numpy=True)[0]
        dv = base.encode(docs, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        with torch.inference_mode():
            rr = teacher.predict([(s["query"], d) for d in docs], batch_size=32, activation_fn=torch.nn.Identity())
        queries[q] = {"first": dv @ qv, "rerank": np.asarray(rr, dtype=np.float64), "docs": np.array(docs)}
        # a positive the first stage missed still counts in the ideal ranking, as in the app's dev evaluator
        qrels[q] = {f"p{j}": 1 for j in range(len(s["positive"]))}
        for j, d in enumerate(docs):
            if d in s["positive"]:
                qrels[q][f"d{j}"] = 1
                qrels[q].pop(f"p{s['positive'].index(d)}", None)
    log(f"scored {len(queries)} dev queries")

    def run_of(score) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
        return {q: {f"d{j}": float(v) for j, v in enumerate(score(d))} for q, d in queries.items()}

    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(-x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(1, len(x) + 1)
        return r

    def blend(w: float):  # type: ignore[no-untyped-def]
        return lambda d: blend_scores(d["first"], d["rerank"], w)

    figures = {
        "first_stage": ndcg10(run_of(lambda d: d["first"]), qrels),
        "reranker": ndcg10(run_of(lambda d: d["rerank"]), qrels),
        "rrf_k60": ndcg10(run_of(lambda d: 1 / (RRF_K + ranks(d["first"])) + 1 / (RRF_K + ranks(d["rerank"]))), qrels),
    }
    blended = {w: run_of(blend(w)) for w in WEIGHTS}
    figures["blend_by_weight"] = {str(w): ndcg10(run, qrels) for w, run in blended.items()}
    # 2-fold cross-validation of the blend weight over dev queries (5 seeded splits, averaged)

    def score_on(w: float, qs: list[str]) -> float:
        return ndcg10({q: blended[w][q] for q in qs}, {q: qrels[q] for q in qs})

    cv = []
    qids = sorted(queries)
    for seed in range(5):
        shuffled = random.Random(seed).sample(qids, len(qids))
        folds = [shuffled[: len(qids) // 2], shuffled[len(qids) // 2 :]]
        held = []
        for pick, test in ((folds[0], folds[1]), (folds[1], folds[0])):
            best = max(WEIGHTS, key=lambda w, pick=pick: score_on(w, pick))
            held.append((best, score_on(best, test), len(test)))
        cv.append(sum(s * n for _, s, n in held) / sum(n for *_, n in held))
        log(f"split {seed}: weights {[b for b, _, _ in held]}, held-out nDCG@10 {cv[-1]:.4f}")
    figures["blend_cross_validated"] = float(np.mean(cv))
    log(f"dev nDCG@10: {figures}")
    write_result(
        "rerank_fusion_probe",
        {
            "benchmark": "rerank_fusion_probe",
            "machine": machine_info(),
            "teacher": teacher_path,
            "dev_queries": len(queries),
            "candidates_per_query": len(samples[0]["documents"]) if samples else 0,
            "ndcg@10": {
                k: (round(v, 4) if isinstance(v, float) else {a: round(b, 4) for a, b in v.items()})
                for k, v in figures.items()
            },
        },
    )


if __name__ == "__main__":
    main()
