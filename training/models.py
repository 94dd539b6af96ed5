"""Training runs: a snapshot + a recipe + a base model, run as a background job, producing a model version."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from labeling.models import LabelSnapshot
from workbench.models import Job, ModelVersion, Project, SearchConfiguration


class TrainingRun(models.Model):
    class Kind(models.TextChoices):
        BI_ENCODER = "bi_encoder", "Bi-encoder"
        CROSS_ENCODER = "cross_encoder", "Cross-encoder reranker"
        DISTILL = "distill", "Distilled reranker (faster student)"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Not finished"
        IMPROVED = "improved", "Beats its base on dev"
        NOT_IMPROVED = "not_improved", "Does not beat its base"
        UNMEASURED = "unmeasured", "No dev split: gain not measured"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    name = models.CharField(max_length=200)
    snapshot = models.ForeignKey(LabelSnapshot, on_delete=models.PROTECT, related_name="training_runs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    lora = models.BooleanField(default=False)
    base = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="training_runs")
    first_stage = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="Reranker runs."
    )
    teacher = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Distillation runs: the trained reranker whose scores the student learns.",
    )
    params = models.JSONField(default=dict, help_text="The recipe (training.ml config as a dict).")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    verdict = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="trained_by"
    )
    index_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    configuration = models.ForeignKey(
        SearchConfiguration, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def outcome_label(self) -> str:
        """The outcome in this kind's terms: a distilled student is offered for matching its teacher, not beating it."""
        if self.kind == self.Kind.DISTILL:
            return {
                self.Outcome.IMPROVED: "Within tolerance of its teacher",
                self.Outcome.NOT_IMPROVED: "Loses too much against its teacher",
            }.get(self.outcome, self.get_outcome_display())
        return self.get_outcome_display()
