"""Reassigning an annotator's remaining pairs (ML lead), revising one's own judgments and one's own progress."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from labeling import selectors
from labeling.models import Assignment
from labeling.services import campaigns
from tests.factories import make_user
from workbench.errors import WorkbenchError

pytestmark = pytest.mark.django_db


def test_reassign_remaining_moves_only_unjudged_pairs_the_taker_lacks(campaign_world) -> None:  # type: ignore[no-untyped-def]
    _project, _lead, _corpus, campaign, judges = campaign_world
    leaver, taker = judges[0], judges[1]
    first = selectors.assignment_next(campaign, leaver)
    campaigns.judgment_submit(assignment_id=first.pk, user=leaver, grade=2)
    pending = list(Assignment.objects.filter(campaign=campaign, annotator=leaver, judgment__isnull=True))
    shared = {a.pk for a in pending if Assignment.objects.filter(item_id=a.item_id, annotator=taker).exists()}
    before = selectors.my_progress(campaign, taker)["total"]
    result = campaigns.assignments_reassign_remaining(campaign=campaign, from_user=leaver, to_user=taker)
    assert result == {"moved": len(pending) - len(shared), "kept_overlap": len(shared), "pending": len(pending)}
    assert Assignment.objects.get(pk=first.pk).annotator_id == leaver.pk  # judged: stays theirs
    for a in pending:
        assert Assignment.objects.get(pk=a.pk).annotator_id == (leaver.pk if a.pk in shared else taker.pk)
    assert selectors.my_progress(campaign, taker)["total"] == before + result["moved"]
    assert selectors.my_progress(campaign, leaver) == {"done": 1, "total": 1 + len(shared), "left": len(shared)}
    moved = next(a for a in pending if a.pk not in shared)
    with pytest.raises(WorkbenchError, match="no longer assigned to you"):  # the leaver's stale page
        campaigns.judgment_submit(assignment_id=moved.pk, user=leaver, grade=1)
    assert campaigns.judgment_submit(assignment_id=moved.pk, user=taker, grade=1).annotator_id == taker.pk
    with pytest.raises(WorkbenchError, match="another annotator"):
        campaigns.assignments_reassign_remaining(campaign=campaign, from_user=taker, to_user=taker)
    with pytest.raises(WorkbenchError, match="may not judge"):
        campaigns.assignments_reassign_remaining(campaign=campaign, from_user=taker, to_user=make_user())


def test_lead_reassigns_from_the_campaign_page(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, lead, _corpus, campaign, judges = campaign_world
    c = Client()
    c.force_login(lead)
    page = c.get(reverse("labeling:campaign", kwargs={"slug": project.slug, "pk": campaign.pk})).content.decode()
    assert 'data-testid="reassign"' in page
    url = reverse("labeling:campaign_reassign", kwargs={"slug": project.slug, "pk": campaign.pk})
    r = c.post(url, {"from_user": judges[2].pk, "to_user": judges[0].pk}, follow=True)
    assert "now go to" in r.content.decode()
    assert (
        not Assignment.objects.filter(campaign=campaign, annotator=judges[2], judgment__isnull=True)
        .exclude(item__assignments__annotator=judges[0])
        .exists()
    )
    annotator = Client()
    annotator.force_login(judges[1])
    assert annotator.post(url, {"from_user": judges[0].pk, "to_user": judges[1].pk}).status_code == 403


def test_annotator_revises_own_judgment_and_sees_own_progress(campaign_world) -> None:  # type: ignore[no-untyped-def]
    project, _lead, _corpus, campaign, judges = campaign_world
    c = Client()
    c.force_login(judges[0])
    first = selectors.assignment_next(campaign, judges[0])
    submit = reverse(
        "labeling:judge_submit", kwargs={"slug": project.slug, "pk": campaign.pk, "assignment_pk": first.pk}
    )
    c.post(submit, {"grade": "1"}, HTTP_HX_REQUEST="true")
    total = selectors.my_progress(campaign, judges[0])["total"]
    mine = c.get(reverse("labeling:my_judgments", kwargs={"slug": project.slug, "pk": campaign.pk})).content.decode()
    assert f"1 of {total} judged" in mine and f"?a={first.pk}" in mine
    judge = reverse("labeling:judge", kwargs={"slug": project.slug, "pk": campaign.pk})
    pane = c.get(judge + f"?a={first.pk}").content.decode()
    assert "you may revise it" in pane and f"1 / {total} judged" in pane
    judgment_id = Assignment.objects.get(pk=first.pk).judgment_id
    r = c.post(submit, {"grade": "3", "explanation": "second look"}, HTTP_HX_REQUEST="true")
    assert f"1 / {total} judged" in r.content.decode()  # a revision is not a new judgment
    a = Assignment.objects.select_related("judgment").get(pk=first.pk)
    assert a.judgment_id == judgment_id and (a.judgment.grade, a.judgment.explanation) == (3, "second look")
