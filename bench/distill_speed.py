"""Benchmark: what a distilled student buys in speed: MiniLM-L6 cross-encoder latency cut to N layers at L tokens.

Reranks 50 SciFact abstracts for a train claim (its relevant ones + the next corpus documents) with
``CrossEncoder.predict`` (batch 32, like the serving reranker), after ``training.ml.distill.truncate_layers`` keeps
the first N layers. Speed does not depend on the weights, so the head is fresh; quality is the training run's job.
Reports p50/p95 over REPEATS passes per (layers, tokens) and the speed-up against 6 layers at 256 tokens.

Run: .venv/bin/python bench/distill_speed.py   (env: REPEATS=5, LAYERS=6,3,2, TOKENS=256,128, PAIRS=50)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_corpus, load_qrels, load_queries, write_result  # noqa: E402
from training.ml.distill import truncate_layers  # noqa: E402
from workbench.retrieval.encoders import base_model_path  # noqa: E402

REPEATS = int(os.environ.get("REPEATS", 5))
LAYERS = [int(x) for x in os.environ.get("LAYERS", "6,3,2").split(",")]
TOKENS = [int(x) for x in os.environ.get("TOKENS", "256,128").split(",")]
PAIRS = int(os.environ.get("PAIRS", 50))


def _pairs() -> list[tuple[str, str]]:
    ids, texts = load_corpus()
    by_id = {str(i): t for i, t in zip(ids.tolist(), texts, strict=True)}
    qid, rel = next(iter(sorted(load_qrels("train").items())))
    docs = [by_id[d] for d in rel if d in by_id] + [t for d, t in by_id.items() if d not in rel]
    query = load_queries()[qid]
    return [(query, d) for d in docs[:PAIRS]]


def main() -> None:
    import torch
    from sentence_transformers import CrossEncoder

    pairs = _pairs()
    rows = []
    for layers in LAYERS:
        model = CrossEncoder(str(base_model_path()), num_labels=1, device="cpu", local_files_only=True)
        truncate_layers(model, layers)
        model.eval()
        for tokens in TOKENS:
            model.max_seq_length = tokens
            with torch.inference_mode():
                model.predict(pairs[:4], batch_size=32, show_progress_bar=False)
                times = []
                for _ in range(REPEATS):
                    t0 = time.perf_counter()
                    model.predict(pairs, batch_size=32, show_progress_bar=False)
                    times.append(time.perf_counter() - t0)
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            rows.append({"layers": layers, "tokens": tokens, "p50_ms": round(1000 * statistics.median(times), 1),
                         "p95_ms": round(1000 * p95, 1)})  # fmt: skip
            print(rows[-1], flush=True)
    ref = next((r["p50_ms"] for r in rows if r["layers"] == 6 and r["tokens"] == 256), None)
    for r in rows:
        r["speedup_vs_6x256"] = round(ref / r["p50_ms"], 2) if ref else None
    write_result(
        "distill_speed",
        {"pairs": len(pairs), "repeats": REPEATS, "batch_size": 32, "rows": rows, "machine": machine_info()},
    )


if __name__ == "__main__":
    main()
