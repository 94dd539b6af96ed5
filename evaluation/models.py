"""Evaluation runs: retrieval configurations evaluated over a query set, with metrics per slice and comparisons."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workbench.models import Corpus, Job, Project, QueryTag, SearchConfiguration


class EvalRun(models.Model):
    """One evaluation: several configurations over one query set, under one pinned semantics.

    ``report`` is ``EvaluationReport.to_dict()`` (means, slices, comparisons with the baseline); per-query metrics
    live on each configuration. The ranked lists, the qrels used and the report are files in ``artifact_dir``.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="eval_runs")
    name = models.CharField(max_length=200)
    # Null = every judged query of the corpus. SET_NULL keeps results when a tag is deleted; query_set keeps its name.
    query_tag = models.ForeignKey(QueryTag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    query_set = models.CharField(max_length=200, help_text="What the query set was, as users read it.")
    corpus = models.ForeignKey(Corpus, on_delete=models.PROTECT, related_name="eval_runs")
    corpus_version = models.PositiveIntegerField()
    depth = models.PositiveIntegerField(help_text="Documents kept per query in every ranked list.")
    semantics = models.JSONField(default=dict)
    test = models.CharField(max_length=20, default="randomization")
    seed = models.IntegerField(default=0)
    resamples = models.PositiveIntegerField(default=10_000)
    baseline = models.ForeignKey(
        "EvalConfig", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Compared against."
    )
    hard_baseline = models.ForeignKey(
        "EvalConfig", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Whose misses define the hard subset.",
    )  # fmt: skip
    slices = models.JSONField(default=dict, blank=True, help_text="Slice name -> query external ids.")
    qrels_sha256 = models.CharField(max_length=64, blank=True)
    notes = models.JSONField(default=list, blank=True, help_text="What users must know to read the numbers.")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    report = models.JSONField(default=dict, blank=True)
    artifact_dir = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_complete(self) -> bool:
        return bool(self.report)


class EvalConfig(models.Model):
    """One search configuration as evaluated in one run (with the run's own label for it) and, once run, its results."""

    eval_run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="configs")
    position = models.PositiveIntegerField()
    label = models.CharField(max_length=200)
    # PROTECT: a configuration (and through it its index and reranker) cannot go while these numbers depend on it.
    configuration = models.ForeignKey(SearchConfiguration, on_delete=models.PROTECT, related_name="eval_configs")
    depth = models.PositiveIntegerField()
    # means, per-query metrics (qids + arrays), latency percentiles per stage, top-1 score per query
    results = models.JSONField(default=dict, blank=True)
    run_file = models.CharField(max_length=1000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["eval_run", "position"], name="unique_config_position"),
            models.UniqueConstraint(fields=["eval_run", "label"], name="unique_config_label"),
        ]
        ordering = ["eval_run_id", "position"]
        verbose_name = "evaluation configuration"

    def __str__(self) -> str:
        return self.label

    @property
    def run_tag(self) -> str:
        """The TREC run tag: one token, unique across evaluations."""
        return f"eval{self.eval_run_id}-c{self.position}"
