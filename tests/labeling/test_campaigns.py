"""Campaigns: pooling, assignment with overlap and blindness, per-annotator order, submissions and refusals."""

from __future__ import annotations

from collections import Counter

import pytest

from labeling import selectors
from labeling.models import Adjudication, Assignment, Campaign, PoolItem
from labeling.services import adjudication, campaigns
from labeling.services.snapshots import snapshot_freeze
from tests.factories import make_user
from workbench.errors import WorkbenchError
from workbench.models import Judgment

pytestmark = pytest.mark.django_db


def test_pool_assignment_overlap_and_random_order(campaign_world) -> None:  # type: ignore[no-untyped-def]
    _project, _lead, _corpus, campaign, judges = campaign_world
    items = list(PoolItem.objects.filter(campaign=campaign))
    assert items and campaign.pool_stats["pairs"] == len(items)
    assert all(1 <= r <= 3 for it in items for r in it.ranks.values())
    per_item = Counter(Assignment.objects.filter(item__campaign=campaign).values_list("item_id", flat=True))
    assert set(per_item.values()) == {2}  # overlap 2, exactly
    assert all(len({a.annotator_id for a in it.assignments.all()}) == 2 for it in items)
    loads = Counter(Assignment.objects.filter(item__campaign=campaign).values_list("annotator_id", flat=True))
    assert max(loads.values()) - min(loads.values()) <= 1  # balanced round robin
    # Each annotator's order is their own shuffle, not the systems' rank order nor each other's.
    orders = []
    for judge in judges:
        orders.append([a.item_id for a in selectors.my_assignments(campaign, judge)])
    common = set(orders[0]) & set(orders[1])
    assert [i for i in orders[0] if i in common] != [i for i in orders[1] if i in common] or len(common) < 3


def test_submit_revise_undo_and_blindness(campaign_world) -> None:  # type: ignore[no-untyped-def]
    _project, _lead, _corpus, campaign, judges = campaign_world
    a = selectors.assignment_next(campaign, judges[0])
    text_len = len(a.item.document.text)
    j = campaigns.judgment_submit(assignment_id=a.pk, user=judges[0], grade=2, evidence=[[0, 5]], seconds=3.5)
    assert (j.grade, j.evidence, j.seconds, j.source) == (2, [[0, 5]], 3.5, "annotator")
    again = campaigns.judgment_submit(assignment_id=a.pk, user=judges[0], grade=3, explanation="better look")
    assert again.pk == j.pk and Judgment.objects.filter(source="annotator").count() == 1  # double submit: one row
    a.refresh_from_db()
    assert a.guideline.number == 1 and a.judgment.grade == 3
    other = Assignment.objects.filter(item=a.item).exclude(pk=a.pk).get()
    assert selectors.others_grades(other) == []  # blind
    Campaign.objects.filter(pk=campaign.pk).update(blind=False)
    other = Assignment.objects.select_related("item__campaign").get(pk=other.pk)
    assert [x.grade for x in selectors.others_grades(other)] == [3]
    campaigns.judgment_undo(assignment_id=a.pk, user=judges[0])
    assert not Judgment.objects.filter(source="annotator").exists()
    assert selectors.assignment_next(campaign, judges[0]).pk == a.pk
    # Refusals write nothing.
    with pytest.raises(WorkbenchError, match="outside the scale"):
        campaigns.judgment_submit(assignment_id=a.pk, user=judges[0], grade=7)
    with pytest.raises(WorkbenchError, match="outside the passage"):
        campaigns.judgment_submit(assignment_id=a.pk, user=judges[0], grade=1, evidence=[[0, text_len + 1]])
    with pytest.raises(WorkbenchError, match="no longer assigned to you"):
        campaigns.judgment_submit(assignment_id=a.pk, user=make_user(), grade=1)
    with pytest.raises(WorkbenchError, match="why"):
        campaigns.judgment_submit(assignment_id=a.pk, user=judges[0], grade=None, cant_judge=True)
    assert not Judgment.objects.filter(source="annotator").exists()
    cj = campaigns.judgment_submit(
        assignment_id=a.pk, user=judges[0], grade=None, cant_judge=True, explanation="German"
    )
    assert cj.cant_judge and cj.explanation == "German"


def test_reassigned_stale_page_saves_nothing(campaign_world) -> None:  # type: ignore[no-untyped-def]
    _project, _lead, _corpus, campaign, judges = campaign_world
    a = selectors.assignment_next(campaign, judges[0])
    taker = next(u for u in judges if not Assignment.objects.filter(item=a.item, annotator=u).exists())
    campaigns.assignment_reassign(assignment=a, to=taker)
    with pytest.raises(WorkbenchError, match="no longer assigned"):
        campaigns.judgment_submit(assignment_id=a.pk, user=judges[0], grade=1)
    assert campaigns.judgment_submit(assignment_id=a.pk, user=taker, grade=1).annotator_id == taker.pk


