"""Reads of the labeling app."""

from __future__ import annotations

from collections import defaultdict

from labeling.models import LabelSnapshot
from training.ml.data import SnapshotData
from workbench.models import Passage
from workbench.retrieval.texts import passage_text


def snapshot_data(snapshot: LabelSnapshot) -> SnapshotData:
    """The snapshot as plain data for training: queries, splits, qrels, negatives and the passage texts of every
    document they name (built as the index builds them)."""
    splits = dict(snapshot.queries.values_list("query__external_id", "split"))
    texts = dict(snapshot.queries.values_list("query__external_id", "query__text"))
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for qid, doc, grade in snapshot.judgments.values_list("query__external_id", "document__external_id", "grade"):
        qrels[qid][doc] = grade
    negatives: dict[str, list[str]] = defaultdict(list)
    for qid, doc in snapshot.negatives.values_list("query__external_id", "document__external_id"):
        negatives[qid].append(doc)
    doc_pks = set(snapshot.judgments.values_list("document_id", flat=True)) | set(
        snapshot.negatives.values_list("document_id", flat=True)
    )
    passages: dict[str, list[tuple[int, str]]] = defaultdict(list)
    rows = (
        Passage.objects.filter(document_id__in=doc_pks)
        .order_by("document_id", "ordinal")
        .values_list("pk", "document__external_id", "document__title", "text")
    )
    for pk, doc, title, text in rows.iterator(chunk_size=2000):
        passages[doc].append((pk, passage_text(title, text)))
    return SnapshotData(
        content_hash=snapshot.content_hash,
        queries=texts,
        splits=splits,
        qrels=dict(qrels),
        passages=dict(passages),
        negatives={q: sorted(d) for q, d in negatives.items()},
        relevance_threshold=snapshot.relevance_threshold,
        synthetic=snapshot.source == LabelSnapshot.Source.SYNTHETIC,
    )
