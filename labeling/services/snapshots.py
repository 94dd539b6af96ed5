"""Freezing label snapshots: gold qrels, audited negatives and a query split, hashed, immutable.

The split is by query, never by pair: held-out queries (any held-out tag) go to test and never to train or dev; the
others go to dev with probability ``dev_fraction`` by a hash of (seed, query id), so the same queries land in the same
split on any database and across snapshots with the same seed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from django.db import IntegrityError, transaction

from labeling.models import LabelSnapshot, SnapshotJudgment, SnapshotNegative, SnapshotQuery
from workbench.errors import WorkbenchError
from workbench.models import Corpus, Document, Judgment, Project, Query
from workbench.selectors import gold_reduce, judgments_counted

DEFAULT_DEV_FRACTION = 0.15


def split_of(query_id: str, *, held_out: bool, dev_fraction: float, seed: int) -> str:
    """test for held-out queries; else dev or train by a stable hash of (seed, query id)."""
    if held_out:
        return "test"
    digest = hashlib.sha256(f"{seed}:{query_id}".encode()).digest()
    return "dev" if int.from_bytes(digest[:8], "big") / 2**64 < dev_fraction else "train"


def snapshot_hash(
    splits: dict[str, str], qrels: dict[str, dict[str, int]], negatives: dict[str, set[str]], threshold: int
) -> str:
    """sha256 of the snapshot's content in external ids: equal content gives an equal hash on any database."""
    digest = hashlib.sha256(f"relevance_threshold\t{threshold}\n".encode())
    for qid in sorted(splits):
        digest.update(f"Q\t{qid}\t{splits[qid]}\n".encode())
    for qid in sorted(qrels):
        for doc in sorted(qrels[qid]):
            digest.update(f"J\t{qid}\t{doc}\t{qrels[qid][doc]}\n".encode())
    for qid in sorted(negatives):
        for doc in sorted(negatives[qid]):
            digest.update(f"N\t{qid}\t{doc}\n".encode())
    return digest.hexdigest()


