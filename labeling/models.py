"""The judging workflow: campaigns, assignments, verdicts, adjudications and label snapshots.

Raw relevance facts (``Judgment``) live in the core (``workbench.models``); this app writes them. A label snapshot is
the frozen, hashed input of training and of pinned evaluations: gold qrels, audited negatives and the query split.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workbench.models import Corpus, Document, Passage, Project, Query


class LabelSnapshot(models.Model):
    """Immutable once frozen: rows are written in one transaction with the hash of their content."""

    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported judgments"
        GOLD = "gold", "Gold (all judgments, adjudicated where judged)"
        SYNTHETIC = "synthetic", "Synthetic queries"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_snapshots")
    corpus = models.ForeignKey(Corpus, on_delete=models.PROTECT, related_name="label_snapshots")
    corpus_version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=12, choices=Source.choices)
    content_hash = models.CharField(max_length=64, db_index=True, help_text="sha256 of queries, splits, qrels.")
    relevance_threshold = models.SmallIntegerField()
    grade_min = models.SmallIntegerField()
    grade_max = models.SmallIntegerField()
    params = models.JSONField(default=dict, blank=True, help_text="How the split was made (dev share, seed ...).")
    stats = models.JSONField(default=dict, blank=True, help_text="Counts per split and grade.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_snapshot_name")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class SnapshotQuery(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        DEV = "dev", "Dev"
        TEST = "test", "Test"

    snapshot = models.ForeignKey(LabelSnapshot, on_delete=models.CASCADE, related_name="queries")
    # PROTECT: a frozen snapshot must keep meaning what it meant.
    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="+")
    split = models.CharField(max_length=5, choices=Split.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "query"], name="one_split_per_query")]


class SnapshotJudgment(models.Model):
    """One gold (query, document, grade) of a snapshot."""

    snapshot = models.ForeignKey(LabelSnapshot, on_delete=models.CASCADE, related_name="judgments")
    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="+")
    grade = models.SmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "query", "document"], name="one_gold_grade_per_pair")
        ]


class SnapshotNegative(models.Model):
    """An audited hard negative: a mined candidate an annotator confirmed is not relevant."""

    snapshot = models.ForeignKey(LabelSnapshot, on_delete=models.CASCADE, related_name="negatives")
    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="+")
    passage = models.ForeignKey(Passage, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "query", "document"], name="one_negative_per_pair")]
