"""Freezing label snapshots: split by query without leakage, stable hash, immutability, clear refusals."""

from __future__ import annotations

import pytest

from labeling.models import LabelSnapshot
from labeling.selectors import snapshot_data
from labeling.services.snapshots import snapshot_freeze, split_of
from tests.factories import make_corpus, make_project, make_user
from workbench.errors import WorkbenchError
from workbench.models import QueryTag, Role
from workbench.services.imports import beir_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def scifact_project(scifact_dir):  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    corpus = make_corpus(project, name="scifact")
    beir_import(project=project, corpus=corpus, folder=scifact_dir, user=project.memberships.get().user)
    return project, corpus


def test_split_is_by_query_and_held_out_queries_stay_in_test(scifact_project) -> None:  # type: ignore[no-untyped-def]
    project, corpus = scifact_project
    snapshot = snapshot_freeze(project=project, corpus=corpus, name="s1", user=None, dev_fraction=0.3, seed=1)
    data = snapshot_data(snapshot)
    held = set(QueryTag.objects.get(project=project, name="test").queries.values_list("external_id", flat=True))
    assert held and all(data.splits[q] == "test" for q in held if q in data.splits)
    assert not set(data.query_ids("train")) & held and not set(data.query_ids("dev")) & held
    assert set(data.qrels) == set(data.splits)  # every judged query has exactly one split
    assert snapshot.stats["train"]["relevant"] > 0
    doc = next(iter(data.qrels[data.query_ids("train")[0]]))
    assert data.passages[doc] and data.document_text(doc).startswith(corpus.documents.get(external_id=doc).title)


def test_hash_depends_on_content_only(scifact_project) -> None:  # type: ignore[no-untyped-def]
    project, corpus = scifact_project
    a = snapshot_freeze(project=project, corpus=corpus, name="a", user=None, seed=3)
    b = snapshot_freeze(project=project, corpus=corpus, name="b", user=make_user(), seed=3)
    c = snapshot_freeze(project=project, corpus=corpus, name="c", user=None, seed=4, dev_fraction=0.5)
    assert a.content_hash == b.content_hash != c.content_hash
    with pytest.raises(WorkbenchError, match="already exists"):
        snapshot_freeze(project=project, corpus=corpus, name="a", user=None)
    assert LabelSnapshot.objects.count() == 3


def test_refusals_write_nothing(scifact_project) -> None:  # type: ignore[no-untyped-def]
    project, corpus = scifact_project
    empty = make_corpus(project, name="empty")
    with pytest.raises(WorkbenchError, match="no judgments"):
        snapshot_freeze(project=project, corpus=empty, name="x", user=None)
    QueryTag.objects.filter(project=project).update(held_out=True)  # nothing left to train on
    with pytest.raises(WorkbenchError, match="train split would hold no relevant"):
        snapshot_freeze(project=project, corpus=corpus, name="y", user=None)
    assert not LabelSnapshot.objects.exists()


def test_split_of_is_stable_and_roughly_the_share() -> None:
    ids = [f"q{i}" for i in range(2000)]
    dev = [q for q in ids if split_of(q, held_out=False, dev_fraction=0.2, seed=7) == "dev"]
    assert 0.17 < len(dev) / len(ids) < 0.23
    assert dev == [q for q in ids if split_of(q, held_out=False, dev_fraction=0.2, seed=7) == "dev"]
    assert split_of("q1", held_out=True, dev_fraction=0.9, seed=7) == "test"
