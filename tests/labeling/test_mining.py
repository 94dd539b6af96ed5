"""Hard-negative mining through sentence-transformers' mine_hard_negatives, the audit, and its yield."""

from __future__ import annotations

import pytest

from labeling import selectors
from labeling.models import AuditItem, AuditVerdict, MiningRun
from labeling.services.mining import audit_verdict_record, mining_start
from labeling.services.snapshots import snapshot_freeze
from workbench.errors import WorkbenchError
from workbench.models import Judgment

pytestmark = pytest.mark.django_db


def test_mine_audit_and_next_snapshot(indexed, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, _index, configs = indexed
    snapshot = snapshot_freeze(project=project, corpus=corpus, name="s0", user=lead, source="imported", seed=0)
    with django_capture_on_commit_callbacks(execute=True):
        run = mining_start(
            project=project, snapshot=snapshot, configuration=configs[1], user=lead,
            range_min=0, range_max=20, relative_margin=0.05, num_negatives=3,
        )  # fmt: skip
    run = MiningRun.objects.get(pk=run.pk)
    assert run.job.status == "succeeded", (run.job.message, run.job.log_tail)
    items = list(AuditItem.objects.filter(run=run))
    assert items and run.stats["candidates"] == len(items)
    train = set(snapshot.queries.filter(split="train").values_list("query_id", flat=True))
    assert {i.query_id for i in items} <= train  # training queries only
    positives = set(Judgment.objects.filter(grade__gte=1).values_list("query_id", "document_id"))
    assert not {(i.query_id, i.document_id) for i in items} & positives
    first = selectors.audit_next(project)
    assert first.suspicious == any(i.suspicious for i in items)  # suspected false negatives come first
    confirmed, overturned = items[0], items[1]
    audit_verdict_record(item=confirmed, user=lead, verdict="not_relevant", seconds=2)
    audit_verdict_record(item=overturned, user=lead, verdict="relevant", grade=2)
    with pytest.raises(WorkbenchError, match="relevant grade"):
        audit_verdict_record(item=items[2], user=lead, verdict="relevant", grade=0)
    assert AuditVerdict.objects.count() == 2
    assert Judgment.objects.filter(query=overturned.query, document=overturned.document, grade=2).exists()
    lines = selectors.audit_yield(project)[0]["lines"]
    assert lines[0]["slice"] == "all" and (lines[0]["audited"], lines[0]["overturned"], lines[0]["share"]) == (
        2,
        1,
        0.5,
    )
    nxt = snapshot_freeze(project=project, corpus=corpus, name="s1", user=lead, seed=0)
    data = selectors.snapshot_data(nxt)
    qid, doc = confirmed.query.external_id, confirmed.document.external_id
    assert doc in data.negatives.get(qid, []) and nxt.params["audited_negatives"] == 1
    assert data.qrels[overturned.query.external_id][overturned.document.external_id] == 2
    # Changing one's mind removes the positive again.
    audit_verdict_record(item=overturned, user=lead, verdict="cant_tell")
    assert not Judgment.objects.filter(query=overturned.query, document=overturned.document, grade=2).exists()
