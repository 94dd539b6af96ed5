"""Vectors an earlier index computed, reused by a new build for the texts it already embedded with the same weights.

Embedding is most of an index build, and on a CPU without native bf16 no float32 backend makes it much faster
(``bench/encoder_roofline.py``: plain sentence-transformers already runs at two thirds of the CPU's GEMM peak). A
rebuild mostly embeds what an earlier build of the same encoder already did: other FAISS parameters, answer sentences
added, a corpus grown by an import or re-chunked in part. Those vectors are read back instead of computed.

What makes a vector reusable is checked here, not trusted from the caller: the earlier index must record the same
encoder fingerprint and maximum length as the new build, keep its vectors uncompressed (Flat, HNSW, refined IVF-PQ)
and keep its texts. A passage reuses a vector only when its indexed text is byte for byte the text embedded; a
sentence only when its passage's text has the length it had and the sentence has the same span (its text is then
the same, since the passage text is).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.retrieval.artifacts import read_manifest
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.faiss_index import load_dense_index
from workbench.retrieval.passage_store import PassageStore, has_texts
from workbench.retrieval.sentence_vectors import SentenceVectorStore, has_sentence_vectors

Span = tuple[int, int]


def _digest(text: str) -> bytes:
    # 16-byte digests keep a million-passage lookup small; a collision at that size is ~1e-26 likely.
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


@dataclass(frozen=True)
class EarlierVectors:
    """What an earlier index can lend a build: its passage vectors by text, and its answer sentences' vectors."""

    label: str  # how logs and manifests name the earlier index
    fingerprint: str
    max_seq_length: int | None
    dense: Any  # the loaded DenseIndex: ``matrix`` is a view into it, so it must stay alive
    rows: dict[bytes, int]  # digest of an indexed text -> its row in the earlier index
    sentences: SentenceVectorStore | None

    @property
    def matrix(self) -> np.ndarray:
        return self.dense.stored_vectors()

    @property
    def dimension(self) -> int:
        return int(self.matrix.shape[1])

    def passage_rows(self, texts: Sequence[str]) -> np.ndarray:
        """The earlier row of each text, -1 where the earlier index did not embed that exact text."""
        return np.fromiter((self.rows.get(_digest(t), -1) for t in texts), dtype=np.int64, count=len(texts))

    def sentence_vectors(self, row: int, body: str) -> dict[Span, np.ndarray]:
        """{span: unit vector} of the sentences the earlier index stored for ``row``, if its body had this length."""
        if self.sentences is None or row < 0:
            return {}
        return self.sentences.for_row(row, len(body))


def earlier_vectors(directory: str | os.PathLike[str], *, label: str) -> tuple[EarlierVectors | None, str]:
    """(what the index in ``directory`` can lend, "") or (None, why it lends nothing), never raising: an earlier
    index that is missing or unreadable only means this build embeds everything."""
    d = Path(directory)
    try:
        manifest = read_manifest(d)
        if not has_texts(d):
            return None, f"{label} did not keep its passage texts"
        dense = load_dense_index(d)
        matrix = dense.stored_vectors()
        if matrix is None:
            return None, f"{label} keeps only compressed vectors ({dense.params.index_type})"
        store = PassageStore(d)
        if len(store) != len(matrix):
            return None, f"{label} keeps {len(store):,} texts for {len(matrix):,} vectors"
        texts = store.get(range(len(matrix)))
        sentences = SentenceVectorStore(d, passage_count=len(texts)) if has_sentence_vectors(d) else None
    except (RetrievalError, OSError, ValueError, KeyError, RuntimeError) as exc:
        return None, f"{label} could not be read ({exc})"
    encoder = manifest.get("encoder", {})
    rows: dict[bytes, int] = {}
    for row, text in enumerate(texts):
        rows.setdefault(_digest(text), row)
    found = EarlierVectors(
        label=label,
        fingerprint=str(encoder.get("fingerprint", "")),
        max_seq_length=encoder.get("max_seq_length"),
        dense=dense,
        rows=rows,
        sentences=sentences,
    )
    return found, ""


def reuse_refusal(earlier: EarlierVectors, *, fingerprint: str, max_seq_length: int | None, dimension: int) -> str:
    """Why ``earlier``'s vectors are not what this build's encoder computes ("" when they are)."""
    if not earlier.fingerprint or earlier.fingerprint != fingerprint:
        return f"{earlier.label} was embedded with other weights"
    if earlier.max_seq_length != max_seq_length:
        return f"{earlier.label} was embedded at {earlier.max_seq_length} tokens, this encoder reads {max_seq_length}"
    if earlier.dimension != dimension:
        return f"{earlier.label} has {earlier.dimension}-dimensional vectors, this encoder {dimension}"
    return ""
