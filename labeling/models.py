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

    @property
    def negative_count(self) -> int:
        return sum(int(s.get("negatives", 0)) for s in (self.stats or {}).values() if isinstance(s, dict))


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


# --- Judging campaigns ------------------------------------------------------------------------------------------------


class Campaign(models.Model):
    """A judging campaign: a query set, the configurations its pool comes from, overlap, blindness, guidelines."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft (pool not built)"
        POOLING = "pooling", "Building pool"
        OPEN = "open", "Open for judging"
        CLOSED = "closed", "Closed"

    class Aggregation(models.TextChoices):
        MAJORITY = "majority", "Majority (ties: the lower grade)"
        MEAN = "mean", "Mean, rounded half up"
        TOP3_MIN = "top3_min", "Top three; their minimum if they disagree"

    class Order(models.TextChoices):
        RANDOM = "random", "Random per annotator"
        INFORMATIVE = "informative", "Most informative first (systems disagree most)"
        BOUNDARY = "boundary", "Most uncertain first (model score nearest the decision boundary)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="campaigns")
    # CASCADE: its pairs and judgments go with the corpus's documents anyway.
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    queries = models.ManyToManyField(Query, related_name="campaigns", blank=True)
    configurations = models.ManyToManyField(
        "workbench.SearchConfiguration", related_name="campaigns", help_text="Saved configurations the pool comes from."
    )
    annotators = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="campaigns", blank=True)
    depth = models.PositiveIntegerField(default=10, help_text="Pool depth k per configuration and query.")
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Annotators per pair (1-5).")
    blind = models.BooleanField(default=True, help_text="Annotators never see others' grades.")
    aggregation = models.CharField(max_length=10, choices=Aggregation.choices, default=Aggregation.MAJORITY)
    disagreement_threshold = models.PositiveSmallIntegerField(
        default=1, help_text="Pairs whose grades differ by more than this go to adjudication."
    )
    order = models.CharField(max_length=12, choices=Order.choices, default=Order.RANDOM)
    # Boundary order: pairs scored by this cross-encoder (sigmoid of its logit), else by the pool's own scores
    # (min-max within each configuration and query, averaged over the configurations); nearest ``boundary`` first.
    boundary_model = models.ForeignKey(
        "workbench.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    boundary = models.FloatField(default=0.5, help_text="Decision boundary on the 0–1 score (boundary order).")
    seed = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    job = models.ForeignKey("workbench.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pool_stats = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_campaign_name"),
            models.CheckConstraint(condition=models.Q(overlap__gte=1, overlap__lte=5), name="campaign_overlap_1_5"),
            models.CheckConstraint(condition=models.Q(depth__gte=1, depth__lte=1000), name="campaign_depth_1_1000"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class GuidelineVersion(models.Model):
    """Markdown guidelines, versioned: every judgment records the version it was made under."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="guidelines")
    number = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="unique_guideline_number")]
        ordering = ["campaign", "-number"]

    def __str__(self) -> str:
        return f"v{self.number}"


