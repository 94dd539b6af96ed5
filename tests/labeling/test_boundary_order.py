"""Queue order "most uncertain first": pairs whose model score lies nearest the decision boundary come first, scored
by a cross-encoder of the project or, without one, by the pool's own normalised scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from labeling import selectors
from labeling.models import Campaign, PoolItem
from labeling.services import campaigns
from tests.labeling.conftest import add_judges
from workbench.errors import WorkbenchError
from workbench.models import Membership, QueryTag, Role

pytestmark = pytest.mark.django_db


def test_pooled_scores_are_min_max_per_configuration_and_query_averaged() -> None:
    runs = [
        {"q1": {"a": 10.0, "b": 6.0, "c": 2.0, "z": 1.0}},  # BM25-like scale; z below the top 3
        {"q1": {"a": 0.9, "c": 0.8}},  # cosine-like scale; b missed
    ]
    got = campaigns.pooled_scores(runs, depth=3)
    assert set(got) == {("q1", "a"), ("q1", "b"), ("q1", "c")}
    assert got[("q1", "a")] == pytest.approx(1.0)
    assert got[("q1", "b")] == pytest.approx((0.5 + 0.0) / 2)
    assert got[("q1", "c")] == pytest.approx((0.0 + 0.0) / 2)


def test_boundary_order_key_sorts_by_distance_from_the_boundary(campaign_world) -> None:  # type: ignore[no-untyped-def]
    campaign = campaign_world[3]
    campaign.order, campaign.boundary = Campaign.Order.BOUNDARY, 0.3
    keys = {s: campaigns.order_key(campaign, 1, i, 0.0, s) for i, s in enumerate([0.9, 0.31, 0.0, 0.5, None])}
    ordered = sorted(keys, key=lambda s: keys[s])
    assert ordered == [0.31, 0.5, 0.0, 0.9, None]  # distances 0.01, 0.2, 0.3, 0.6, unknown last


def _boundary_campaign(indexed, name: str, **kwargs):  # type: ignore[no-untyped-def]
    project, lead, corpus, _index, configs = indexed
    Membership.objects.filter(project=project, role=Role.ANNOTATOR).delete()
    judges = add_judges(project, 2)
    tag = QueryTag.objects.get(project=project, name="train")
    qids = list(tag.queries.order_by("external_id").values_list("external_id", flat=True)[:3])
    campaign = campaigns.campaign_create(
        project=project, corpus=corpus, name=name, user=lead, configurations=configs, query_ids=qids,
        depth=4, overlap=1, order=Campaign.Order.BOUNDARY, annotators=judges, **kwargs,
    )  # fmt: skip
    campaigns.campaign_pool_build(campaign=campaign)
    campaign.refresh_from_db()
    return campaign, judges


def _queue_distances(campaign, user) -> list[float]:  # type: ignore[no-untyped-def]
    return [abs(a.item.model_score - campaign.boundary) for a in selectors.my_assignments(campaign, user)]


def _ascending(distances: list[float]) -> bool:
    # The key keeps distances to 1e-6; closer ones are ties, broken at random per annotator.
    return all(a <= b + 1e-6 for a, b in itertools.pairwise(distances))


def test_pool_scores_order_the_queue_nearest_the_boundary_first(indexed) -> None:  # type: ignore[no-untyped-def]
    campaign, judges = _boundary_campaign(indexed, "b1", boundary=0.4)
    items = PoolItem.objects.filter(campaign=campaign)
    assert items.exists() and not items.filter(model_score__isnull=True).exists()
    assert all(0.0 <= s <= 1.0 for s in items.values_list("model_score", flat=True))
    for judge in judges:
        distances = _queue_distances(campaign, judge)
        assert distances and _ascending(distances)
    nearest = min(items, key=lambda i: abs(i.model_score - 0.4))
    first = [selectors.assignment_next(campaign, j) for j in judges]
    assert nearest.pk in {a.item_id for a in first}


def test_cross_encoder_scores_the_pool(indexed, tiny_cross_encoder_path) -> None:  # type: ignore[no-untyped-def]
    from workbench.services import indexes
    from workbench.services.engines import reranker_for

    project, lead = indexed[0], indexed[1]
    model = indexes.model_register(project=project, path=str(tiny_cross_encoder_path), name="ce", user=lead)
    campaign, judges = _boundary_campaign(indexed, "b2", boundary_model=model, boundary=0.5)
    assert campaign.boundary_model_id == model.pk
    item = PoolItem.objects.filter(campaign=campaign).select_related("query", "document").first()
    from workbench.retrieval.texts import passage_text

    text = passage_text(item.document.title, item.document.text)
    logit = float(reranker_for(model).score(item.query.text, [text])[0])
    assert item.model_score == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-3)
    for judge in judges:
        distances = _queue_distances(campaign, judge)
        assert _ascending(distances)


def test_boundary_settings_are_checked(indexed) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, _index, configs = indexed
    with pytest.raises(WorkbenchError, match="0 to 1"):
        campaigns.campaign_create(
            project=project, corpus=corpus, name="x", user=lead, configurations=configs, query_ids=["x"],
            order=Campaign.Order.BOUNDARY, boundary=1.5,
        )  # fmt: skip
