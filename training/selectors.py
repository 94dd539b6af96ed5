"""Reads of the training app."""

from __future__ import annotations

import numpy as np
from django.db.models import QuerySet

from training.ml.datasets import DocumentVectors
from training.models import TrainingRun
from workbench.models import Corpus, IndexVersion, ModelVersion, Passage, Project
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.faiss_index import load_dense_index
from workbench.retrieval.texts import passage_text
from workbench.selectors import indexes_with_weights_of


def training_corpus(corpus: Corpus) -> dict[str, str]:
    """Document external id -> the text of its first passage, built by ``passage_text`` as the index builds it:
    the collection hard negatives are mined from (the snapshot names only judged documents)."""
    out: dict[str, str] = {}
    rows = (
        Passage.objects.filter(document__corpus=corpus)
        .order_by("document_id", "ordinal")
        .values_list("document__external_id", "document__title", "text")
    )
    for doc, title, text in rows.iterator(chunk_size=5000):
        if doc not in out:
            out[doc] = passage_text(title, text)
    return out


def stored_document_vectors(
    corpus: Corpus, encoder: ModelVersion, *, max_seq_length: int
) -> tuple[DocumentVectors, IndexVersion] | None:
    """Each document's first-passage vector from the newest current index of ``corpus`` built with ``encoder``'s
    weights (same model or same fingerprint) at ``max_seq_length`` tokens, where the index stores vectors uncompressed
    (Flat, HNSW, refined IVF-PQ): what mining with that encoder would compute, read instead of computed. None if no
    index qualifies."""
    for index in indexes_with_weights_of(encoder, corpus=corpus).filter(corpus_version=corpus.version):
        if index.encoder.max_seq_length not in (None, max_seq_length):
            continue  # embedded at another length: not the vectors mining would compute
        try:
            dense = load_dense_index(index.path)
        except (RetrievalError, OSError, RuntimeError):
            continue  # missing or unreadable on this worker
        matrix = dense.stored_vectors()
        if matrix is None:
            continue
        first: dict[str, int] = {}
        rows = (
            Passage.objects.filter(document__corpus=corpus)
            .order_by("document_id", "ordinal")
            .values_list("document__external_id", "pk")
        )
        for doc, pk in rows.iterator(chunk_size=5000):
            first.setdefault(doc, pk)
        rows, found = dense.row_positions(np.fromiter(first.values(), dtype=np.int64, count=len(first)))
        doc_ids = [d for d, ok in zip(first, found, strict=True) if ok]
        return DocumentVectors(doc_ids, np.ascontiguousarray(matrix[rows[found]], dtype=np.float32)), index
    return None


def training_runs(project: Project) -> QuerySet[TrainingRun]:
    return (
        TrainingRun.objects.filter(project=project)
        .select_related("snapshot", "base", "teacher", "job", "model_version", "created_by")
        .order_by("-created_at")
    )
