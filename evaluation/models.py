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
    # Pinned to a frozen label snapshot's split: its queries and frozen gold, not the live judgments.
    snapshot = models.ForeignKey(
        "labeling.LabelSnapshot", null=True, blank=True, on_delete=models.PROTECT, related_name="eval_runs"
    )
    snapshot_split = models.CharField(max_length=5, blank=True)
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


# --- Answer runs and their human QA -------------------------------------------------------------------------------


class AnswerRun(models.Model):
    """Answers with citations for a query set: one search configuration, one generator backend, one policy.

    ``summary`` holds the figures computed when the run finished (gold evidence where it exists, e.g. SciFact);
    reviewers' figures are computed from the reviews when the page is read, so a new review counts at once.
    """

    class Backend(models.TextChoices):
        EXTRACTIVE = "extractive", "Extractive (no model, cites the best sentences)"
        HF_LOCAL = "hf-local", "Local causal LM (optionally with a LoRA adapter)"
        OPENAI = "openai-compatible", "OpenAI-compatible server"

    class Policy(models.TextChoices):
        EACH_CLAIM = "each-claim", "Every sentence cites a supporting passage"
        AT_LEAST_ONE = "at-least-one", "At least one citation per answer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="answer_runs")
    name = models.CharField(max_length=200)
    query_tag = models.ForeignKey(QueryTag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    query_set = models.CharField(max_length=200)
    configuration = models.ForeignKey(SearchConfiguration, on_delete=models.PROTECT, related_name="answer_runs")
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.EXTRACTIVE)
    # Never a secret: the openai-compatible backend stores the NAME of the environment variable holding the key.
    backend_settings = models.JSONField(default=dict, blank=True)
    citation_policy = models.CharField(max_length=20, choices=Policy.choices, default=Policy.EACH_CLAIM)
    abstain_threshold = models.FloatField(default=0.6, help_text="Abstain when the best sentence scores below this.")
    passages_k = models.PositiveIntegerField(default=5, help_text="Passages retrieved and shown to the generator.")
    review_overlap = models.PositiveSmallIntegerField(default=1, help_text="Reviews wanted per answer.")
    gold = models.CharField(max_length=20, blank=True, help_text="Gold evidence source (scifact) or empty.")
    seed = models.IntegerField(default=0)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.JSONField(default=dict, blank=True)
    notes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(review_overlap__gte=1, review_overlap__lte=5), name="answer_run_overlap_1_5"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_complete(self) -> bool:
        return self.finished_at is not None


class Answer(models.Model):
    class Status(models.TextChoices):
        ANSWERED = "answered", "Answered"
        ABSTAINED = "abstained", "Abstained"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(AnswerRun, on_delete=models.CASCADE, related_name="answers")
    query = models.ForeignKey("workbench.Query", on_delete=models.CASCADE, related_name="answers")
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    text = models.TextField(blank=True)
    raw = models.TextField(blank=True, help_text="What the model returned before parsing.")
    confidence = models.FloatField(null=True, blank=True)
    error_kind = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    latency_ms = models.JSONField(default=dict, blank=True)  # retrieve, rerank, generate, total
    gold = models.JSONField(default=dict, blank=True)  # gold facts used by the run's gold figures

    class Meta:
        ordering = ["run_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "query"], name="unique_answer_per_query"),
            models.UniqueConstraint(fields=["run", "position"], name="unique_answer_position"),
        ]

    def __str__(self) -> str:
        return f"answer {self.pk} to {self.query_id}"


