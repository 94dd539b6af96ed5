"""Reads of the labeling app."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Count, IntegerField, Q, QuerySet, Subquery

from labeling import agreement
from labeling.models import (
    Adjudication,
    Assignment,
    AuditItem,
    AuditVerdict,
    AutoGrade,
    Campaign,
    LabelSnapshot,
    MiningRun,
    PoolItem,
)
from training.ml.data import SnapshotData
from workbench.models import Corpus, Judgment, Passage, Project, Query, QueryTag
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


# --- campaigns ------------------------------------------------------------------------------------------------------


def campaigns_for_project(project: Project) -> QuerySet[Campaign]:
    return (
        Campaign.objects.filter(project=project)
        .select_related("corpus", "created_by")
        .annotate(n_items=Count("items", distinct=True))
    )


def campaign_get(project: Project, pk: int) -> Campaign | None:
    return Campaign.objects.filter(project=project, pk=pk).select_related("corpus").first()


def my_assignments(campaign: Campaign, user: Any) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(campaign=campaign, annotator=user)
        .select_related("campaign", "item__query", "item__document", "judgment", "guideline")
        .order_by("order_key", "id")
    )


def assignment_next(campaign: Campaign, user: Any, *, after: Assignment | None = None) -> Assignment | None:
    """The user's first unjudged pair in their own (randomised) order; with ``after``: the first unjudged one that
    follows it, else the first unjudged one at all. Its ``progress`` attribute holds ``my_progress``, counted in the
    same query (the judging pane shows both after every save): both counts read only the queue's indexes."""
    mine = Assignment.objects.filter(campaign_id=campaign.pk, annotator_id=user.pk).order_by()
    total = Subquery(mine.values("annotator_id").annotate(n=Count("id")).values("n"), output_field=IntegerField())
    left = Subquery(
        mine.filter(judgment__isnull=True).values("annotator_id").annotate(n=Count("id")).values("n"),
        output_field=IntegerField(),
    )
    pending = (
        Assignment.objects.filter(campaign_id=campaign.pk, annotator_id=user.pk, judgment__isnull=True)
        .select_related("item__query", "item__document", "judgment")  # what the pane shows, nothing more
        .order_by("order_key", "id")
        .annotate(n_total=total, n_left=left)
    )
    a = pending.filter(_after(after)).first() if after is not None else None
    if a is None:
        a = pending.first()
    if a is not None:
        a.campaign = campaign  # already loaded by the caller
        n_left = a.n_left or 0  # type: ignore[attr-defined]
        a.progress = {"done": a.n_total - n_left, "total": a.n_total, "left": n_left}  # type: ignore[attr-defined]
    return a


def _after(a: Assignment) -> Q:
    return Q(order_key__gt=a.order_key) | Q(order_key=a.order_key, pk__gt=a.pk)


def _before(a: Assignment) -> Q:
    return Q(order_key__lt=a.order_key) | Q(order_key=a.order_key, pk__lt=a.pk)


def assignment_step(assignment: Assignment, user: Any, *, forward: bool) -> Assignment | None:
    """The user's pair after (``forward``) or before the given one in their order (j/k), judged or not. Resolved when
    the key is pressed rather than for every pane: most panes are left by a grade, not by j/k."""
    mine = my_assignments(assignment.campaign, user)
    if forward:
        return mine.filter(_after(assignment)).first()
    return mine.filter(_before(assignment)).order_by("-order_key", "-id").first()


def my_progress(campaign: Campaign, user: Any) -> dict[str, int]:
    counts = Assignment.objects.filter(campaign=campaign, annotator=user).aggregate(
        total=Count("id"), done=Count("id", filter=Q(judgment__isnull=False))
    )
    return {"done": counts["done"], "total": counts["total"], "left": counts["total"] - counts["done"]}


def others_grades(assignment: Assignment) -> list[Judgment]:
    """Other annotators' judgments of the same pair (shown only when the campaign is not blind)."""
    if assignment.campaign.blind:
        return []
    return list(
        Judgment.objects.filter(assignment__item_id=assignment.item_id)
        .exclude(assignment__pk=assignment.pk)
        .select_related("annotator")
        .order_by("id")
    )


