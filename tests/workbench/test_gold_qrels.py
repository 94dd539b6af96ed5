"""The one gold-qrels rule, read by evaluation, exports and search badges alike."""

from __future__ import annotations

import pytest

from tests.factories import make_corpus, make_project
from workbench.models import Document, Judgment, Query
from workbench.selectors import gold_reduce, grades_gold, qrels_gold, queries_judged
from workbench.services.exports import LABELS_SPLIT, qrels_by_split

pytestmark = pytest.mark.django_db


def test_reduce_takes_the_highest_grade_unless_adjudicated() -> None:
    rows = [
        ("q1", "d1", 1, "annotator"),
        ("q1", "d1", 3, "annotator"),
        ("q1", "d2", 2, "annotator"),
        ("q1", "d2", 0, "adjudicated"),  # the adjudicator settles the pair, whatever came before or after
        ("q1", "d2", 3, "annotator"),
        ("q2", "d1", 0, "imported"),
    ]
    assert gold_reduce(rows) == {"q1": {"d1": 3, "d2": 0}, "q2": {"d1": 0}}


def test_gold_excludes_cant_judge_and_other_corpora() -> None:
    project = make_project()
    corpus, other = make_corpus(project, name="a"), make_corpus(project, name="b")
    doc = Document.objects.create(corpus=corpus, external_id="d1", text="x", content_hash="h")
    elsewhere = Document.objects.create(corpus=other, external_id="d9", text="x", content_hash="h")
    q1 = Query.objects.create(project=project, external_id="q1", text="one")
    q2 = Query.objects.create(project=project, external_id="q2", text="two")
    Judgment.objects.create(project=project, query=q1, document=doc, grade=2, source="annotator")
    Judgment.objects.create(project=project, query=q1, document=doc, grade=3, source="annotator", cant_judge=True)
    Judgment.objects.create(project=project, query=q2, document=doc, grade=1, source="annotator", cant_judge=True)
    Judgment.objects.create(project=project, query=q2, document=elsewhere, grade=1, source="annotator")
    assert qrels_gold(project=project, corpus=corpus) == {"q1": {"d1": 2}}
    assert list(queries_judged(project=project, corpus=corpus)) == [q1]
    assert grades_gold(query=q1, document_ids=[doc.pk, elsewhere.pk]) == {doc.pk: 2}
    assert qrels_by_split(corpus) == {LABELS_SPLIT: [("q1", "d1", 2)]}
