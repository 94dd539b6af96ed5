from __future__ import annotations

import pytest

from labeling.models import Campaign
from labeling.services.campaigns import campaign_create, campaign_pool_build
from tests.factories import make_indexed_project, make_user
from workbench.models import Membership, QueryTag, Role, SearchConfiguration


@pytest.fixture
def indexed(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """(project, lead, corpus, index, [bm25, dense] configurations) on a SciFact slice with a tiny encoder."""
    project, lead, corpus, _, index = make_indexed_project(
        scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks
    )
    configs = [
        SearchConfiguration.objects.create(project=project, name="bm25", index=index, mode="bm25"),
        SearchConfiguration.objects.create(project=project, name="dense", index=index, mode="dense"),
    ]
    return project, lead, corpus, index, configs


def add_judges(project, n: int) -> list:  # type: ignore[no-untyped-def]
    users = []
    for _ in range(n):
        user = make_user()
        Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
        users.append(user)
    return users


@pytest.fixture
def campaign_world(indexed):  # type: ignore[no-untyped-def]
    """An open campaign over 3 train queries, depth 3, overlap 2, three annotators (pool built synchronously)."""
    project, lead, corpus, _index, configs = indexed
    Membership.objects.filter(project=project, role=Role.ANNOTATOR).delete()
    judges = add_judges(project, 3)
    tag = QueryTag.objects.get(project=project, name="train")
    qids = list(tag.queries.order_by("external_id").values_list("external_id", flat=True)[:3])
    campaign = campaign_create(
        project=project, corpus=corpus, name="c1", user=lead, configurations=configs, query_ids=qids,
        depth=3, overlap=2, blind=True, guidelines="# Rules\n\nJudge **relevance**.", annotators=judges,
    )  # fmt: skip
    campaign_pool_build(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.OPEN
    return project, lead, corpus, campaign, judges