def test_guidelines_versioned_and_judged_pairs_not_asked_again(campaign_world, indexed) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, campaign, judges = campaign_world
    assert campaigns.guideline_publish(campaign=campaign, text="# Rules\n\nJudge **relevance**.", user=lead).number == 1
    mine = list(selectors.my_assignments(campaign, judges[0]))
    for a in mine:
        campaigns.judgment_submit(assignment_id=a.pk, user=judges[0], grade=1)
    judged_pairs = {(a.item.query_id, a.item.document_id) for a in mine}
    same = campaigns.campaign_create(
        project=project, corpus=corpus, name="again", user=lead, configurations=list(campaign.configurations.all()),
        query_ids=list(campaign.queries.values_list("external_id", flat=True)), depth=3, overlap=1,
        guidelines="# Rules\n\nJudge **relevance**.", annotators=judges,
    )  # fmt: skip
    stats = campaigns.campaign_pool_build(campaign=same)
    assert stats["skipped_judged_under_same_guidelines"] == len(judged_pairs)
    assert not {(i.query_id, i.document_id) for i in same.items.all()} & judged_pairs
    v2 = campaigns.guideline_publish(campaign=campaign, text="# Rules v2", user=lead)
    assert v2.number == 2


def test_campaign_refusals(indexed) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, _index, configs = indexed
    with pytest.raises(WorkbenchError, match="1 to 5"):
        campaigns.campaign_create(project=project, corpus=corpus, name="x", user=lead, configurations=configs,
                                  query_ids=["1"], overlap=6)  # fmt: skip
    with pytest.raises(WorkbenchError, match="needs at least 4 judges"):
        q = project.queries.first().external_id
        campaigns.campaign_create(project=project, corpus=corpus, name="x", user=lead, configurations=configs,
                                  query_ids=[q], overlap=4)  # fmt: skip
    assert not Campaign.objects.exists()


def test_adjudication_queue_rules_and_gold_in_snapshot(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, campaign, judges = campaign_world
    grades = {judges[0].pk: 3, judges[1].pk: 0, judges[2].pk: 2}
    for a in Assignment.objects.filter(item__campaign=campaign):
        campaigns.judgment_submit(assignment_id=a.pk, user=a.annotator, grade=grades[a.annotator_id])
    queue = selectors.adjudication_queue(campaign)
    assert queue and all(r["spread"] > 1 for r in queue)  # 3 vs 0 and 0 vs 2 disagree beyond threshold 1
    result = adjudication.campaign_aggregate(campaign=campaign, user=lead)
    n_items = campaign.items.count()
    assert result["written"] == n_items and Adjudication.objects.filter(method="rule").count() == n_items
    item = queue[0]["item"]
    adjudication.adjudication_set(item=item, user=lead, grade=1, note="read it twice")
    adj = Adjudication.objects.get(item=item)
    assert (adj.method, adj.grade, adj.adjudicator, adj.guideline.number) == ("adjudicator", 1, lead, 1)
    assert sorted(adj.source_judgments) == sorted(
        Assignment.objects.filter(item=item).values_list("judgment_id", flat=True)
    )
    assert item.pk not in {r["item"].pk for r in selectors.adjudication_queue(campaign)}
    # Re-aggregating never overrides the adjudicator; gold (and so a snapshot) reads the adjudicated rows.
    adjudication.campaign_aggregate(campaign=campaign, user=lead)
    assert Adjudication.objects.get(item=item).grade == 1
    snapshot = snapshot_freeze(project=project, corpus=corpus, name="with campaign", user=lead, seed=1)
    gold = dict(snapshot.judgments.filter(query=item.query, document=item.document).values_list("document_id", "grade"))
    assert gold == {item.document_id: 1}
    # Agreement of the campaign: three raters; pair kappas carry the items behind them.
    figures = selectors.campaign_agreement(campaign, resamples=20)
    assert len(figures["pairs"]) == 3 and all(f.items >= 0 for _, _, f in figures["pairs"])
    assert figures["alpha"].items == n_items and figures["gold_items"] == n_items
    progress = selectors.campaign_progress(campaign)
    assert progress["done"] == progress["total"] == 2 * n_items


def test_logged_queries_join_the_campaign(indexed) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, _, configs = indexed
    texts = ["vitamin d and bone density", "statins muscle pain", "vitamin d and bone density"]
    c = campaigns.campaign_create(
        project=project, corpus=corpus, name="logs", user=lead, configurations=configs, log_queries=texts, depth=2
    )
    assert sorted(c.queries.values_list("text", flat=True)) == sorted(set(texts))
    assert set(c.queries.values_list("tags__name", flat=True)) == {"log"}
    again = campaigns.campaign_create(
        project=project, corpus=corpus, name="logs 2", user=lead, configurations=configs, log_queries=texts[:1]
    )
    assert again.queries.get().pk in set(c.queries.values_list("pk", flat=True))  # the same text is reused
    stats = campaigns.campaign_pool_build(campaign=c)
    assert stats["pairs"] > 0
