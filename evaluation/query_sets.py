"""What an evaluation runs on: every judged query (live gold), a query tag (live gold), or one split of a frozen label
snapshot (its frozen gold: the same numbers next month, whatever annotators do meanwhile).

Form values: ``""`` (all judged), ``"<tag id>"``, ``"s<snapshot id>:<split>"``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import QuerySet

from labeling.models import LabelSnapshot, SnapshotQuery
from workbench.errors import WorkbenchError
from workbench.models import Project, Query, QueryTag

ALL_JUDGED = "all judged queries"
PINNED_SPLITS = ("dev", "test")  # train queries are what a model learnt from: never an evaluation set


@dataclass(frozen=True)
class QuerySetChoice:
    tag: QueryTag | None = None
    snapshot: LabelSnapshot | None = None
    split: str = ""

    @property
    def label(self) -> str:
        if self.snapshot is not None:
            return f"snapshot {self.snapshot.name} ({self.split} split)"
        return f"tag {self.tag.name}" if self.tag else ALL_JUDGED

    @property
    def value(self) -> str:
        if self.snapshot is not None:
            return f"s{self.snapshot.pk}:{self.split}"
        return str(self.tag.pk) if self.tag else ""


def query_set_choices(project: Project) -> list[tuple[str, str]]:
    """Every query set of the project as form choices: all judged, each tag, each snapshot's dev and test split."""
    choices = [("", ALL_JUDGED.capitalize())]
    choices += [(str(t.pk), f"tag {t.name}{' (held out)' if t.held_out else ''}") for t in project.query_tags.all()]
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = SnapshotQuery.objects.filter(snapshot__project=project, split__in=PINNED_SPLITS).values_list(
        "snapshot_id", "split"
    )
    for snapshot_id, split in rows:
        counts[snapshot_id][split] = counts[snapshot_id].get(split, 0) + 1
    for snapshot in LabelSnapshot.objects.filter(project=project, pk__in=counts):
        for split in PINNED_SPLITS:
            if n := counts[snapshot.pk].get(split):
                choice = QuerySetChoice(snapshot=snapshot, split=split)
                choices.append((choice.value, f"{choice.label}, frozen gold, {n:,} queries"))
    return choices


def query_set_parse(project: Project, value: str | None) -> QuerySetChoice:
    """The choice a form value names, checked to belong to the project."""
    value = (value or "").strip()
    if not value:
        return QuerySetChoice()
    if value.startswith("s"):
        snapshot_id, _, split = value[1:].partition(":")
        if not snapshot_id.isdigit() or split not in PINNED_SPLITS:
            raise WorkbenchError(f"Unknown query set {value!r}: a snapshot's dev or test split is s<id>:dev or :test.")
        snapshot = LabelSnapshot.objects.filter(project=project, pk=int(snapshot_id)).first()
        if snapshot is None:
            raise WorkbenchError("That label snapshot does not exist in this project.")
        return QuerySetChoice(snapshot=snapshot, split=split)
    if not value.isdigit():
        raise WorkbenchError(f"Unknown query set {value!r}.")
    tag = QueryTag.objects.filter(project=project, pk=int(value)).first()
    if tag is None:
        raise WorkbenchError("That query tag does not exist in this project.")
    return QuerySetChoice(tag=tag)


def pinned_queries(snapshot: LabelSnapshot, split: str) -> QuerySet[Query]:
    return Query.objects.filter(
        pk__in=SnapshotQuery.objects.filter(snapshot=snapshot, split=split).values("query_id")
    ).order_by("id")


def pinned_qrels(snapshot: LabelSnapshot, split: str) -> dict[str, dict[str, int]]:
    """The snapshot's frozen gold grades of one split's queries; ids are external ids."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    rows = snapshot.judgments.filter(
        query_id__in=SnapshotQuery.objects.filter(snapshot=snapshot, split=split).values("query_id")
    ).values_list("query__external_id", "document__external_id", "grade")
    for qid, doc, grade in rows:
        qrels[qid][doc] = grade
    return dict(qrels)
