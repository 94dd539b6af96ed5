"""Adjudication and aggregation: gold grades of campaign pairs, written as adjudicated Judgment rows with provenance.

An adjudicator's grade always wins; where nobody adjudicated, the campaign's aggregation rule decides (and decides
again when a grade behind it changes). The core's gold rule then reads the adjudicated row (``gold_reduce``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from labeling.agreement import aggregate
from labeling.models import Adjudication, Assignment, Campaign, PoolItem
from labeling.services.campaigns import guideline_current
from workbench.errors import WorkbenchError
from workbench.models import Judgment


def _human_judgments(item: PoolItem) -> list[Judgment]:
    ids = Assignment.objects.filter(item=item, judgment__isnull=False).values_list("judgment_id", flat=True)
    return list(Judgment.objects.filter(pk__in=list(ids), cant_judge=False).order_by("id"))


def _write_gold(
    *, item: PoolItem, grade: int, method: str, rule: str, sources: list[Judgment], user: Any, note: str
) -> Adjudication:
    campaign = item.campaign
    existing = Adjudication.objects.select_for_update().filter(item=item).first()
    fields = dict(grade=grade, explanation=note[:5000])
    if existing is not None:
        Judgment.objects.filter(pk=existing.judgment_id).update(annotator=user, **fields)
        judgment = existing.judgment
    else:
        judgment = Judgment.objects.create(
            project=campaign.project,
            query_id=item.query_id,
            document_id=item.document_id,
            source=Judgment.Source.ADJUDICATED,
            annotator=user,
            **fields,
        )
    adjudication, _ = Adjudication.objects.update_or_create(
        item=item,
        defaults=dict(
            judgment=judgment,
            method=method,
            rule=rule,
            grade=grade,
            source_judgments=[j.pk for j in sources],
            guideline=guideline_current(campaign),
            adjudicator=user,
            note=note[:5000],
        ),
    )
    return adjudication


def adjudication_set(*, item: PoolItem, user: Any, grade: int, note: str = "") -> Adjudication:
    """The adjudicator's gold grade for a pair (replaces a rule's or an earlier adjudicator's)."""
    project = item.campaign.project
    if not project.grade_min <= int(grade) <= project.grade_max:
        raise WorkbenchError(f"Grade {grade} is outside the scale {project.grade_min}–{project.grade_max}.")
    with transaction.atomic():
        PoolItem.objects.select_for_update().filter(pk=item.pk).first()
        return _write_gold(
            item=item,
            grade=int(grade),
            method=Adjudication.Method.ADJUDICATOR,
            rule="",
            sources=_human_judgments(item),
            user=user if getattr(user, "is_authenticated", False) else None,
            note=(note or "").strip(),
        )


def campaign_aggregate(*, campaign: Campaign, user: Any, complete_only: bool = True) -> dict:
    """Apply the campaign's aggregation rule to every pair nobody adjudicated (``complete_only``: only pairs all of
    whose annotators have judged). Pairs disagreeing beyond the threshold get the rule's grade too and stay in the
    adjudication queue until an adjudicator decides."""
    written = waiting = disputed = 0
    with transaction.atomic():
        # Lock what the rule reads before reading it: a grade saved or undone (locks its assignment) or an adjudicator's
        # grade (locks its pair) arriving meanwhile waits for this, instead of being overwritten by a rule computed from
        # the grades before it. Assignments first, then pairs: the order every other writer takes them in.
        list(Assignment.objects.select_for_update().filter(campaign=campaign).order_by("pk").values_list("pk"))
        list(PoolItem.objects.select_for_update().filter(campaign=campaign).order_by("pk").values_list("pk"))
        items = (
            PoolItem.objects.filter(campaign=campaign)
            .exclude(adjudication__method=Adjudication.Method.ADJUDICATOR)
            .prefetch_related("assignments")
        )
        for item in items.iterator(chunk_size=500):
            assignments = list(item.assignments.all())
            if complete_only and any(a.judgment_id is None for a in assignments):
                waiting += 1
                continue
            judgments = _human_judgments(item)
            if not judgments:
                continue
            grades = [j.grade for j in judgments]
            if max(grades) - min(grades) > campaign.disagreement_threshold:
                disputed += 1  # the rule decides for now; the pair stays in the adjudication queue
            grade = aggregate(grades, campaign.aggregation)
            current = Adjudication.objects.filter(item=item).first()
            if current and current.grade == grade and current.source_judgments == [j.pk for j in judgments]:
                continue
            _write_gold(
                item=item,
                grade=grade,
                method=Adjudication.Method.RULE,
                rule=campaign.aggregation,
                sources=judgments,
                user=user if getattr(user, "is_authenticated", False) else None,
                note=f"{campaign.get_aggregation_display()} of {grades}",
            )
            written += 1
    return {"written": written, "waiting": waiting, "disputed": disputed}
