"""Building an index version: embed passages, build FAISS and BM25 side by side, write it all atomically.

Layout of an index directory::

    manifest.json      what was built, from what, with which parameters, how long it took
    faiss.index        dense index (row i = i-th passage)      } see faiss_index.py
    ids.npy, dense.json                                          }
    bm25/              bm25s index + tokenizer vocabulary + ids  (see bm25.py)
    texts.bin, text_offsets.npy   passage texts by row (optional, for reranking without a database)
    sentence_*.npy     citable sentences of each passage, embedded (optional, for fast extractive answers;
                       see sentence_vectors.py)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.retrieval.artifacts import atomic_directory, make_manifest, write_manifest
from workbench.retrieval.bm25 import BM25Params, build_bm25
from workbench.retrieval.encoders import (
    CancelCheck,
    Precision,
    describe_encoder,
    encode_passages,
    load_encoder,
    model_fingerprint,
    resolve_precision,
)
from workbench.retrieval.errors import OperationCancelled, RetrievalError
from workbench.retrieval.faiss_index import IndexParams, auto_index_params, build_dense_index, describe_params
from workbench.retrieval.passage_store import write_texts
from workbench.retrieval.sentence_vectors import SentenceLookup, build_sentence_vectors, write_sentence_vectors
from workbench.retrieval.vector_reuse import EarlierVectors, reuse_refusal

logger = logging.getLogger(__name__)

INDEX_KIND = "index"
BM25_SUBDIR = "bm25"
# Share of the whole build each stage is expected to take, for one overall progress fraction.
# SciFact on 2 threads: 44,499 sentences embedded in 127 s after 5,183 passages in 131 s (more tokens, shorter rows).
_STAGE_WEIGHTS = {"embedding": 0.85, "sentences": 0.85, "dense": 0.10, "bm25": 0.04, "writing": 0.01}


@dataclass(frozen=True)
class BuildProgress:
    """One progress report of ``build_index``: what a job page shows."""

    stage: str  # "embedding" | "sentences" | "dense" | "bm25" | "writing" | "done"
    done: int  # items finished within the stage (passages embedded, vectors added)
    total: int
    fraction: float  # overall progress of the build, 0..1
    rate_per_s: float | None  # passages embedded per second (embedding stage)
    eta_s: float | None  # seconds left in the stage, from the rate so far
    message: str


ProgressReporter = Callable[[BuildProgress], None]


def _check_passages(passages: Sequence[tuple[int, str]]) -> tuple[np.ndarray, list[str]]:
    if not passages:
        raise RetrievalError("no passages to index: the corpus is empty")
    ids = np.fromiter((int(pid) for pid, _ in passages), dtype=np.int64, count=len(passages))
    texts = [str(text) for _, text in passages]
    if len(np.unique(ids)) != len(ids):
        raise RetrievalError("passage ids must be unique")
    return ids, texts


def _resolve_params(
    index_type: str, params: IndexParams | dict[str, Any] | None, n: int, dim: int
) -> tuple[IndexParams, str]:
    overrides = params.to_dict() if isinstance(params, IndexParams) else dict(params or {})
    if index_type == "auto":
        chosen, reason = auto_index_params(n, dim)
        overrides.pop("index_type", None)
        # Overrides for another index type than the one chosen do not apply.
        merged = {**chosen.to_dict(), **{k: v for k, v in overrides.items() if k in chosen.to_dict()}}
        return IndexParams.from_dict(merged), f"automatic → {chosen.index_type} ({reason})"
    overrides["index_type"] = index_type
    return IndexParams.from_dict(overrides), f"{index_type} chosen by the user"


class _Progress:
    """Turns stage-level (done, total) into BuildProgress reports with rate, ETA and an overall fraction."""

    def __init__(self, callback: ProgressReporter | None, stages: list[str]) -> None:
        self.callback = callback
        weights = {s: _STAGE_WEIGHTS[s] for s in stages}
        total = sum(weights.values())
        self.offsets: dict[str, float] = {}
        acc = 0.0
        for stage in stages:
            self.offsets[stage] = acc / total
            acc += weights[stage]
        self.weights = {s: w / total for s, w in weights.items()}
        self.started: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int, message: str = "") -> None:
        now = time.perf_counter()
        start = self.started.setdefault(stage, now)
        if self.callback is None:
            return
        elapsed = now - start
        rate = done / elapsed if done and elapsed > 0 else None
        eta = (total - done) / rate if rate else None
        share = done / total if total else 1.0
        # Rounded: the stage weights are shares of a float sum, and the last report must read exactly 1.0.
        fraction = min(1.0, round(self.offsets.get(stage, 1.0) + self.weights.get(stage, 0.0) * share, 9))
        self.callback(BuildProgress(stage, done, total, fraction, rate, eta, message or f"{stage}: {done}/{total}"))


def _sentence_lender(earlier: EarlierVectors | None, old_rows: np.ndarray) -> SentenceLookup | None:
    """The earlier index's stored sentence vectors of each new passage row whose indexed text it embedded (its
    earlier row in ``old_rows``, -1 for none)."""
    if earlier is None or earlier.sentences is None:
        return None
    return lambda row, body: earlier.sentence_vectors(int(old_rows[row]), body)


def build_index(
    *,
    out_dir: str | os.PathLike[str],
    passages: Sequence[tuple[int, str]],
    encoder_path: str | os.PathLike[str],
    index_type: str = "auto",
    params: IndexParams | dict[str, Any] | None = None,
    bm25_params: BM25Params | None = None,
    batch_size: int = 32,
    precision: Precision = "auto",
    device: str = "cpu",
    store_texts: bool = True,
    embeddings: np.ndarray | None = None,
    progress_callback: ProgressReporter | None = None,
    cancel_check: CancelCheck | None = None,
    log: Callable[[str], None] | None = None,
    extra_manifest: dict[str, Any] | None = None,
    encoder_name: str | None = None,
    encoder_backend: Any = None,
    sentence_texts: Sequence[str] | None = None,
    earlier: EarlierVectors | None = None,
) -> dict[str, Any]:
    """Build a dense (FAISS) + BM25 index of ``passages`` (``(id, text)``) into ``out_dir``; return its manifest.

    ``index_type`` is ``auto`` (chosen by corpus size, see ``auto_index_params``), ``flat``, ``hnsw`` or ``ivfpq``;
    ``params`` overrides individual parameters. ``embeddings`` (rows aligned with ``passages``, from the same
    encoder) skips encoding, e.g. to rebuild with other parameters. ``out_dir`` appears only when complete: on error
    or cancellation (``OperationCancelled``, raised when ``cancel_check()`` returns true) nothing is left behind.
    ``extra_manifest`` fields (e.g. corpus and model version ids) are stored in the manifest. ``encoder_name`` is
    how the log names the encoder (default: its directory's name; the log is shown to users, paths are not).
    ``encoder_backend``: an encoder backend object (``workbench.retrieval.backends``) of the same model that embeds
    instead of the torch path; its name is recorded as the precision. ``sentence_texts`` (aligned with
    ``passages``: each passage as the answer backend cites it, e.g. without the title the index embeds) has its
    citable sentences embedded with the same encoder and stored, so extractive answers need no encoder pass.
    ``earlier`` (``workbench.retrieval.vector_reuse``): an earlier index whose vectors of the very same texts are read
    back instead of embedded, where it was embedded with this encoder's weights at its length (checked here).
    """
    say = log or logger.info
    out = Path(out_dir)
    if out.exists():
        raise RetrievalError(f"index directory {out} already exists")
    started = time.perf_counter()
    created_at = time.time()
    ids, texts = _check_passages(passages)
    if sentence_texts is not None and len(sentence_texts) != len(texts):
        raise RetrievalError(f"{len(sentence_texts)} sentence texts for {len(texts)} passages")
    model = load_encoder(encoder_path, device=device)
    info = describe_encoder(model, encoder_path)
    stages = (
        (["embedding"] if embeddings is None else [])
        + (["sentences"] if sentence_texts is not None else [])
        + ["dense", "bm25", "writing"]
    )
    progress = _Progress(progress_callback, stages)

    def cancelled() -> bool:
        return cancel_check is not None and bool(cancel_check())

    used_precision = resolve_precision(model, precision) if encoder_backend is None else encoder_backend.name

    def encode(batch: Sequence[str], on_batch: Callable[[int, int], None]) -> np.ndarray:
        """Passages and sentences alike: the encoder backend when one is given, else the torch path."""
        if encoder_backend is not None:
            return encoder_backend.encode_passages(
                batch, batch_size=batch_size, progress_callback=on_batch, cancel_check=cancel_check
            )
        return encode_passages(
            model, batch, batch_size=batch_size, precision=precision, progress_callback=on_batch,
            cancel_check=cancel_check,
        )  # fmt: skip

    fingerprint = model_fingerprint(encoder_path)
    if earlier is not None:
        refused = reuse_refusal(
            earlier, fingerprint=fingerprint, max_seq_length=info.max_seq_length, dimension=info.dimension
        )
        if refused:
            say(f"embedding every passage: {refused}")
            earlier = None
    # Each passage's row in the earlier index where it embedded this very text, else -1.
    old_rows = earlier.passage_rows(texts) if earlier is not None else np.full(len(texts), -1, dtype=np.int64)
    reused = 0
    if embeddings is None:
        shown = encoder_name or Path(info.path).name
        kept = old_rows >= 0
        fresh = np.flatnonzero(~kept)
        reused = len(texts) - len(fresh)
        if earlier is not None:
            say(f"reused the vectors of {reused:,} of {len(texts):,} passages from {earlier.label} (same texts)")
        progress("embedding", 0, len(fresh), "" if len(fresh) else "every passage vector reused")
        embed_seconds = 0.0
        if len(fresh):
            say(f"embedding {len(fresh):,} passages with {shown} (batch {batch_size}, {used_precision})")
            t0 = time.perf_counter()
            embedded = encode(
                [texts[i] for i in fresh.tolist()] if reused else texts,
                lambda done, total: progress("embedding", done, total),
            )
            embed_seconds = time.perf_counter() - t0
            rate = len(fresh) / embed_seconds
            say(f"embedded {len(fresh):,} passages in {embed_seconds:.1f} s ({rate:.1f} passages/s)")
        if not reused:
            vectors = embedded  # no copy: the common first build holds one matrix
        else:
            vectors = np.empty((len(texts), info.dimension), dtype=np.float32)
            vectors[kept] = earlier.matrix[old_rows[kept]]  # type: ignore[union-attr]
            if len(fresh):
                vectors[fresh] = embedded
    else:
        vectors = np.asarray(embeddings, dtype=np.float32)
        if vectors.shape != (len(texts), info.dimension):
            raise RetrievalError(
                f"embeddings have shape {vectors.shape}, expected ({len(texts)}, {info.dimension}) for this encoder"
            )
        embed_seconds, fresh = 0.0, np.arange(0)
        used_precision = "precomputed"

    sentences, sentence_seconds = None, 0.0
    if sentence_texts is not None:
        t0 = time.perf_counter()
        progress("sentences", 0, 1)
        sentences = build_sentence_vectors(
            [str(t) for t in sentence_texts],
            lambda batch: encode(batch, lambda done, total: progress("sentences", done, total)),
            _sentence_lender(earlier, old_rows),
        )
        sentence_seconds = time.perf_counter() - t0
        lent = f" ({sentences.reused:,} of them reused from {earlier.label})" if earlier and sentences.reused else ""
        say(f"embedded {sentences.sentence_count:,} citable sentences for answers in {sentence_seconds:.1f} s{lent}")
    sentences_reused = sentences.reused if sentences is not None else 0

    index_params, reason = _resolve_params(index_type, params, len(ids), info.dimension)
    if cancelled():
        raise OperationCancelled("index build cancelled before building the dense index")
    say(f"building the dense index: {describe_params(index_params)}; {reason}")
    t0 = time.perf_counter()
    dense, notes = build_dense_index(
        vectors,
        ids,
        index_params,
        progress_callback=lambda done, total: progress("dense", done, total),
        cancel_check=cancel_check,
    )
    dense_seconds = time.perf_counter() - t0
    for note in notes:
        say(f"note: {note}")

    if cancelled():
        raise OperationCancelled("index build cancelled before building BM25")
    say("building BM25 index")
    progress("bm25", 0, 1)
    t0 = time.perf_counter()
    bm25 = build_bm25(ids, texts, bm25_params)
    bm25_seconds = time.perf_counter() - t0
    progress("bm25", 1, 1)
    if bm25.params.stemmer is None:
        say("note: BM25 without stemming (PyStemmer not installed)")

    if cancelled():
        raise OperationCancelled("index build cancelled before writing")
    progress("writing", 0, 1)
    with atomic_directory(out) as tmp:
        dense.save(tmp)
        bm25.save(tmp / BM25_SUBDIR)
        if store_texts:
            write_texts(tmp, texts)
        if sentences is not None:
            write_sentence_vectors(tmp, sentences)
        build_seconds = time.perf_counter() - started
        size = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        manifest = make_manifest(
            INDEX_KIND,
            base=info.path,
            parameters={
                "dense": dense.params.to_dict(),
                "bm25": bm25.params.to_dict(),
                "requested_index_type": index_type,
                "auto_reason": reason,
                "adjustments": notes,
                "batch_size": batch_size,
                "precision": used_precision,
                "reused_from": earlier.label if earlier is not None and (reused or sentences_reused) else None,
            },
            metrics={
                "build_seconds": round(build_seconds, 3),
                "embed_seconds": round(embed_seconds, 3),
                "dense_seconds": round(dense_seconds, 3),
                "bm25_seconds": round(bm25_seconds, 3),
                "sentence_seconds": round(sentence_seconds, 3),
                # Of the passages embedded, not those whose vectors were reused: the encoder's own rate.
                "embedding_passages_per_s": round(len(fresh) / embed_seconds, 2) if len(fresh) else None,
                "reused_vectors": reused,
                "reused_sentence_vectors": sentences_reused,
                "size_bytes": size,
            },
            encoder={
                "path": info.path,
                "fingerprint": fingerprint,
                "dimension": info.dimension,
                "max_seq_length": info.max_seq_length,
            },
            index_type=dense.params.index_type,
            dimension=info.dimension,
            passage_count=len(ids),
            has_texts=store_texts,
            sentence_count=sentences.sentence_count if sentences is not None else None,
            build_started=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(created_at)),
            **(extra_manifest or {}),
        )
        write_manifest(tmp, manifest)
    progress("writing", 1, 1, "index written")
    say(f"index of {len(ids):,} passages written in {build_seconds:.1f} s")  # the log is shown to users: no path
    return manifest
