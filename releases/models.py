"""Releases: a search configuration (and optionally a generator configuration) proposed with the evaluation
reports it is judged by, gated, approved by an ML lead, activated atomically (the core's serving record), canaried,
shadowed and rolled back; with the project's gate policy, alerts and an audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from evaluation.models import AnswerRun, EvalRun
from workbench.models import Project, QueryTag, SearchConfiguration


class GatePolicy(models.Model):
    """What a release must show. Defaults are the SLA's: recall@5 >= 0.8, MRR@10 >= 0.6, hallucination < 5 %,
    p95 latency < 1.2 s, and no slice significantly worse than the active release beyond the margin."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="gate_policy")
    recall_at_5_min = models.FloatField(default=0.8)
    mrr_min = models.FloatField(default=0.6, help_text="MRR@10 floor.")
    hallucination_max = models.FloatField(default=0.05, help_text="Share of answers with an unsupported claim.")
    p95_latency_ms_max = models.FloatField(default=1200.0)
    noninferiority_margin = models.FloatField(default=0.02, help_text="Largest tolerated drop per slice.")
    noninferiority_metrics = models.JSONField(default=list, blank=True, help_text="Default: nDCG@10, recall@10.")
    judge_calibration_min = models.FloatField(default=0.6, help_text="Automatic judges below this kappa are unused.")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def metrics_compared(self) -> list[str]:
        return list(self.noninferiority_metrics or ["nDCG@10", "recall@10"])


class Release(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired (was active)"
        REJECTED = "rejected", "Rejected"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="releases")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    configuration = models.ForeignKey(SearchConfiguration, on_delete=models.PROTECT, related_name="releases")
    generator = models.JSONField(default=dict, blank=True, help_text="Generator backend and settings, if any.")
    eval_runs = models.ManyToManyField(EvalRun, related_name="releases", blank=True)
    answer_runs = models.ManyToManyField(
        AnswerRun, related_name="releases", blank=True, help_text="Answer runs whose QA the hallucination gate reads."
    )
    golden_tag = models.ForeignKey(
        QueryTag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Query set re-run on a schedule while the release is active.",
    )  # fmt: skip
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED, db_index=True)
    notes = models.TextField(blank=True)
    lineage = models.JSONField(default=dict, blank=True)
    gates = models.JSONField(default=list, blank=True, help_text="Gate results when last evaluated.")
    gates_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True, help_text="Why it was approved over failed gates.")
    auto_rollback = models.BooleanField(default=False, help_text="Roll back on a p95 over budget or a golden drop.")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="unique_release_number"),
            # The database, not only the view, keeps "exactly one active release per project".
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(status="active"), name="one_active_release_per_project"
            ),
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"Release {self.number}: {self.name}"

    @property
    def was_approved(self) -> bool:
        return self.approved_at is not None


class ReleaseAlert(models.Model):
    class Kind(models.TextChoices):
        DRIFT = "drift", "Score drift"
        GOLDEN_DROP = "golden_drop", "Golden set drop"
        LATENCY = "latency", "Latency over budget"

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class AuditEvent(models.Model):
    """Append-only: proposals, gate results, approvals, overrides, activations, rollbacks, canary and shadow."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="release_events")
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=30, db_index=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
