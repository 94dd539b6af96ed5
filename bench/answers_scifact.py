"""Benchmark: answers with citations on SciFact's BEIR test queries (the original dev claims), against gold rationales.

Pipeline = the serving path's engine: ``LoadedIndex.search`` (base all-MiniLM-L6-v2, exact Flat index, one torch
thread as at query time) -> the extractive backend (sentences of the top passages scored by cosine similarity under
the same encoder) -> answer with citations (passage + character span). No reviewer is involved:

- a citation supports its claim when its span covers a gold rationale sentence (SUPPORT or CONTRADICT) of that
  document (``evaluation.answering.gold``: BEIR text = the original abstract sentences joined by spaces);
- ALCE citation recall / precision, faithfulness and hallucination follow from that (``evaluation.metrics.citations``);
- should abstain = no retrieved passage holds a rationale sentence (NEI claims always); abstention precision/recall;
  also the share of NEI claims the system abstained on.

Passages are whole abstracts here (the workbench chunks at 224 tokens; SciFact abstracts mostly fit). Latency per stage
(retrieve, rerank, generate, total) p50/p95 over the 300 queries, with and without reranking. The index stores the
citable sentences of every abstract embedded at build time (``sentence_vectors``, as app-built indexes do), so the
extractive step embeds only the query; the same run with sentences embedded per answer (``live_sentences``, what an
index without them costs) is measured too, with the build-time cost of storing them. "With reranking" uses
the trained reranker at ``RERANKER`` (e.g. a distilled student from ``bench/distill_quality.py``) on the inference
backend ``RERANK_BACKEND`` (default: the CPU's default) over the top ``RERANK_TOP_N`` (20); without ``RERANKER`` a
cross-encoder with an untrained head stands in, for latency only (its quality figures are not reported): MiniLM's
first ``STANDIN_LAYERS`` layers (default all 6) at ``STANDIN_MAX_LENGTH`` tokens (256), e.g. 2 and 128 for the shape
of the distilled student. Only the base retriever is measured.

Run: .venv/bin/python bench/answers_scifact.py   (writes bench/results/answers_scifact.json)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import os  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import (  # noqa: E402
    corpus_embeddings,
    load_corpus,
    load_documents,
    load_queries,
    scifact_dir,
    write_result,
)
from evaluation.answering import ExtractiveGenerator, RetrievedPassage  # noqa: E402
from evaluation.answering.gold import cited_rationales, load_claims, sentence_spans  # noqa: E402
from evaluation.metrics.citations import AnswerJudgement, ClaimSupport, summarize  # noqa: E402
from workbench.retrieval.backends import default_backend, load_reranker_backend  # noqa: E402
from workbench.retrieval.encoders import base_model_path, encode_passages, encode_query  # noqa: E402
from workbench.retrieval.index_build import build_index  # noqa: E402
from workbench.retrieval.rerank import CrossEncoderReranker  # noqa: E402
from workbench.retrieval.search import LoadedIndex  # noqa: E402

K = 5  # passages retrieved per answer (the answer-run default)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6)
RERANK_TOP_N = int(os.environ.get("RERANK_TOP_N", 20))
# A trained reranker (e.g. a distilled student) and the inference backend to serve it with; without one, a
# MiniLM-sized cross-encoder with an untrained head stands in for latency only.
RERANKER = os.environ.get("RERANKER", "")
RERANK_BACKEND = os.environ.get("RERANK_BACKEND", "")
STANDIN_LAYERS = int(os.environ.get("STANDIN_LAYERS", 0))
STANDIN_MAX_LENGTH = int(os.environ.get("STANDIN_MAX_LENGTH", 256))
SLA_MS = 1200.0


def untrained_minilm_cross_encoder(out: Path) -> Path:
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    hf = out.with_name("ce-hf")
    layers = {"num_hidden_layers": STANDIN_LAYERS} if STANDIN_LAYERS else {}
    BertForSequenceClassification.from_pretrained(
        str(base_model_path()), num_labels=1, local_files_only=True, **layers
    ).save_pretrained(hf)
    AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True).save_pretrained(hf)
    CrossEncoder(str(hf), device="cpu", max_length=STANDIN_MAX_LENGTH, local_files_only=True).save(str(out))
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(np.asarray(values), [50, 95])
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1), "mean": round(float(np.mean(values)), 1)}


def run(index: LoadedIndex, docs: dict, queries: dict, claims: dict, spans: dict, *, rerank=None, live=False) -> dict:  # type: ignore[no-untyped-def]
    """``live``: ignore the index's stored sentence vectors and embed every answer's sentences."""
    encoder = index.encoder
    cache: dict[str, np.ndarray] = {}

    def embed_texts(texts):  # type: ignore[no-untyped-def]
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            for t, v in zip(missing, encode_passages(encoder, missing, batch_size=64), strict=True):
                cache[t] = v
        return np.stack([cache[t] for t in texts])

    gen = ExtractiveGenerator(
        embed_query=lambda q: encode_query(encoder, q),
        embed_texts=embed_texts,
        stored_vectors=None if live else (lambda p: index.stored_sentence_vectors(p.passage_id, p.text)),
    )
    timings: dict[str, list[float]] = {"retrieve": [], "rerank": [], "generate": [], "total": []}
    per_threshold: dict[float, list[AnswerJudgement]] = {t: [] for t in THRESHOLDS}
    rationale = {t: [0, 0] for t in THRESHOLDS}
    for qid in sorted(claims, key=int):
        gold = claims[qid]
        result = index.search_spec(queries[qid], SPEC_RERANK if rerank else SPEC, k=K, rerank=rerank)
        t = result.timings_ms
        passages = [
            RetrievedPassage(n, h.passage_id, str(h.passage_id), *docs[str(h.passage_id)], h.score)
            for n, h in enumerate(result.hits, start=1)
        ]
        cache.clear()  # timing must include embedding this query's sentences
        gen.remember_query(queries[qid], result.query_vector)  # as the app does: the search's embedding is reused
        start = time.perf_counter()
        answer = gen.generate(queries[qid], passages, threshold=THRESHOLDS[0])
        gen_ms = (time.perf_counter() - start) * 1000.0
        timings["rerank"].append(t.get("rerank", 0.0))
        timings["retrieve"].append(t["total"] - t.get("rerank", 0.0) - t.get("load", 0.0))
        timings["generate"].append(gen_ms)
        timings["total"].append(timings["retrieve"][-1] + timings["rerank"][-1] + gen_ms)
        evidence = any(cited_rationales(gold, p.doc_id, (0, len(p.text)), spans) for p in passages)
        for threshold in THRESHOLDS:  # same scores, higher thresholds: sentences embedded once (cached)
            a = answer if threshold == THRESHOLDS[0] else gen.generate(queries[qid], passages, threshold=threshold)
            covered: set = set()
            claim_support = []
            for claim in a.claims:
                alone = {}
                for c in claim.citations:
                    p = passages[c.number - 1]
                    hit = cited_rationales(gold, p.doc_id, (c.start, c.end), spans)
                    covered |= {(p.doc_id, i) for i in hit}
                    alone[c.number] = bool(hit)
                claim_support.append(ClaimSupport.from_alone(sorted(alone), alone))
            rationale[threshold][0] += len(covered)
            rationale[threshold][1] += gold.n_sentences
            per_threshold[threshold].append(
                AnswerJudgement(qid, abstained=a.abstained, claims=tuple(claim_support), should_abstain=not evidence)
            )
    figures = {}
    for threshold, judgements in per_threshold.items():
        slices = {
            "nei": [j.qid for j in judgements if claims[j.qid].nei],
            "evidence": [j.qid for j in judgements if not claims[j.qid].nei],
        }
        report = summarize(judgements, slices=slices, resamples=2000, seed=0)
        figures[str(threshold)] = {
            name: {
                "n": s["n"],
                "answered": s["answered"],
                "abstained": s["abstained"],
                **{
                    m: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()}
                    for m, c in s["metrics"].items()
                    if m != "usefulness"
                },
            }
            for name, s in report["slices"].items()
        }
        figures[str(threshold)]["rationale_sentence_recall"] = round(
            rationale[threshold][0] / rationale[threshold][1], 4
        )
        nei = [j for j in judgements if claims[j.qid].nei]
        figures[str(threshold)]["nei_abstained"] = f"{sum(j.abstained for j in nei)} of {len(nei)}"
    return {
        "latency_ms": {k: percentiles(v) for k, v in timings.items()},
        "sentences": {"from_index": gen.sentences_stored, "embedded_per_answer": gen.sentences_embedded},
        "figures": figures,
    }


from workbench.retrieval.search import SearchSpec  # noqa: E402

SPEC = SearchSpec(mode="dense")
SPEC_RERANK = SearchSpec(mode="dense", rerank_top_n=RERANK_TOP_N)


def main() -> None:
    torch.set_num_threads(1)  # serving setting: one query at a time on one core
    started = time.perf_counter()
    load_before = os.getloadavg()
    doc_ids, texts = load_corpus()
    queries = load_queries()
    original = scifact_dir() / "original"
    claims = load_claims(original, files=("claims_dev.jsonl",))  # = BEIR's 300 test queries
    docs = load_documents()
    spans = sentence_spans(original, {d for c in claims.values() for d in c.rationales})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "index"
        torch.set_num_threads(2)  # an index build uses the cores
        manifest = build_index(
            out_dir=out,
            passages=list(zip(doc_ids.tolist(), texts, strict=True)),
            encoder_path=base_model_path(),
            index_type="flat",
            embeddings=corpus_embeddings("float32"),
            store_texts=True,
            sentence_texts=[docs[str(d)][1] for d in doc_ids.tolist()],
            precision="float32",
        )
        torch.set_num_threads(1)
        sentence_bytes = sum(f.stat().st_size for f in out.glob("sentence_*.npy"))
        index = LoadedIndex(out)
        index.search("warm-up query", mode="dense", k=K)
        without = run(index, docs, queries, claims, spans)
        live = run(index, docs, queries, claims, spans, live=True)
        if RERANKER:
            reranker = load_reranker_backend(RERANKER, RERANK_BACKEND or default_backend(), threads=2)
        else:
            reranker = CrossEncoderReranker(str(untrained_minilm_cross_encoder(Path(tmp) / "ce")))
            reranker.max_length = STANDIN_MAX_LENGTH
        torch.set_num_threads(2)  # reranking uses the cores (RERANK_TORCH_THREADS=0: all of them)
        index.search_spec("warm-up query", SPEC_RERANK, k=K, rerank=reranker)
        reranked = run(index, docs, queries, claims, spans, rerank=reranker)
        torch.set_num_threads(1)
    result = {
        "benchmark": "answers_scifact",
        "machine": {
            **machine_info(),
            "note": os.environ.get("BENCH_NOTE", "load average at start and end below: latency is noisy under load"),
            "loadavg_1min_start_end": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        },
        "dataset": "SciFact BEIR test queries = original claims_dev.jsonl (300 claims, NEI = no evidence), 5,183 docs",
        "retriever": "base all-MiniLM-L6-v2, dense, exact Flat; no fine-tuned retriever exists in this checkout",
        "backend": f"extractive: top 3 of {K} passages, at most 2 sentences, cosine under the retriever's encoder",
        "gold": "a citation supports its claim iff its span covers half a rationale sentence (SUPPORT/CONTRADICT)",
        "abstention": "should abstain = no retrieved passage holds a rationale sentence; figures per threshold",
        "sentence_vectors": {
            "sentences": manifest["sentence_count"],
            "build_seconds_2_threads": manifest["metrics"]["sentence_seconds"],
            "bytes": sentence_bytes,
        },
        "without_reranking": without,
        "without_reranking_live_sentences": live,
        "with_reranking": (
            {
                "reranker": RERANKER,
                "backend": getattr(reranker, "name", RERANK_BACKEND),
                "top_n": RERANK_TOP_N,
                **reranked,
            }
            if RERANKER
            else {
                "latency_ms": reranked["latency_ms"],
                "sentences": reranked["sentences"],
                "note": f"MiniLM cross-encoder ({STANDIN_LAYERS or 6} layers, {STANDIN_MAX_LENGTH} tokens), "
                f"UNTRAINED head, rescoring the top {RERANK_TOP_N}: latency only "
                "(no trained cross-encoder given: RERANKER=path); its quality figures are not reported",
            }
        ),
        "sla": {
            "p95_total_ms_limit": SLA_MS,
            "without_reranking_ok": without["latency_ms"]["total"]["p95"] < SLA_MS,
            "with_reranking_ok": reranked["latency_ms"]["total"]["p95"] < SLA_MS,
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_result("answers_scifact", result)


if __name__ == "__main__":
    main()
