"""Sentence vectors stored beside an index: every citable sentence of every passage, embedded at build time.

The extractive answer backend scores the sentences of the top passages against the query. Embedding them at query
time costs one encoder pass over ~30 sentences (0.7 s median, 2 s p95 on one AVX2 core, the whole answer budget);
read from here it is one query embedding and a dot product. Files (rows follow the index's passage rows)::

    sentence_vectors.npy   float16 (n_sentences, dim), unit length: half the bytes; cosine error ~1e-3
    sentence_spans.npy     int32 (n_sentences, 2): start, end of each sentence in its passage's text
    sentence_rows.npy      int64 (n_passages + 1): passage row r owns sentences rows[r]:rows[r + 1]
    sentence_lengths.npy   int64 (n_passages): length of the text the spans index, so a text that changed since the
                           build is never looked up (its sentences are embedded afresh instead)

All are memory-mapped on load. The texts are the passages as the answer backend sees them (the body, without the
title the index embeds), split by ``citable_spans``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.sentences import citable_spans

VECTORS_FILE = "sentence_vectors.npy"
SPANS_FILE = "sentence_spans.npy"
ROWS_FILE = "sentence_rows.npy"
LENGTHS_FILE = "sentence_lengths.npy"
_FILES = (VECTORS_FILE, SPANS_FILE, ROWS_FILE, LENGTHS_FILE)

EncodeTexts = Callable[[list[str]], np.ndarray]  # texts -> (n, dim) rows (progress and cancel are its own)


@dataclass(frozen=True)
class SentenceVectors:
    vectors: np.ndarray  # float16 (n_sentences, dim), unit rows
    spans: np.ndarray  # int32 (n_sentences, 2)
    rows: np.ndarray  # int64 (n_passages + 1)
    lengths: np.ndarray  # int64 (n_passages)
    reused: int = 0  # sentences whose vector an earlier index lent (see ``build_sentence_vectors``)

    @property
    def sentence_count(self) -> int:
        return int(self.rows[-1])


# (passage row, its text) -> the unit vectors an earlier index stored for that passage's sentences, by span.
SentenceLookup = Callable[[int, str], dict[tuple[int, int], np.ndarray]]


def sentence_spans_of(texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(sentences, spans, rows) of ``texts``: their citable sentences back to back, as ``SentenceVectors`` holds."""
    sentences: list[str] = []
    spans: list[tuple[int, int]] = []
    rows = np.zeros(len(texts) + 1, dtype=np.int64)
    for r, text in enumerate(texts):
        for s in citable_spans(text):
            sentences.append(text[s.start : s.end])
            spans.append((s.start, s.end))
        rows[r + 1] = len(spans)
    return sentences, np.asarray(spans, dtype=np.int32).reshape(-1, 2), rows


def _lent(texts: Sequence[str], spans: np.ndarray, rows: np.ndarray, reuse: SentenceLookup) -> dict[int, np.ndarray]:
    """{sentence number: vector} for the sentences ``reuse`` has a vector for at exactly their span."""
    lent: dict[int, np.ndarray] = {}
    for r, text in enumerate(texts):
        lo, hi = int(rows[r]), int(rows[r + 1])
        stored = reuse(r, text) if hi > lo else {}
        if not stored:
            continue
        for i in range(lo, hi):
            vector = stored.get((int(spans[i, 0]), int(spans[i, 1])))
            if vector is not None:
                lent[i] = vector
    return lent


def build_sentence_vectors(
    texts: Sequence[str], encode: EncodeTexts, reuse: SentenceLookup | None = None
) -> SentenceVectors:
    """Embed the citable sentences of ``texts`` with ``encode`` (the index's own encoder path, so a query embedded
    for search scores them consistently; it reports progress and honours cancellation as the build's does).
    ``reuse`` lends the vectors an earlier index of the same encoder stored: only the other sentences are embedded,
    and lent vectors are kept exactly as stored."""
    sentences, spans, rows = sentence_spans_of(texts)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    if not sentences:
        return SentenceVectors(np.zeros((0, 0), dtype=np.float16), spans, rows, lengths)
    lent = _lent(texts, spans, rows, reuse) if reuse is not None else {}
    fresh = [i for i in range(len(sentences)) if i not in lent]
    if fresh:
        embedded = np.asarray(encode([sentences[i] for i in fresh]))
        norms = np.linalg.norm(embedded, axis=1, keepdims=True)
        embedded = (embedded / np.where(norms > 0, norms, 1.0)).astype(np.float16)
        dimension = embedded.shape[1]
    else:
        dimension = len(next(iter(lent.values())))
    vectors = np.empty((len(sentences), dimension), dtype=np.float16)
    if fresh:
        vectors[fresh] = embedded
    if lent:
        vectors[list(lent)] = np.stack([np.asarray(v, dtype=np.float16) for v in lent.values()])
    return SentenceVectors(vectors, spans, rows, lengths, reused=len(lent))


def write_sentence_vectors(directory: str | os.PathLike[str], store: SentenceVectors) -> None:
    d = Path(directory)
    np.save(d / VECTORS_FILE, store.vectors)
    np.save(d / SPANS_FILE, store.spans)
    np.save(d / ROWS_FILE, store.rows)
    np.save(d / LENGTHS_FILE, store.lengths)


def has_sentence_vectors(directory: str | os.PathLike[str]) -> bool:
    return all((Path(directory) / name).is_file() for name in _FILES)


class SentenceVectorStore:
    """Read access to the stored sentence vectors of an index, by passage row."""

    def __init__(self, directory: str | os.PathLike[str], *, passage_count: int) -> None:
        d = Path(directory)
        if not has_sentence_vectors(d):
            raise RetrievalError(f"{d} has no stored sentence vectors")
        self.rows = np.load(d / ROWS_FILE, mmap_mode="r")
        self.lengths = np.load(d / LENGTHS_FILE, mmap_mode="r")
        self.spans = np.load(d / SPANS_FILE, mmap_mode="r")
        self.vectors = np.load(d / VECTORS_FILE, mmap_mode="r")
        n = int(self.rows[-1]) if len(self.rows) else 0
        if len(self.rows) != passage_count + 1 or len(self.lengths) != passage_count or len(self.spans) != n:
            raise RetrievalError(f"{d}: the sentence vectors do not match the index's {passage_count} passages")
        if n and len(self.vectors) != n:
            raise RetrievalError(f"{d}: {len(self.vectors)} sentence vectors for {n} sentences")

    @property
    def sentence_count(self) -> int:
        return int(self.rows[-1])

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def for_row(self, row: int, text_length: int) -> dict[tuple[int, int], np.ndarray]:
        """{(start, end): unit float32 vector} of passage ``row``'s sentences; empty when its text had another
        length at build time (it changed since, so the spans would point elsewhere)."""
        if not 0 <= row < len(self.lengths) or int(self.lengths[row]) != text_length:
            return {}
        lo, hi = int(self.rows[row]), int(self.rows[row + 1])
        if lo == hi:
            return {}
        vectors = np.asarray(self.vectors[lo:hi], dtype=np.float32)
        return {(int(a), int(b)): vectors[i] for i, (a, b) in enumerate(np.asarray(self.spans[lo:hi]))}
