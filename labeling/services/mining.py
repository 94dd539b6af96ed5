"""Hard-negative mining (sentence-transformers' ``mine_hard_negatives``) and its audit by annotators.

Mining runs twice over the same candidates: once without the margin (every candidate in the rank window) and once
with the relative margin (NV-Retriever's TopK-PercPos rule as sentence-transformers implements it). Candidates the
margin rejects score too close to a positive: suspected false negatives, queued first for the audit.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction

from labeling.models import AuditItem, AuditVerdict, LabelSnapshot, MiningRun
from workbench.errors import WorkbenchError
from workbench.jobs import job_create
from workbench.models import Document, Judgment, ModelVersion, Passage, Project, Query, SearchConfiguration
from workbench.retrieval.texts import passage_text

MINING_JOB_KIND = "hard_negative_mining"


def mining_start(
    *,
    project: Project,
    snapshot: LabelSnapshot,
    configuration: SearchConfiguration,
    user: Any,
    range_min: int = 10,
    range_max: int = 100,
    relative_margin: float | None = 0.05,
    num_negatives: int = 5,
    cross_encoder: ModelVersion | None = None,
) -> MiningRun:
    """Validate the settings and queue the mining job."""
    if snapshot.project_id != project.pk or configuration.project_id != project.pk:
        raise WorkbenchError("Snapshot and configuration must belong to this project.")
    if configuration.index.corpus_id != snapshot.corpus_id:
        raise WorkbenchError("The configuration searches another corpus than the snapshot's.")
    if not 0 <= range_min < range_max <= 1000:
        raise WorkbenchError(f"The rank window must satisfy 0 <= from < to <= 1000 (got {range_min}–{range_max}).")
    if relative_margin is not None and not 0.0 <= relative_margin < 1.0:
        raise WorkbenchError(f"The relative margin must be in [0, 1) (got {relative_margin}).")
    if not 1 <= num_negatives <= 50:
        raise WorkbenchError(f"Negatives per query must be 1 to 50 (got {num_negatives}).")
    if cross_encoder is not None and (cross_encoder.project_id != project.pk or cross_encoder.kind != "cross_encoder"):
        raise WorkbenchError("Rescoring needs a cross-encoder of this project.")
    if not snapshot.queries.filter(split="train").exists():
        raise WorkbenchError("The snapshot has no training queries.")
    params = {
        "range_min": range_min,
        "range_max": range_max,
        "relative_margin": relative_margin,
        "num_negatives": num_negatives,
    }
    with transaction.atomic():
        run = MiningRun.objects.create(
            project=project,
            snapshot=snapshot,
            configuration=configuration,
            cross_encoder=cross_encoder,
            params=params,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        run.job = job_create(
            project=project,
            kind=MINING_JOB_KIND,
            title=f"Mine hard negatives for {snapshot.name}",
            params={"mining_run_id": run.pk},
            user=user if getattr(user, "is_authenticated", False) else None,
        )
        run.save(update_fields=["job"])
    return run


FAISS_FROM = 50_000  # corpus texts; below it exact search is as fast


def _mine(
    dataset: Any, model: Any, corpus: list[str], run: MiningRun, cross: Any, margin: float | None, cache: str
) -> Any:
    from sentence_transformers.util import mine_hard_negatives

    p = run.params
    return mine_hard_negatives(
        dataset,
        model,
        anchor_column_name="query",
        positive_column_name="positive",
        corpus=corpus,
        cross_encoder=cross,
        range_min=int(p["range_min"]),
        range_max=int(p["range_max"]),
        relative_margin=margin,
        num_negatives=int(p["num_negatives"]),
        sampling_strategy="top",
        output_format="labeled-list",
        output_scores=True,
        use_faiss=len(corpus) >= FAISS_FROM,
        verbose=False,
        batch_size=32,
        cache_folder=cache,  # the second pass (with the margin) reuses the first one's embeddings
    )


def mining_execute(*, run: MiningRun, progress: Callable[[float, str], None] | None = None) -> dict:
    """Mine candidates for every (train query, positive) of the snapshot and store them as audit items."""
    from datasets import Dataset

    from labeling.selectors import snapshot_data
    from workbench.retrieval.encoders import load_cross_encoder, load_encoder

    progress = progress or (lambda f, m: None)
    data = snapshot_data(run.snapshot)
    model = load_encoder(run.configuration.index.encoder.path)
    cross = load_cross_encoder(run.cross_encoder.path) if run.cross_encoder_id else None
    progress(0.05, "Reading the corpus")
    corpus_texts: list[str] = []
    doc_of_text: dict[str, str] = {}
    rows = (
        Passage.objects.filter(corpus_id=run.snapshot.corpus_id)
        .order_by("document_id", "ordinal")
        .values_list("document__external_id", "document__title", "text")
    )
    for doc, title, text in rows.iterator(chunk_size=2000):
        t = passage_text(title, text)
        if t not in doc_of_text:
            doc_of_text[t] = doc
            corpus_texts.append(t)
    anchors, positives, owners = [], [], []
    for qid in data.query_ids("train"):
        for doc in data.positives(qid):
            text = data.document_text(doc)
            if text:
                anchors.append(data.queries[qid])
                positives.append(text)
                owners.append(qid)
    if not anchors:
        raise WorkbenchError("The snapshot's training queries have no relevant document to mine against.")
    dataset = Dataset.from_dict({"query": anchors, "positive": positives})
    margin = run.params.get("relative_margin")
    with tempfile.TemporaryDirectory(prefix="mining-") as cache:
        progress(0.15, "Mining candidates in the rank window")
        everything = _mine(dataset, model, corpus_texts, run, cross, None, cache)
        progress(0.55, "Applying the relative margin")
        kept = _mine(dataset, model, corpus_texts, run, cross, margin, cache) if margin is not None else everything
    candidates: dict[tuple[str, str], dict[str, Any]] = {}
    kept_pairs: set[tuple[str, str]] = set()

    qids_of_text: dict[str, set[str]] = defaultdict(set)
    for qid, text in zip(owners, anchors, strict=True):
        qids_of_text[text].add(qid)

    def collect(result: Any, *, mark_kept: bool) -> None:
        # labeled-list rows: query, [positive, negatives...], [positive score, negative scores...]; anchors without
        # any negative left are dropped, so rows are matched to queries by their text.
        for row in result:
            texts, scores = row["positive"], row["scores"]
            positive_score = float(scores[0])
            for qid in qids_of_text.get(row["query"], ()):
                for text, score in zip(texts[1:], scores[1:], strict=True):
                    doc = doc_of_text.get(text)
                    if doc is None or data.qrels.get(qid, {}).get(doc, 0) >= data.relevance_threshold:
                        continue
                    key = (qid, doc)
                    if mark_kept:
                        kept_pairs.add(key)
                    best = candidates.get(key)
                    if best is None or score > best["score"]:
                        candidates[key] = {"score": float(score), "positive_score": positive_score}

    collect(everything, mark_kept=margin is None)
    if margin is not None:
        collect(kept, mark_kept=True)
    qpk = dict(
        Query.objects.filter(project=run.project, external_id__in={q for q, _ in candidates}).values_list(
            "external_id", "pk"
        )
    )
    dpk = dict(
        Document.objects.filter(
            corpus_id=run.snapshot.corpus_id, external_id__in={d for _, d in candidates}
        ).values_list("external_id", "pk")
    )
    with transaction.atomic():
        AuditItem.objects.bulk_create(
            [
                AuditItem(
                    run=run,
                    query_id=qpk[q],
                    document_id=dpk[d],
                    score=c["score"],
                    positive_score=c["positive_score"],
                    suspicious=(q, d) not in kept_pairs,
                )
                for (q, d), c in sorted(candidates.items())
            ],
            ignore_conflicts=True,
        )
        suspicious = sum(1 for k in candidates if k not in kept_pairs)
        stats = {
            "anchors": len(anchors),
            "queries": len(set(owners)),
            "candidates": len(candidates),
            "suspected_false_negatives": suspicious,
        }
        MiningRun.objects.filter(pk=run.pk).update(stats=stats)
    return {"message": f"Mined {len(candidates)} candidates ({suspicious} suspected false negatives).", **stats}


def audit_verdict_record(
    *, item: AuditItem, user: Any, verdict: str, grade: int | None = None, seconds: float | None = None
) -> AuditVerdict:
    """Record a verdict on a mined negative (one per item; its auditor may revise it). "Actually relevant" writes an
    annotator judgment with the grade, so the next snapshot's gold holds it as a positive."""
    project = item.run.project
    if verdict not in AuditVerdict.Verdict.values:
        raise WorkbenchError(f"Unknown verdict {verdict!r}.")
    if verdict == AuditVerdict.Verdict.RELEVANT:
        if grade is None or not project.relevance_threshold <= int(grade) <= project.grade_max:
            raise WorkbenchError(
                f"An overturned negative needs a relevant grade ({project.relevance_threshold}–{project.grade_max})."
            )
    else:
        grade = None
    with transaction.atomic():
        AuditItem.objects.select_for_update().filter(pk=item.pk).first()
        existing = AuditVerdict.objects.filter(item=item).first()
        if existing is not None and existing.annotator_id not in (None, user.pk):
            raise WorkbenchError("Someone else audited this candidate a moment ago; here is the next one.")
        judgment = existing.judgment if existing is not None else None
        if verdict == AuditVerdict.Verdict.RELEVANT:
            if judgment is None:
                judgment = Judgment.objects.create(
                    project=project,
                    query_id=item.query_id,
                    document_id=item.document_id,
                    grade=int(grade),
                    source=Judgment.Source.ANNOTATOR,
                    annotator=user,
                    explanation="Overturned mined negative (hard-negative audit).",
                    seconds=seconds,
                )
            else:
                Judgment.objects.filter(pk=judgment.pk).update(grade=int(grade))
        elif judgment is not None:
            Judgment.objects.filter(pk=judgment.pk).delete()
            judgment = None
        verdict_row, _ = AuditVerdict.objects.update_or_create(
            item=item,
            defaults={
                "verdict": verdict,
                "grade": grade,
                "judgment": judgment,
                "annotator": user,
                "seconds": None if seconds is None else max(0.0, min(3600.0, float(seconds))),
            },
        )
    return verdict_row
