"""Benchmark: does training on SciFact's *train* labels beat the base model on its *test* queries?

The app's path end to end: import the real SciFact (``beir_import``, as ``bench/import_scifact.py``) into a throwaway
SQLite database, freeze an ``imported`` label snapshot (test queries are held out by their tag; dev is carved from
train by the snapshot's seeded split), read it with ``snapshot_data`` and the collection with
``training.selectors.training_corpus``, then train with ``training.ml.train`` (the functions the Celery task calls):
a bi-encoder with mined hard negatives and a cross-encoder reranker, each selected on dev. Nothing is tuned on test.

Test evaluation is BEIR-style (document = title + text, 300 test queries, pytrec_eval) through the engine
(``build_index`` + ``LoadedIndex.search``; the reranker through ``CrossEncoderReranker``).

Run: nohup .venv/bin/python bench/scifact_quality.py > /tmp/scifact_quality.log 2>&1 &
Env: BI_BUDGET_S (default 900), CE_BUDGET_S (600), BI_EPOCHS (2), CE_EPOCHS (1), MINING_CACHE (a folder of
``mine_hard_negatives`` embeddings from an earlier run of the same corpus and base, to skip re-embedding it).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_tmp = tempfile.mkdtemp(prefix="bench-quality-")
os.environ.setdefault("VAR_DIR", _tmp)
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pytrec_eval  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_corpus, load_qrels, load_queries, write_result  # noqa: E402
from bench._training import index_for, result_summary, scifact_snapshot, served_vectors  # noqa: E402
from training.ml.config import BiEncoderConfig, CrossEncoderConfig  # noqa: E402
from training.ml.train import TrainingHooks, mixed_precision, train_bi_encoder, train_cross_encoder  # noqa: E402
from workbench.retrieval.encoders import base_model_path, cpu_has_fast_bf16  # noqa: E402
from workbench.retrieval.rerank import CrossEncoderReranker  # noqa: E402
from workbench.retrieval.search import LoadedIndex  # noqa: E402

DEPTH = 100
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "bench" / ".cache" / "quality"))


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def metrics_of(run: dict[str, dict[str, float]], qrels: dict) -> dict[str, float]:
    per = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "recall.100"}).evaluate(run)

    def mean(name: str) -> float:
        return round(float(np.mean([per.get(q, {}).get(name, 0.0) for q in qrels])), 4)

    mrr = []
    for q, rel in qrels.items():
        ranked = sorted(run.get(q, {}).items(), key=lambda x: -x[1])[:10]
        mrr.append(next((1.0 / (i + 1) for i, (d, _) in enumerate(ranked) if rel.get(d, 0) > 0), 0.0))
    return {
        "ndcg@10": mean("ndcg_cut_10"),
        "recall@10": mean("recall_10"),
        "recall@100": mean("recall_100"),
        "mrr@10": round(float(np.mean(mrr)), 4),
    }


def as_run(hits: list) -> dict[str, float]:
    return {str(h.passage_id): float(DEPTH - rank) for rank, h in enumerate(hits)}


def main() -> None:
    started = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = OUT / stamp
    setup = scifact_snapshot(stamp, log)
    data, collection, counts = setup.data, setup.collection, setup.counts
    base = base_model_path()
    cache = Path(os.environ["MINING_CACHE"]) if os.environ.get("MINING_CACHE") else work / "mining-cache"
    hooks = TrainingHooks(on_log=log, on_loss=lambda s, v: log(f"    step {s} loss {v:.4f}"))

    def on_eval(step: int, m: dict[str, float]) -> None:
        log(f"    dev at step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in m.items() if "ndcg@10" in k))

    hooks.on_eval = on_eval
    bi_config = BiEncoderConfig(
        epochs=float(os.environ.get("BI_EPOCHS", 2)), max_train_seconds=float(os.environ.get("BI_BUDGET_S", 900))
    )
    ce_config = CrossEncoderConfig(
        epochs=float(os.environ.get("CE_EPOCHS", 1)), max_train_seconds=float(os.environ.get("CE_BUDGET_S", 600))
    )
    # The base index first, as the app has a served index before anyone trains: mining reads its vectors.
    torch.set_num_threads(2)
    doc_ids, texts = load_corpus()
    passages = list(zip(doc_ids.tolist(), texts, strict=True))
    base_index, base_emb = index_for(base, work / "index-base", passages, texts, log)
    known = served_vectors([str(d) for d in doc_ids.tolist()], texts, base_emb, collection)
    log(f"mining reads {len(known.doc_ids)} of {len(collection)} documents' vectors from the base index")
    t0 = time.perf_counter()
    bi = train_bi_encoder(
        data,
        bi_config,
        base_path=base,
        output_dir=work / "bi-encoder",
        corpus=collection,
        hooks=hooks,
        mining_cache_dir=cache,
        mining_vectors=known,
    )
    bi_wall = time.perf_counter() - t0
    log(f"bi-encoder: {bi.verdict} ({bi_wall:.0f} s)")
    # --- test evaluation (BEIR convention) ---
    qrels = load_qrels("test")
    queries = load_queries()
    rows: dict[str, dict] = {}
    tuned_path = bi.artifact_path if bi.improved is not False and bi.artifact_path else base
    tuned_index = (
        base_index if tuned_path == base else index_for(Path(tuned_path), work / "index-tuned", passages, texts, log)[0]
    )

    def evaluate(index: LoadedIndex, **kw: object) -> tuple[dict, dict]:
        run = {q: as_run(index.search(queries[q], k=DEPTH, **kw).hits) for q in qrels}
        return metrics_of(run, qrels), run

    rows["bm25"], _ = evaluate(base_index, mode="bm25")
    rows["base MiniLM"], _ = evaluate(base_index, mode="dense")
    rows["base MiniLM + BM25 hybrid (RRF, alpha 0.5)"], _ = evaluate(base_index, mode="hybrid", alpha=0.5)
    rows["fine-tuned bi-encoder"], tuned_run = evaluate(tuned_index, mode="dense")
    rows["fine-tuned bi-encoder + BM25 hybrid (RRF, alpha 0.5)"], hybrid_run = evaluate(
        tuned_index, mode="hybrid", alpha=0.5
    )
    log(f"first stages: {json.dumps(rows)}")
    partial = {"benchmark": "scifact_quality", "results": rows, "partial": True}
    write_result("scifact_quality", partial)
    t0 = time.perf_counter()
    ce = train_cross_encoder(
        data,
        ce_config,
        base_path=base,
        first_stage_path=base,
        output_dir=work / "reranker",
        corpus=collection,
        hooks=hooks,
        mining_cache_dir=cache,
        mining_vectors=known,
    )
    ce_wall = time.perf_counter() - t0
    log(f"reranker: {ce.verdict} ({ce_wall:.0f} s)")

    if ce.artifact_path and ce.improved is not False:
        reranker = CrossEncoderReranker(str(ce.artifact_path), batch_size=32, max_length=ce_config.max_seq_length)
        text_of = dict(zip([str(d) for d in doc_ids.tolist()], texts, strict=True))
        depths = sorted(int(d) for d in os.environ.get("RERANK_DEPTHS", "50,100").split(","))
        for label, run in (("fine-tuned bi-encoder", tuned_run), ("fine-tuned hybrid", hybrid_run)):
            reranked: dict[int, dict] = {d: {} for d in depths}
            t0 = time.perf_counter()
            for q in qrels:
                ranked = sorted(run[q], key=lambda d: -run[q][d])[: depths[-1]]
                scores = reranker.score(queries[q], [text_of[d] for d in ranked])
                for depth in depths:
                    top = sorted(zip(ranked[:depth], scores[:depth], strict=True), key=lambda x: -x[1])
                    tail = ranked[depth:]
                    reranked[depth][q] = {d: float(2 * DEPTH - i) for i, (d, _) in enumerate(top)}
                    reranked[depth][q].update({d: float(DEPTH - depth - i) for i, d in enumerate(tail)})
            secs = time.perf_counter() - t0
            for depth in depths:
                rows[f"{label} + fine-tuned reranker top {depth}"] = metrics_of(reranked[depth], qrels)
            rows[f"{label} + fine-tuned reranker top {depths[-1]}"]["rerank_seconds_all_queries"] = round(secs)
            log(f"reranked {label} in {secs:.0f} s")
            if label == "fine-tuned bi-encoder" and time.perf_counter() - started > 3000:
                log("skipping the hybrid rerank (time)")
                break
    else:
        rows["reranker"] = {"note": ce.verdict}

    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    result = {
        "benchmark": "scifact_quality",
        "machine": {**machine_info(), "bf16_native": cpu_has_fast_bf16()},
        "load_average_at_end": load,
        "note": os.environ.get(
            "BENCH_NOTE",
            f"training in {mixed_precision()} (bf16 mixed precision where the device has native bf16); test "
            "embeddings and reranking in bf16 autocast where the CPU has native bf16 (precision auto), float32 "
            "elsewhere",
        ),
        "dataset": "SciFact test (300 queries, 5,183 documents, title + text); training on train qrels only",
        "mining_vectors_from_base_index": len(known.doc_ids),
        "snapshot": {"hash": data.content_hash, "queries_by_split": counts},
        "recipes": {"bi_encoder": bi_config.as_dict(), "cross_encoder": ce_config.as_dict()},
        "training": {
            "bi_encoder": {**result_summary(bi), "wall_seconds_incl_mining": round(bi_wall)},
            "cross_encoder": {**result_summary(ce), "wall_seconds_incl_mining": round(ce_wall)},
            "total_training_wall_seconds": round(bi_wall + ce_wall),
        },
        "published_ndcg@10": {
            "bm25": 0.665,
            "all-MiniLM-L6-v2": 0.645,
            "TSDAE+GPL": 0.673,
            "tevatron bert-base": 0.747,
        },
        "results": rows,
        "artifacts": {"bi_encoder": str(bi.artifact_path or ""), "reranker": str(ce.artifact_path or "")},
        "total_seconds": round(time.perf_counter() - started),
    }
    write_result("scifact_quality", result)


if __name__ == "__main__":
    main()