class PoolItem(models.Model):
    """One (query, document) pair of a campaign's pool, with the ranks the pooled configurations gave it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="+")
    ranks = models.JSONField(default=dict, help_text="Configuration id -> rank (1-based) in its top k.")
    informativeness = models.FloatField(default=0.0)
    model_score = models.FloatField(null=True, blank=True, help_text="0–1 score the boundary order sorted by.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "query", "document"], name="one_pool_item_per_pair")]
        ordering = ["campaign", "query_id", "document_id"]

    def __str__(self) -> str:
        return f"{self.query_id}/{self.document_id}"


class Assignment(models.Model):
    """A pool item given to one annotator; their judgment of it links here (at most one, enforced by the database)."""

    item = models.ForeignKey(PoolItem, on_delete=models.CASCADE, related_name="assignments")
    # Denormalised from the item: the annotator's queue is read on every judgment, from one index without a join.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    order_key = models.CharField(max_length=80, help_text="Sort key of this annotator's queue (randomised).")
    judgment = models.OneToOneField(
        "workbench.Judgment", null=True, blank=True, on_delete=models.SET_NULL, related_name="assignment"
    )
    guideline = models.ForeignKey(
        GuidelineVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )
    judged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="one_assignment_per_item_annotator")]
        indexes = [
            models.Index(fields=["campaign", "annotator", "order_key", "id"], name="assignment_queue_idx"),
            models.Index(
                fields=["campaign", "annotator", "order_key", "id"],
                condition=models.Q(judgment__isnull=True),
                name="assignment_pending_idx",
            ),
        ]
        ordering = ["order_key"]


class Adjudication(models.Model):
    """The gold grade of a pool item: set by an adjudicator or by the campaign's aggregation rule, with provenance."""

    class Method(models.TextChoices):
        ADJUDICATOR = "adjudicator", "Adjudicator"
        RULE = "rule", "Aggregation rule"

    item = models.OneToOneField(PoolItem, on_delete=models.CASCADE, related_name="adjudication")
    judgment = models.OneToOneField("workbench.Judgment", on_delete=models.CASCADE, related_name="adjudication")
    method = models.CharField(max_length=12, choices=Method.choices)
    rule = models.CharField(max_length=10, blank=True)
    grade = models.SmallIntegerField()
    source_judgments = models.JSONField(default=list, help_text="Ids of the annotator judgments it was made from.")
    guideline = models.ForeignKey(GuidelineVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now=True)


class AutoGrade(models.Model):
    """An automatic judge's grade of a pool item: one more rater, never gold."""

    item = models.ForeignKey(PoolItem, on_delete=models.CASCADE, related_name="auto_grades")
    judge = models.CharField(max_length=200, help_text="e.g. llm:<model>")
    grade = models.SmallIntegerField()
    raw = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "judge"], name="one_auto_grade_per_item_judge")]


# --- Hard-negative mining and audit -----------------------------------------------------------------------------------


class MiningRun(models.Model):
    """One mining of candidate hard negatives for a snapshot's training queries with a search configuration."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="mining_runs")
    snapshot = models.ForeignKey(LabelSnapshot, on_delete=models.CASCADE, related_name="mining_runs")
    configuration = models.ForeignKey(
        "workbench.SearchConfiguration", on_delete=models.CASCADE, related_name="mining_runs"
    )
    cross_encoder = models.ForeignKey(
        "workbench.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    params = models.JSONField(default=dict, help_text="range_min, range_max, relative_margin, num_negatives.")
    stats = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("workbench.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def describe(self) -> str:
        p = self.params
        margin = p.get("relative_margin")
        return (
            f"ranks {p.get('range_min')}–{p.get('range_max')}, margin {margin if margin is not None else '—'}, "
            f"≤{p.get('num_negatives')}/query{' + cross-encoder' if self.cross_encoder_id else ''}"
        )


class AuditItem(models.Model):
    """A mined candidate negative. ``suspicious``: the margin rule rejected it (it scores too close to a positive)."""

    run = models.ForeignKey(MiningRun, on_delete=models.CASCADE, related_name="items")
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    positive_score = models.FloatField(null=True, blank=True)
    suspicious = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "query", "document"], name="one_audit_item_per_pair")]
        ordering = ["-suspicious", "-score", "id"]


class AuditVerdict(models.Model):
    """An annotator's verdict on a mined negative: one per item (the database refuses a second)."""

    class Verdict(models.TextChoices):
        NOT_RELEVANT = "not_relevant", "Truly not relevant"
        RELEVANT = "relevant", "Actually relevant"
        CANT_TELL = "cant_tell", "Can't tell"

    item = models.OneToOneField(AuditItem, on_delete=models.CASCADE, related_name="verdict")
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    grade = models.SmallIntegerField(null=True, blank=True)
    judgment = models.OneToOneField(
        "workbench.Judgment", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_verdict"
    )
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now=True)