def _median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def campaign_progress(campaign: Campaign) -> dict[str, Any]:
    """Pairs done/total per annotator, per query and per slice; median seconds per judgment; judgments per day."""
    rows = list(
        Assignment.objects.filter(campaign=campaign).values_list(
            "annotator__username", "item__query__external_id", "item__query_id", "judgment_id",
            "judgment__seconds", "judged_at",
        )
    )  # fmt: skip
    per_annotator: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_query: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_query_pk: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    seconds: list[float] = []
    per_day: Counter[str] = Counter()
    for who, qid, qpk, judged, secs, at in rows:
        for bucket in (per_annotator[who], per_query[qid], per_query_pk[qpk]):
            bucket[1] += 1
            bucket[0] += judged is not None
        if judged is not None:
            if secs is not None:
                seconds.append(secs)
            if at is not None:
                per_day[at.date().isoformat()] += 1
    per_slice: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for tag, qpk in QueryTag.queries.through.objects.filter(query_id__in=list(per_query_pk)).values_list(
        "querytag__name", "query_id"
    ):
        per_slice[tag][0] += per_query_pk[qpk][0]
        per_slice[tag][1] += per_query_pk[qpk][1]
    done = sum(1 for r in rows if r[3] is not None)
    return {
        "done": done,
        "total": len(rows),
        "pairs": campaign.items.count(),
        "per_annotator": sorted((k, *v) for k, v in per_annotator.items()),
        "per_query": sorted((k, *v) for k, v in per_query.items()),
        "per_slice": sorted((k, *v) for k, v in per_slice.items()),
        "median_seconds": _median(seconds),
        "per_day": sorted(per_day.items()),
    }


def campaign_ratings(
    campaign: Campaign, *, tag: str = ""
) -> tuple[dict[str, dict[int, int]], dict[int, int], dict[str, dict[int, int]]]:
    """(annotator -> item -> grade, item -> adjudicated gold, auto judge -> item -> grade); no can't-judge."""
    assignments = Assignment.objects.filter(campaign=campaign, judgment__isnull=False, judgment__cant_judge=False)
    gold_rows = Adjudication.objects.filter(item__campaign=campaign)
    auto_rows = AutoGrade.objects.filter(item__campaign=campaign)
    if tag:
        assignments = assignments.filter(item__query__tags__name=tag)
        gold_rows = gold_rows.filter(item__query__tags__name=tag)
        auto_rows = auto_rows.filter(item__query__tags__name=tag)
    humans: dict[str, dict[int, int]] = defaultdict(dict)
    for who, item, grade in assignments.values_list("annotator__username", "item_id", "judgment__grade"):
        humans[who][item] = grade
    gold = dict(gold_rows.values_list("item_id", "grade"))
    auto: dict[str, dict[int, int]] = defaultdict(dict)
    for judge, item, grade in auto_rows.values_list("judge", "item_id", "grade"):
        auto[judge][item] = grade
    return dict(humans), gold, dict(auto)


