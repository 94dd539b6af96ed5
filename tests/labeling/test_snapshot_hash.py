"""The snapshot hash depends on content only: the same labels give the same pinned hash on SQLite and PostgreSQL
(the integration suite runs ``freeze_fixed_world`` on PostgreSQL against the same constant)."""

from __future__ import annotations

import pytest

from labeling.services.snapshots import snapshot_freeze
from tests.factories import make_corpus, make_project
from workbench.models import Document, Judgment, Query, QueryTag

pytestmark = pytest.mark.django_db

PINNED = "13b31580"  # first 8 hex digits; equal on every database


def freeze_fixed_world() -> str:
    project = make_project()
    corpus = make_corpus(project)
    held = QueryTag.objects.create(project=project, name="heldout", held_out=True)
    docs = {
        i: Document.objects.create(corpus=corpus, external_id=f"doc-{i}", text="t", content_hash="-") for i in range(6)
    }
    # Created in an order unlike the ids' sort order, so row ids differ from the hashed order.
    for qid in ("q9", "q2", "q5", "q1"):
        q = Query.objects.create(project=project, external_id=qid, text=qid)
        if qid == "q5":
            q.tags.add(held)
        for i, grade in ((int(qid[1:]) % 6, 2), ((int(qid[1:]) + 1) % 6, 0)):
            Judgment.objects.create(project=project, query=q, document=docs[i], grade=grade, source="imported")
    q1 = Query.objects.get(project=project, external_id="q1")
    Judgment.objects.create(project=project, query=q1, document=docs[2], grade=1, source="annotator")
    Judgment.objects.create(project=project, query=q1, document=docs[2], grade=3, source="adjudicated")
    snapshot = snapshot_freeze(project=project, corpus=corpus, name="fixed", user=None, dev_fraction=0.3, seed=7,
                               negatives={"q2": {"doc-5"}})  # fmt: skip
    return snapshot.content_hash


def test_hash_is_pinned() -> None:
    first = freeze_fixed_world()
    assert first[:8] == PINNED
    assert freeze_fixed_world() == first  # a second copy (other row ids) hashes alike
