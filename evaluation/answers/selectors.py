"""Answer-run reads: runs, the review queue, final labels, human / automatic figures, agreement, calibration."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from evaluation.metrics.citations import (
    SUPPORTED,
    AnswerJudgement,
    ClaimSupport,
    agreement,
    compare_answer_runs,
    judge_calibration,
    per_query_scores,
    summarize,
)
from evaluation.models import Answer, AnswerClaim, AnswerFlag, AnswerReview, AnswerRun, AutoSupport
from workbench.errors import WorkbenchError
from workbench.models import Project

SUPPORT_CHOICES = [
    ("supported", "supported", "s"),
    ("partial", "partially", "p"),
    ("unsupported", "unsupported", "u"),
    ("contradicted", "contradicted", "x"),
]
CITATION_CHOICES = [("correct", "correct", "c"), ("wrong", "wrong passage", "w"), ("irrelevant", "irrelevant", "i")]


def judge_min_kappa() -> float:
    return float(getattr(settings, "ANSWER_JUDGE_MIN_KAPPA", 0.6))


def judge_min_items() -> int:
    return int(getattr(settings, "ANSWER_JUDGE_MIN_ITEMS", 30))


def runs_for_project(project: Project) -> QuerySet[AnswerRun]:
    return (
        AnswerRun.objects.filter(project=project)
        .select_related("configuration", "job", "created_by", "query_tag")
        .annotate(n_reviews=Count("answers__reviews", distinct=True))
    )


def run_get(project: Project, pk: int) -> AnswerRun | None:
    return (
        AnswerRun.objects.filter(project=project, pk=pk)
        .select_related("configuration__index__encoder", "configuration__reranker", "job", "created_by")
        .first()
    )


def review_next(run: AnswerRun, user: Any) -> Answer | None:
    """The first answer (in query order) this user has not reviewed that still wants reviews."""
    return (
        run.answers.exclude(status=Answer.Status.FAILED)
        .annotate(n=Count("reviews", filter=Q(reviews__kind=AnswerReview.Kind.REVIEW)))
        .filter(n__lt=run.review_overlap)
        .exclude(reviews__reviewer=user)
        .select_related("query")
        .order_by("position")
        .first()
    )


def review_progress(run: AnswerRun, user: Any) -> dict[str, int]:
    reviewable = run.answers.exclude(status=Answer.Status.FAILED)
    return {
        "reviewable": reviewable.count(),
        "reviewed": reviewable.filter(reviews__isnull=False).distinct().count(),
        "mine": reviewable.filter(reviews__reviewer=user).distinct().count(),
    }


def segments(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """Text cut into (piece, highlighted) for escaped rendering of cited spans."""
    out: list[tuple[str, bool]] = []
    pos = 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(text))
        if start >= end:
            continue
        if start > pos:
            out.append((text[pos:start], False))
        out.append((text[start:end], True))
        pos = end
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def answer_view(answer: Answer, *, reviewer: Any = None) -> dict[str, Any]:
    """Everything one answer page or the review form shows, with cited spans marked per passage."""
    retrieved = list(answer.retrieved.all())
    claims = list(answer.claims.prefetch_related("citations__retrieved"))
    spans: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for claim in claims:
        for c in claim.citations.all():
            spans[c.retrieved_id].append((c.start, c.end))
    mine = None
    if reviewer is not None:
        mine = (
            AnswerReview.objects.filter(answer=answer, reviewer=reviewer, kind=AnswerReview.Kind.REVIEW)
            .prefetch_related("claim_reviews", "citation_reviews")
            .first()
        )
    claim_labels = {cr.claim_id: cr for cr in mine.claim_reviews.all()} if mine else {}
    citation_verdicts = {cr.citation_id: cr.verdict for cr in mine.citation_reviews.all()} if mine else {}
    return {
        "answer": answer,
        "claims": [
            {
                "claim": claim,
                "citations": [
                    {
                        "citation": c,
                        "verdict": citation_verdicts.get(c.pk, ""),
                        "span_text": c.retrieved.text[c.start : c.end],
                    }
                    for c in claim.citations.all()
                ],
                "label": claim_labels[claim.pk].label if claim.pk in claim_labels else "",
                "supported_by": claim_labels[claim.pk].supported_by_id if claim.pk in claim_labels else None,
            }
            for claim in claims
        ],
        "passages": [{"p": r, "segments": segments(r.text, spans.get(r.pk, []))} for r in retrieved],
        "my_review": mine,
        "reviews": list(answer.reviews.select_related("reviewer").prefetch_related("claim_reviews")),
        "flags": {(f.document_id, f.target) for f in AnswerFlag.objects.filter(answer=answer)},
        "support_choices": SUPPORT_CHOICES,
        "citation_choices": CITATION_CHOICES,
    }


def final_reviews(run: AnswerRun) -> dict[int, AnswerReview]:
    """Answer id -> the review that counts: the adjudication if any, else the earliest review."""
    out: dict[int, AnswerReview] = {}
    reviews = (
        AnswerReview.objects.filter(answer__run=run)
        .select_related("answer__query")
        .prefetch_related("claim_reviews", "citation_reviews__citation")
        .order_by("created_at", "id")
    )
    for r in reviews:
        current = out.get(r.answer_id)
        if current is None or (r.kind == AnswerReview.Kind.ADJUDICATION and current.kind != r.kind):
            out[r.answer_id] = r
    return out


def _claim_support(claim: AnswerClaim, label: str | None, correct: set[int]) -> ClaimSupport:
    cits = [c.retrieved.number for c in claim.citations.all()]
    alone = {c.retrieved.number: c.pk in correct for c in claim.citations.all()}
    return ClaimSupport(tuple(cits), label, alone)


def human_judgements(run: AnswerRun) -> list[AnswerJudgement]:
    """The final review of each reviewed answer as metric input (a correct citation supports its claim alone)."""
    reviews = final_reviews(run)
    claims_by_answer: dict[int, list[AnswerClaim]] = defaultdict(list)
    for claim in AnswerClaim.objects.filter(answer__run=run).prefetch_related("citations__retrieved"):
        claims_by_answer[claim.answer_id].append(claim)
    out = []
    for answer_id, r in sorted(reviews.items()):
        labels = {cr.claim_id: cr.label for cr in r.claim_reviews.all()}
        supported_by = {cr.claim_id: cr.supported_by_id for cr in r.claim_reviews.all()}
        correct = {cr.citation_id for cr in r.citation_reviews.all() if cr.verdict == "correct"}
        claims = []
        for claim in claims_by_answer.get(answer_id, []):
            # "Supported by passage X" says X alone supports the claim, whatever the citation verdicts say.
            extra = {c.pk for c in claim.citations.all() if c.retrieved_id == supported_by.get(claim.pk)}
            claims.append(_claim_support(claim, labels.get(claim.pk), correct | extra))
        out.append(
            AnswerJudgement(
                qid=r.answer.query.external_id, abstained=r.answer.status == Answer.Status.ABSTAINED,
                claims=tuple(claims), should_abstain=r.should_have_abstained, hallucination=r.hallucination,
                usefulness=float(r.usefulness),
            )
        )  # fmt: skip
    return out


def human_summary(run: AnswerRun) -> dict[str, Any] | None:
    judgements = human_judgements(run)
    if not judgements:
        return None
    slices = (run.summary or {}).get("slices", {})
    report = summarize(judgements, slices=slices, seed=run.seed)
    report["per_query"] = per_query_scores(judgements)
    return report


def review_agreement(run: AnswerRun) -> dict[str, Any]:
    """Overlap and agreement among reviewers (adjudications excluded) on claims and answer-level labels."""
    reviews = list(
        AnswerReview.objects.filter(answer__run=run, kind=AnswerReview.Kind.REVIEW).prefetch_related("claim_reviews")
    )
    claim_items: dict[int, dict[int, str]] = defaultdict(dict)
    halluc: dict[int, dict[int, str]] = defaultdict(dict)
    abstain: dict[int, dict[int, str]] = defaultdict(dict)
    for r in reviews:
        for cr in r.claim_reviews.all():
            claim_items[cr.claim_id][r.reviewer_id] = cr.label
        halluc[r.answer_id][r.reviewer_id] = str(r.hallucination)
        abstain[r.answer_id][r.reviewer_id] = str(r.should_have_abstained)
    adjudicated = set(
        AnswerReview.objects.filter(answer__run=run, kind=AnswerReview.Kind.ADJUDICATION).values_list(
            "answer_id", flat=True
        )
    )
    disputed = []
    claim_answer = dict(AnswerClaim.objects.filter(answer__run=run).values_list("pk", "answer_id"))
    for answer_id in sorted(set(halluc)):
        labels_differ = len(set(halluc[answer_id].values())) > 1 or len(set(abstain[answer_id].values())) > 1
        claims_differ = any(
            len(set(v.values())) > 1 for cid, v in claim_items.items() if claim_answer.get(cid) == answer_id
        )
        if (labels_differ or claims_differ) and answer_id not in adjudicated:
            disputed.append(answer_id)
    return {
        "claims": agreement(claim_items),
        "hallucination": agreement(halluc),
        "should_have_abstained": agreement(abstain),
        "disputed": disputed,
        "adjudicated": len(adjudicated),
    }


def human_claim_labels(run: AnswerRun) -> dict[int, str]:
    """Claim id -> the final human support label."""
    out = {}
    for r in final_reviews(run).values():
        for cr in r.claim_reviews.all():
            out[cr.claim_id] = cr.label
    return out


def auto_judges(run: AnswerRun) -> list[dict[str, Any]]:
    """Per automatic judge: its figures (faithfulness on judged claims) beside its calibration against humans."""
    human = human_claim_labels(run)
    by_judge: dict[str, dict[int, str | None]] = defaultdict(dict)
    for judge, claim_id, label in AutoSupport.objects.filter(run=run).values_list("judge", "claim_id", "label"):
        by_judge[judge][claim_id] = label
    out = []
    for judge, labels in sorted(by_judge.items()):
        determined = [v for v in labels.values() if v is not None]
        calibration = judge_calibration(human, labels, min_kappa=judge_min_kappa(), min_items=judge_min_items())
        out.append(
            {
                "judge": judge,
                "claims": len(labels),
                "undetermined": len(labels) - len(determined),
                "supported_share": (sum(v == SUPPORTED for v in determined) / len(determined)) if determined else None,
                "calibration": calibration,
            }
        )
    return out


def flags(project: Project, *, target: str = "", run_id: int | None = None, open_only: bool = False) -> QuerySet:
    qs = AnswerFlag.objects.filter(project=project).select_related("query", "document", "run", "created_by")
    if target:
        qs = qs.filter(target=target)
    if run_id:
        qs = qs.filter(run_id=run_id)
    if open_only:
        qs = qs.filter(picked_up_at__isnull=True)
    return qs


def flags_open(project: Project, *, target: str) -> list[tuple[str, str]]:
    """What labeling picks up: (query external id, document external id) pairs not yet taken."""
    return list(
        flags(project, target=target, open_only=True).values_list("query__external_id", "document__external_id")
    )


def auto_judgements(run: AnswerRun, judge: str) -> list[AnswerJudgement]:
    """One judge's claim labels as metric input (answers with no judged claim are left out; undetermined stay None)."""
    labels = dict(AutoSupport.objects.filter(run=run, judge=judge).values_list("claim_id", "label"))
    by_answer: dict[int, list[ClaimSupport]] = defaultdict(list)
    claims = AnswerClaim.objects.filter(answer__run=run, pk__in=list(labels)).prefetch_related("citations__retrieved")
    for claim in claims:
        cits = tuple(c.retrieved.number for c in claim.citations.all())
        label = labels[claim.pk]
        # A judge labels the cited evidence jointly; alone-support is unknown, so over-citation is not detected.
        by_answer[claim.answer_id].append(ClaimSupport(cits, label, dict.fromkeys(cits, False)))
    answers = Answer.objects.filter(pk__in=list(by_answer)).select_related("query")
    return [
        AnswerJudgement(qid=a.query.external_id, abstained=False, claims=tuple(by_answer[a.pk]))
        for a in answers.order_by("position")
    ]