def campaign_agreement(
    campaign: Campaign, *, tag: str = "", resamples: int = agreement.BOOTSTRAP_RESAMPLES
) -> dict[str, Any]:
    """Cohen's weighted kappa per annotator pair, Fleiss' kappa, ordinal Krippendorff's alpha, each annotator (and
    each automatic judge) against the adjudicated gold, with 95 % bootstrap intervals and item counts."""
    project = campaign.project
    labels = list(range(project.grade_min, project.grade_max + 1))
    humans, gold, auto = campaign_ratings(campaign, tag=tag)
    names = sorted(humans)
    pairs = [
        (a, b, agreement.pair_kappa(humans[a], humans[b], labels=labels, resamples=resamples))
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    vs_gold = [(a, agreement.pair_kappa(humans[a], gold, labels=labels, resamples=resamples)) for a in names]
    auto_rows = []
    for judge in sorted(auto):
        auto_rows.append(
            {
                "judge": judge,
                "gold": agreement.pair_kappa(auto[judge], gold, labels=labels, resamples=resamples),
                "humans": [
                    (a, agreement.pair_kappa(auto[judge], humans[a], labels=labels, resamples=resamples)) for a in names
                ],
            }
        )
    return {
        "labels": labels,
        "pairs": pairs,
        "fleiss": agreement.fleiss_figure(humans, labels=labels, resamples=resamples),
        "alpha": agreement.alpha_figure(humans, labels=labels, level="ordinal", resamples=resamples),
        "vs_gold": vs_gold,
        "auto": auto_rows,
        "gold_items": len(gold),
    }


def campaign_slices(campaign: Campaign) -> list[str]:
    return sorted(set(QueryTag.objects.filter(queries__campaigns=campaign).values_list("name", flat=True).distinct()))


def adjudication_queue(campaign: Campaign) -> list[dict[str, Any]]:
    """Pairs whose grades differ by more than the threshold and that no adjudicator has settled, most spread first."""
    grades: dict[int, list[int]] = defaultdict(list)
    rows = Assignment.objects.filter(campaign=campaign, judgment__isnull=False, judgment__cant_judge=False)
    for item, grade in rows.values_list("item_id", "judgment__grade"):
        grades[item].append(grade)
    settled = set(
        Adjudication.objects.filter(item__campaign=campaign, method=Adjudication.Method.ADJUDICATOR).values_list(
            "item_id", flat=True
        )
    )
    spread = {
        i: max(g) - min(g)
        for i, g in grades.items()
        if len(g) >= 2 and max(g) - min(g) > campaign.disagreement_threshold and i not in settled
    }
    items = PoolItem.objects.filter(pk__in=list(spread)).select_related("query", "document")
    return sorted(
        ({"item": it, "grades": sorted(grades[it.pk]), "spread": spread[it.pk]} for it in items),
        key=lambda r: (-r["spread"], r["item"].pk),
    )


def item_judgments(item: PoolItem) -> list[Judgment]:
    ids = Assignment.objects.filter(item=item, judgment__isnull=False).values_list("judgment_id", flat=True)
    return list(Judgment.objects.filter(pk__in=list(ids)).select_related("annotator").order_by("id"))


# --- snapshots -----------------------------------------------------------------------------------------------------


def snapshots_for_project(project: Project) -> QuerySet[LabelSnapshot]:
    return LabelSnapshot.objects.filter(project=project).select_related("corpus", "created_by")


def snapshot_get(project: Project, pk: int) -> LabelSnapshot | None:
    return LabelSnapshot.objects.filter(project=project, pk=pk).select_related("corpus").first()


def snapshot_qrels_lines(snapshot: LabelSnapshot, *, fmt: str = "trec", split: str = "") -> Iterator[str]:
    """The snapshot's gold qrels as TREC (``qid 0 doc grade``) or BEIR TSV (with its header) lines."""
    rows = snapshot.judgments.all()
    if split:
        rows = rows.filter(query__in=snapshot.queries.filter(split=split).values("query_id"))
    values = rows.order_by("query__external_id", "document__external_id").values_list(
        "query__external_id", "document__external_id", "grade"
    )
    if fmt == "beir":
        yield "query-id\tcorpus-id\tscore\n"
        for q, d, g in values.iterator(chunk_size=5000):
            yield f"{q}\t{d}\t{g}\n"
    else:
        for q, d, g in values.iterator(chunk_size=5000):
            yield f"{q} 0 {d} {g}\n"


def audited_negatives(*, project: Project, corpus: Corpus) -> dict[str, set[str]]:
    """Mined negatives an annotator confirmed as truly not relevant (query id -> document ids)."""
    rows = AuditVerdict.objects.filter(
        item__run__project=project,
        item__document__corpus=corpus,
        verdict=AuditVerdict.Verdict.NOT_RELEVANT,
    ).values_list("item__query__external_id", "item__document__external_id")
    out: dict[str, set[str]] = defaultdict(set)
    for q, d in rows:
        out[q].add(d)
    return dict(out)


# --- mining and audit ------------------------------------------------------------------------------------------------


def mining_runs(project: Project) -> QuerySet[MiningRun]:
    return MiningRun.objects.filter(project=project).select_related("snapshot", "configuration", "job")


def audit_next(project: Project, *, run: MiningRun | None = None, exclude: Iterable[int] = ()) -> AuditItem | None:
    """The next mined negative nobody audited: suspected false negatives first, then by score."""
    items = AuditItem.objects.filter(run__project=project, verdict__isnull=True).exclude(pk__in=list(exclude))
    if run is not None:
        items = items.filter(run=run)
    return items.select_related("query", "document", "run").order_by("-suspicious", "-score", "id").first()


def audit_yield(project: Project) -> list[dict[str, Any]]:
    """Per mining run (setting) and slice: mined, audited, overturned (actually relevant) and its share."""
    out = []
    tags = dict(QueryTag.objects.filter(project=project).values_list("pk", "name"))
    tag_of: dict[int, list[str]] = defaultdict(list)
    for qpk, tpk in Query.tags.through.objects.filter(querytag__project=project).values_list("query_id", "querytag_id"):
        tag_of[qpk].append(tags[tpk])
    for run in mining_runs(project):
        rows = run.items.values_list("query_id", "suspicious", "verdict__verdict")
        buckets: dict[str, Counter] = defaultdict(Counter)
        for qpk, suspicious, verdict in rows:
            keys = ["all", "suspected" if suspicious else "not suspected"] + [f"tag: {t}" for t in tag_of.get(qpk, [])]
            for key in keys:
                c = buckets[key]
                c["mined"] += 1
                if verdict:
                    c["audited"] += 1
                    c[verdict] += 1
        lines = []
        for key in sorted(buckets, key=lambda k: (k != "all", k)):
            c = buckets[key]
            decided = c["not_relevant"] + c["relevant"]
            lines.append(
                {
                    "slice": key,
                    "mined": c["mined"],
                    "audited": c["audited"],
                    "overturned": c["relevant"],
                    "confirmed": c["not_relevant"],
                    "cant_tell": c["cant_tell"],
                    "share": (c["relevant"] / decided) if decided else None,
                }
            )
        out.append({"run": run, "lines": lines})
    return out
