"""Reads of the training app."""

from __future__ import annotations

from django.db.models import QuerySet

from training.models import TrainingRun
from workbench.models import Corpus, Passage, Project
from workbench.retrieval.texts import passage_text


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


def training_runs(project: Project) -> QuerySet[TrainingRun]:
    return (
        TrainingRun.objects.filter(project=project)
        .select_related("snapshot", "base", "teacher", "job", "model_version", "created_by")
        .order_by("-created_at")
    )