def snapshot_freeze(
    *,
    project: Project,
    corpus: Corpus,
    name: str,
    user: Any,
    source: str = LabelSnapshot.Source.GOLD,
    dev_fraction: float = DEFAULT_DEV_FRACTION,
    seed: int = 0,
    negatives: dict[str, set[str]] | None = None,
    audited: bool = True,
) -> LabelSnapshot:
    """Freeze the corpus's gold labels into a snapshot.

    ``source``: ``imported`` uses imported qrels only (training can start before any annotation, e.g. from SciFact's
    train qrels), ``gold`` every judgment by the core's gold rule. ``negatives`` (query id -> document ids) are
    hard negatives given by the caller; a negative given that is also a positive is refused. With ``audited`` the
    mined negatives annotators confirmed in the hard-negative audit are added too (those that gold now holds as
    relevant are left out and counted in ``params``). Campaign gold enters through the core's gold rule: adjudicated
    judgments (an adjudicator's or the campaign's aggregation rule) settle their pairs.
    """
    if source not in (LabelSnapshot.Source.IMPORTED, LabelSnapshot.Source.GOLD):
        raise WorkbenchError(f"Unknown snapshot source {source!r}: use imported or gold.")
    if not 0.0 <= dev_fraction < 1.0:
        raise WorkbenchError(f"The dev share must be at least 0 and below 1 (got {dev_fraction}).")
    name = name.strip()
    if not name:
        raise WorkbenchError("Give the snapshot a name.")
    rows = judgments_counted(project=project, corpus=corpus)
    if source == LabelSnapshot.Source.IMPORTED:
        rows = rows.filter(source=Judgment.Source.IMPORTED)
    qrels = gold_reduce(
        rows.order_by("id").values_list("query__external_id", "document__external_id", "grade", "source").iterator()
    )
    if not qrels:
        raise WorkbenchError(
            f"Corpus {corpus.name} has no judgments to freeze{' (imported)' if source == 'imported' else ''}."
        )
    queries = {
        q.external_id: q
        for q in Query.objects.filter(project=project, external_id__in=list(qrels)).prefetch_related("tags")
    }
    held_out = {qid for qid, q in queries.items() if any(t.held_out for t in q.tags.all())}
    splits = {
        qid: split_of(qid, held_out=qid in held_out, dev_fraction=dev_fraction, seed=seed) for qid in sorted(queries)
    }
    leaked = sorted(qid for qid in held_out if splits[qid] != "test")
    if leaked:  # cannot happen by construction; the check is the promise
        raise WorkbenchError(f"Held-out queries would enter train or dev: {', '.join(leaked[:5])}.")
    threshold = project.relevance_threshold
    train_pos = sum(1 for q, s in splits.items() if s == "train" for g in qrels[q].values() if g >= threshold)
    if not train_pos:
        raise WorkbenchError(
            "The train split would hold no relevant judgment: judge (or import) relevant pairs for queries that "
            "are not held out first."
        )
    negatives = {q: set(docs) for q, docs in (negatives or {}).items() if docs}
    clash = sorted((q, d) for q, docs in negatives.items() for d in docs if qrels.get(q, {}).get(d, 0) >= threshold)
    if clash:
        raise WorkbenchError(f"Audited negatives that are also relevant: {clash[:3]}; resolve them first.")
    audited_kept = audited_dropped = 0
    if audited:
        from labeling.selectors import audited_negatives

        for q, docs in audited_negatives(project=project, corpus=corpus).items():
            if q not in qrels:
                continue  # a query without gold has no split in this snapshot
            for d in docs:
                if qrels[q].get(d, 0) >= threshold:
                    audited_dropped += 1
                elif d not in negatives.get(q, set()):
                    negatives.setdefault(q, set()).add(d)
                    audited_kept += 1
    stats: dict[str, Any] = {}
    for split in ("train", "dev", "test"):
        qids = [q for q, s in splits.items() if s == split]
        grades = Counter(g for q in qids for g in qrels[q].values())
        stats[split] = {
            "queries": len(qids),
            "judgments": sum(grades.values()),
            "relevant": sum(n for g, n in grades.items() if g >= threshold),
            "grades": {str(g): n for g, n in sorted(grades.items())},
            "negatives": sum(len(negatives.get(q, ())) for q in qids),
        }
    doc_ids = {d for grades in qrels.values() for d in grades} | {d for docs in negatives.values() for d in docs}
    docs = dict(Document.objects.filter(corpus=corpus, external_id__in=doc_ids).values_list("external_id", "pk"))
    missing = sorted(doc_ids - docs.keys())
    if missing:
        raise WorkbenchError(f"Documents not in corpus {corpus.name}: {', '.join(missing[:5])}.")
    try:
        with transaction.atomic():
            snapshot = LabelSnapshot.objects.create(
                project=project,
                corpus=corpus,
                corpus_version=corpus.version,
                name=name[:200],
                source=source,
                content_hash=snapshot_hash(splits, qrels, negatives, threshold),
                relevance_threshold=threshold,
                grade_min=project.grade_min,
                grade_max=project.grade_max,
                params={
                    "dev_fraction": dev_fraction,
                    "seed": seed,
                    "split": "by query; held-out tags -> test",
                    "audited_negatives": audited_kept,
                    "audited_negatives_now_relevant": audited_dropped,
                },
                stats=stats,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
            SnapshotQuery.objects.bulk_create(
                SnapshotQuery(snapshot=snapshot, query=queries[q], split=s) for q, s in splits.items()
            )
            SnapshotJudgment.objects.bulk_create(
                SnapshotJudgment(snapshot=snapshot, query=queries[q], document_id=docs[d], grade=g)
                for q, grades in qrels.items()
                for d, g in grades.items()
            )
            SnapshotNegative.objects.bulk_create(
                SnapshotNegative(snapshot=snapshot, query=queries[q], document_id=docs[d])
                for q, ds in negatives.items()
                if q in queries
                for d in sorted(ds)
            )
    except IntegrityError:
        raise WorkbenchError(f"A snapshot named {name!r} already exists; snapshots are immutable.") from None
    return snapshot
