"""Relevance judgments. Imported qrels land here too, with source "imported"."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workbench.models import Document, ImportRecord, Passage, Project, Query


class Judgment(models.Model):
    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported"
        ANNOTATOR = "annotator", "Annotator"
        ADJUDICATED = "adjudicated", "Adjudicated"

    GRADES = [(0, "0 not relevant"), (1, "1 related"), (2, "2 relevant"), (3, "3 highly relevant")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="judgments")
    # Judgments are per document (BEIR qrels); a passage and evidence spans make them finer where known.
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="judgments")
    passage = models.ForeignKey(Passage, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments")
    grade = models.SmallIntegerField(choices=GRADES)
    source = models.CharField(max_length=12, choices=Source.choices)
    # Name of the qrels split an imported judgment came from (e.g. "train", "test"), so exports recreate the files.
    split = models.CharField(max_length=100, blank=True)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    evidence = models.JSONField(
        default=list, blank=True, help_text="Character spans [[start, end], ...] in the passage."
    )
    cant_judge = models.BooleanField(default=False)
    explanation = models.TextField(blank=True)
    seconds = models.FloatField(null=True, blank=True)
    import_record = models.ForeignKey(ImportRecord, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query", "document", "split"],
                condition=models.Q(source="imported"),
                name="one_imported_judgment_per_pair_and_split",
            ),
            models.CheckConstraint(condition=models.Q(grade__gte=0, grade__lte=3), name="grade_between_0_and_3"),
        ]
        indexes = [models.Index(fields=["project", "query"])]
        ordering = ["query_id", "document_id"]

    def __str__(self) -> str:
        return f"{self.query.external_id} / {self.document.external_id}: {self.grade}"
