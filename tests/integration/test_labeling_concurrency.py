"""Concurrent judging on PostgreSQL: many threads, double submits and two tabs per pair; no lost and no duplicated
judgment, enforced by the database (row locks, one judgment per assignment, one assignment per pair and annotator)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import IntegrityError, connection

from labeling.models import (
    Assignment,
    AuditItem,
    AuditVerdict,
    Campaign,
    GuidelineVersion,
    LabelSnapshot,
    MiningRun,
    PoolItem,
)
from labeling.services.campaigns import judgment_submit
from labeling.services.mining import audit_verdict_record
from tests.factories import make_corpus, make_project, make_user
from workbench.errors import WorkbenchError
from workbench.models import Document, IndexVersion, Judgment, Membership, ModelVersion, Role, SearchConfiguration

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ANNOTATORS = 6
PAIRS = 30
OVERLAP = 2


def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        if os.environ.get("CI"):
            pytest.fail("integration tests need PostgreSQL (DATABASE_URL)")
        pytest.skip("DATABASE_URL does not point at PostgreSQL")


def _world():  # type: ignore[no-untyped-def]
    project = make_project()
    corpus = make_corpus(project)
    users = [make_user() for _ in range(ANNOTATORS)]
    for u in users:
        Membership.objects.create(project=project, user=u, role=Role.ANNOTATOR)
    campaign = Campaign.objects.create(project=project, corpus=corpus, name="load", overlap=OVERLAP, status="open")
    GuidelineVersion.objects.create(campaign=campaign, number=1, text="", content_hash="-")
    for i in range(PAIRS):
        doc = Document.objects.create(corpus=corpus, external_id=f"d{i}", text="x" * 200, content_hash="h")
        query = project.queries.create(external_id=f"q{i}", text=f"query {i}")
        item = PoolItem.objects.create(campaign=campaign, query=query, document=doc)
        for j in range(OVERLAP):
            Assignment.objects.create(
                item=item, campaign=campaign, annotator=users[(i * OVERLAP + j) % ANNOTATORS], order_key=f"{i}"
            )
    return project, corpus, campaign, users


def _in_thread(fn):  # type: ignore[no-untyped-def]
    def run(*args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        finally:
            connection.close()  # each thread has its own connection; give it back

    return run


def test_concurrent_double_submits_store_one_judgment_each() -> None:
    _postgres_only()
    project, _corpus, campaign, users = _world()
    by_user = {u.pk: u for u in users}
    assignments = list(Assignment.objects.filter(item__campaign=campaign).values_list("pk", "annotator_id"))
    errors: list[str] = []

    @_in_thread
    def submit(pk: int, annotator_id: int, copy: int) -> int:
        grade = pk % 4
        try:
            return judgment_submit(
                assignment_id=pk, user=by_user[annotator_id], grade=grade, evidence=[[0, 3]], seconds=1.0
            ).pk
        except WorkbenchError as exc:  # pragma: no cover - reported below
            errors.append(str(exc))
            return -1

    # Every assignment is submitted three times at once (a double click and a second tab).
    jobs = [(pk, who, copy) for pk, who in assignments for copy in range(3)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda args: submit(*args), jobs))
    assert not errors, errors[:3]
    stored = Judgment.objects.filter(project=project, source="annotator")
    assert stored.count() == len(assignments) == PAIRS * OVERLAP  # none lost, none duplicated
    assert len(set(ids)) == len(assignments)  # the three copies of one submit got the same row
    linked = Assignment.objects.filter(item__campaign=campaign, judgment__isnull=False)
    assert linked.count() == len(assignments)
    assert set(linked.values_list("judgment_id", flat=True)) == set(stored.values_list("pk", flat=True))
    for a in linked.select_related("judgment"):
        assert a.judgment.grade == a.pk % 4 and a.judgment.annotator_id == a.annotator_id


def test_a_second_assignment_or_verdict_is_refused_by_the_database() -> None:
    _postgres_only()
    project, corpus, campaign, users = _world()
    a = Assignment.objects.filter(item__campaign=campaign).first()
    with pytest.raises(IntegrityError):
        Assignment.objects.create(item=a.item, campaign=campaign, annotator=a.annotator, order_key="dup")
    encoder = ModelVersion.objects.create(project=project, name="e", kind="bi_encoder", source="registered", path="/x")
    index = IndexVersion.objects.create(
        project=project, corpus=corpus, corpus_version=0, encoder=encoder, number=1, index_type="flat",
        path="/x", passage_count=0, build_seconds=0.0,
    )  # fmt: skip
    config = SearchConfiguration.objects.create(project=project, name="c", index=index, mode="bm25")
    snapshot = LabelSnapshot.objects.create(
        project=project, corpus=corpus, corpus_version=0, name="s", source="gold", content_hash="h",
        relevance_threshold=1, grade_min=0, grade_max=3,
    )  # fmt: skip
    run = MiningRun.objects.create(project=project, snapshot=snapshot, configuration=config, params={})
    items = [
        AuditItem.objects.create(run=run, query=pi.query, document=pi.document, score=0.5)
        for pi in PoolItem.objects.filter(campaign=campaign)[:10]
    ]

    @_in_thread
    def verdict(args) -> str:  # type: ignore[no-untyped-def]
        item, user = args
        try:
            audit_verdict_record(item=item, user=user, verdict="relevant", grade=2)
            return "ok"
        except WorkbenchError:
            return "refused"
        except IntegrityError:
            return "integrity"

    # Two auditors race for each candidate: exactly one verdict and one positive judgment per candidate.
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(verdict, [(it, u) for it in items for u in users[:2]]))
    assert outcomes.count("ok") == len(items), outcomes
    assert AuditVerdict.objects.filter(item__run=run).count() == len(items)
    assert Judgment.objects.filter(project=project, explanation__startswith="Overturned").count() == len(items)


def test_snapshot_hash_on_postgresql_equals_the_pinned_one() -> None:
    _postgres_only()
    from tests.labeling.test_snapshot_hash import PINNED, freeze_fixed_world

    assert freeze_fixed_world()[:8] == PINNED


def test_reassigning_while_the_annotator_judges_loses_nothing() -> None:
    """An annotator saves their pairs while the ML lead hands their remaining ones to someone else: every pair ends
    with exactly one owner; each save either landed (the pair stayed theirs) or was refused (it had moved)."""
    from labeling.services.campaigns import assignments_reassign_remaining

    _postgres_only()
    project, _corpus, campaign, users = _world()
    leaver, taker = users[0], users[1]
    mine = list(Assignment.objects.filter(campaign=campaign, annotator=leaver).values_list("pk", flat=True))
    outcomes: dict[int, str] = {}

    @_in_thread
    def submit(pk: int) -> None:
        try:
            judgment_submit(assignment_id=pk, user=leaver, grade=1)
            outcomes[pk] = "saved"
        except WorkbenchError:
            outcomes[pk] = "refused"

    @_in_thread
    def reassign(_: int) -> dict:
        return assignments_reassign_remaining(campaign=campaign, from_user=leaver, to_user=taker)

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(submit, pk) for pk in mine]
        moved = pool.submit(reassign, 0)
        for f in futures:
            f.result()
        result = moved.result()
    rows = {a.pk: a for a in Assignment.objects.filter(pk__in=mine).select_related("judgment")}
    for pk in mine:
        a = rows[pk]
        if outcomes[pk] == "saved":
            assert a.annotator_id == leaver.pk and a.judgment is not None and a.judgment.annotator_id == leaver.pk
        else:
            assert a.judgment_id is None and a.annotator_id in (taker.pk, leaver.pk)
    stored = Judgment.objects.filter(project=project, source="annotator")
    assert stored.count() == sum(1 for o in outcomes.values() if o == "saved")
    assert Assignment.objects.filter(campaign=campaign, annotator=taker).count() >= result["moved"]
    # No pair has two assignments of one annotator (the database refuses that anyway) and none was lost.
    assert Assignment.objects.filter(campaign=campaign).count() == PAIRS * OVERLAP


def test_aggregating_while_an_adjudicator_decides_keeps_the_adjudicators_grade() -> None:
    """The ML lead applies the aggregation rule while an adjudicator's grade for one pair is being saved: the rule
    waits for it and then leaves that pair alone (it never overwrites a human's gold with the rule's)."""
    import threading

    from django.db import transaction

    from labeling.models import Adjudication
    from labeling.services.adjudication import adjudication_set, campaign_aggregate

    _postgres_only()
    _project, _corpus, campaign, users = _world()
    by_user = {u.pk: u for u in users}
    for pk, who in Assignment.objects.filter(campaign=campaign).values_list("pk", "annotator_id"):
        judgment_submit(assignment_id=pk, user=by_user[who], grade=0)  # the rule would say 0 everywhere
    item = PoolItem.objects.filter(campaign=campaign).order_by("pk").first()
    adjudicator = make_user()
    decided, release = threading.Event(), threading.Event()

    @_in_thread
    def adjudicate() -> None:
        with transaction.atomic():
            adjudication_set(item=item, user=adjudicator, grade=3, note="clearly relevant")
            decided.set()
            release.wait(10)  # hold the transaction open while the rule runs

    @_in_thread
    def aggregate() -> dict:
        return campaign_aggregate(campaign=campaign, user=None)

    with ThreadPoolExecutor(max_workers=2) as pool:
        held = pool.submit(adjudicate)
        assert decided.wait(10)
        rule = pool.submit(aggregate)
        try:
            rule.result(timeout=1.5)
            finished_early = True
        except TimeoutError:
            finished_early = False  # it waits for the adjudicator's lock, as it must
        release.set()
        held.result()
        result = rule.result(timeout=30)
    assert not finished_early
    gold = Adjudication.objects.get(item=item)
    assert (gold.method, gold.grade, gold.adjudicator_id) == (Adjudication.Method.ADJUDICATOR, 3, adjudicator.pk)
    assert result["written"] == PAIRS - 1
    assert Adjudication.objects.filter(item__campaign=campaign, method=Adjudication.Method.RULE).count() == PAIRS - 1