class RetrievedPassage(models.Model):
    """A passage as the generator saw it (text copied: the answer stays readable if the corpus changes)."""

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="retrieved")
    number = models.PositiveSmallIntegerField(help_text="1-based, as numbered in the prompt.")
    passage = models.ForeignKey("workbench.Passage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    passage_pk = models.BigIntegerField()
    document = models.ForeignKey(
        "workbench.Document", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    doc_external_id = models.CharField(max_length=300)
    doc_char_start = models.PositiveIntegerField(default=0, help_text="Where the passage starts in its document.")
    title = models.TextField(blank=True)
    text = models.TextField()
    score = models.FloatField()

    class Meta:
        ordering = ["answer_id", "number"]
        constraints = [models.UniqueConstraint(fields=["answer", "number"], name="unique_retrieved_number")]


class AnswerClaim(models.Model):
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="claims")
    ordinal = models.PositiveSmallIntegerField()
    text = models.TextField()
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()

    class Meta:
        ordering = ["answer_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["answer", "ordinal"], name="unique_claim_ordinal")]


class AnswerCitation(models.Model):
    """Claim cites a retrieved passage; ``start:end`` is the cited span in the passage text."""

    claim = models.ForeignKey(AnswerClaim, on_delete=models.CASCADE, related_name="citations")
    retrieved = models.ForeignKey(RetrievedPassage, on_delete=models.CASCADE, related_name="citations")
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    gold_support = models.BooleanField(null=True, blank=True, help_text="The span covers a gold rationale sentence.")

    class Meta:
        ordering = ["claim_id", "retrieved__number"]
        constraints = [models.UniqueConstraint(fields=["claim", "retrieved"], name="unique_citation")]


class AnswerReview(models.Model):
    """One reviewer's verdict on one answer; an adjudication (at most one per answer) settles disagreements."""

    class Kind(models.TextChoices):
        REVIEW = "review", "Review"
        ADJUDICATION = "adjudication", "Adjudication"

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="answer_reviews")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.REVIEW)
    hallucination = models.BooleanField()
    should_have_abstained = models.BooleanField()
    usefulness = models.PositiveSmallIntegerField()
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["answer_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["answer", "reviewer", "kind"], name="one_review_per_reviewer"),
            models.UniqueConstraint(
                fields=["answer"], condition=models.Q(kind="adjudication"), name="one_adjudication_per_answer"
            ),
            models.CheckConstraint(
                condition=models.Q(usefulness__gte=1, usefulness__lte=5), name="answer_usefulness_1_5"
            ),
        ]


class ClaimReview(models.Model):
    class Label(models.TextChoices):
        SUPPORTED = "supported", "Supported"
        PARTIAL = "partial", "Partially supported"
        UNSUPPORTED = "unsupported", "Unsupported"
        CONTRADICTED = "contradicted", "Contradicted"

    review = models.ForeignKey(AnswerReview, on_delete=models.CASCADE, related_name="claim_reviews")
    claim = models.ForeignKey(AnswerClaim, on_delete=models.CASCADE, related_name="reviews")
    label = models.CharField(max_length=12, choices=Label.choices)
    supported_by = models.ForeignKey(
        RetrievedPassage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The cited passage that supports the claim.",
    )  # fmt: skip

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "claim"], name="one_label_per_claim_review")]


class CitationReview(models.Model):
    class Verdict(models.TextChoices):
        CORRECT = "correct", "Correct"
        WRONG = "wrong", "Wrong passage"
        IRRELEVANT = "irrelevant", "Irrelevant"

    review = models.ForeignKey(AnswerReview, on_delete=models.CASCADE, related_name="citation_reviews")
    citation = models.ForeignKey(AnswerCitation, on_delete=models.CASCADE, related_name="reviews")
    verdict = models.CharField(max_length=12, choices=Verdict.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "citation"], name="one_verdict_per_citation_review")]


class AnswerFlag(models.Model):
    """A (query, passage) pair answer QA sends to labeling: a judging campaign or the hard-negative audit.

    Labeling is a lower layer and cannot import this: open flags (``evaluation.answers.selectors.flags_open``) go to
    labeling through a labeling service this app calls, or through their CSV/BEIR export; ``picked_up_at`` marks
    them taken. This app never writes labeling rows itself.
    """

    class Target(models.TextChoices):
        JUDGING = "judging", "Judging campaign"
        AUDIT = "audit", "Hard-negative audit"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="answer_flags")
    run = models.ForeignKey(AnswerRun, on_delete=models.CASCADE, related_name="flags")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="flags")
    claim = models.ForeignKey(AnswerClaim, null=True, blank=True, on_delete=models.SET_NULL, related_name="flags")
    query = models.ForeignKey("workbench.Query", on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey("workbench.Document", on_delete=models.CASCADE, related_name="+")
    passage = models.ForeignKey("workbench.Passage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target = models.CharField(max_length=10, choices=Target.choices)
    reason = models.CharField(max_length=200, blank=True)
    picked_up_at = models.DateTimeField(null=True, blank=True, help_text="Set by labeling when it takes the pair.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "query", "document", "target"], name="one_flag_per_pair")
        ]


class AutoSupport(models.Model):
    """An automatic judge's support label for one claim (null label = undetermined: counted, never averaged)."""

    run = models.ForeignKey(AnswerRun, on_delete=models.CASCADE, related_name="auto_support")
    claim = models.ForeignKey(AnswerClaim, on_delete=models.CASCADE, related_name="auto_support")
    judge = models.CharField(max_length=200)
    label = models.CharField(max_length=12, null=True, blank=True, choices=ClaimReview.Label.choices)
    score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["claim", "judge"], name="one_auto_label_per_judge")]