def auto_figures(run: AnswerRun, judge: str) -> dict[str, Any]:
    """A judge's figures, only when its calibration against reviewers passes the configured gate."""
    calibration = judge_calibration(
        human_claim_labels(run),
        dict(AutoSupport.objects.filter(run=run, judge=judge).values_list("claim_id", "label")),
        min_kappa=judge_min_kappa(),
        min_items=judge_min_items(),
    )
    if not calibration["usable"]:
        raise WorkbenchError(f"The judge {judge} is not calibrated on run #{run.pk}: {calibration['why']}.")
    report = summarize(auto_judgements(run, judge), slices=(run.summary or {}).get("slices", {}), seed=run.seed)
    report["per_query"] = per_query_scores(auto_judgements(run, judge))
    report["calibration"] = calibration
    return report


def comparison(run_a: AnswerRun, run_b: AnswerRun, *, source: str, judge: str = "") -> dict[str, Any]:
    """Paired comparison of two answer runs over their common queries: gold, human reviews, or a calibrated judge."""
    if source == "auto":
        a, b = auto_figures(run_a, judge)["per_query"], auto_figures(run_b, judge)["per_query"]
    elif source == "gold":
        a = (run_a.summary.get("gold") or {}).get("per_query")
        b = (run_b.summary.get("gold") or {}).get("per_query")
        if not a or not b:
            raise WorkbenchError("Both runs need gold evidence (e.g. SciFact) to compare on gold.")
    else:
        ha, hb = human_summary(run_a), human_summary(run_b)
        if ha is None or hb is None:
            raise WorkbenchError("Both runs need reviewed answers to compare on reviews.")
        a, b = ha["per_query"], hb["per_query"]
    slices = {**(run_a.summary.get("slices") or {})}
    cells = compare_answer_runs(a, b, slices=slices, resamples=5000, seed=run_a.seed)
    return {"cells": cells, "common": len(set(a) & set(b))}
