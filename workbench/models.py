"""Core data: projects and roles, corpora/documents/passages, queries and their tags, judgments, imports, jobs,
model and index versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workbench.retrieval.search import DEFAULT_FUSION_DEPTH, SearchSpec


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    ML_LEAD = "ml_lead", "ML lead"
    ADMIN = "admin", "Admin"


DEFAULT_GRADE_LABELS = ["not relevant", "related", "relevant", "highly relevant"]


def default_grade_labels() -> list[str]:
    return list(DEFAULT_GRADE_LABELS)


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    # The relevance grade scale belongs to the project (collections are graded 0-1, 0-2, 0-3, 0-4 ...).
    grade_min = models.SmallIntegerField(default=0)
    grade_max = models.SmallIntegerField(default=3)
    grade_labels = models.JSONField(
        default=default_grade_labels, blank=True, help_text="One label per grade, lowest first."
    )
    relevance_threshold = models.SmallIntegerField(
        default=1, help_text="Lowest grade that counts as relevant for binary metrics (recall, MRR, MAP)."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(grade_max__gt=models.F("grade_min")), name="grade_scale_ordered"),
            models.CheckConstraint(
                condition=models.Q(relevance_threshold__gt=models.F("grade_min"))
                & models.Q(relevance_threshold__lte=models.F("grade_max")),
                name="relevance_threshold_within_scale",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def grades(self) -> list[tuple[int, str]]:
        """(grade, label) for every grade of the scale, lowest first."""
        labels = list(self.grade_labels or [])
        return [
            (g, labels[i] if i < len(labels) else str(g))
            for i, g in enumerate(range(self.grade_min, self.grade_max + 1))
        ]


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]
        ordering = ["project", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class Corpus(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="corpora")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Chunking is fixed per corpus so every passage of it is cut the same way.
    chunk_size = models.PositiveIntegerField(default=224, help_text="Tokens per passage (embedding tokenizer).")
    chunk_overlap = models.PositiveIntegerField(default=32, help_text="Tokens shared by consecutive passages.")
    tokenizer = models.CharField(max_length=300, default="all-MiniLM-L6-v2", help_text="Tokenizer used for chunking.")
    # Bumped on every change to its documents, so indexes and evaluations know which contents they cover.
    version = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_corpus_name")]
        ordering = ["name"]
        verbose_name_plural = "corpora"

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="documents")
    external_id = models.CharField(max_length=300)
    title = models.TextField(blank=True)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    # Promoted from metadata so they filter and slice with an index.
    tenant = models.CharField(max_length=200, blank=True, db_index=True)
    doc_type = models.CharField(max_length=100, blank=True, db_index=True)
    date = models.DateField(null=True, blank=True, db_index=True)
    source_name = models.CharField(max_length=300, blank=True, help_text="File the document came from.")
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "external_id"], name="unique_document_id")]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.external_id


class Passage(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="passages")
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="passages")  # denormalised for scans
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="unique_passage_ordinal")]
        ordering = ["document_id", "ordinal"]

    def __str__(self) -> str:
        return f"{self.document.external_id}#{self.ordinal}"


class QueryTag(models.Model):
    """A named set of queries: a slice on evaluation pages; held-out tags are never used for training."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="query_tags")
    name = models.CharField(max_length=100)
    held_out = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_tag_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Query(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="queries")
    external_id = models.CharField(max_length=300)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(QueryTag, related_name="queries", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "external_id"], name="unique_query_id")]
        ordering = ["id"]
        verbose_name_plural = "queries"

    def __str__(self) -> str:
        return self.external_id


class ImportRecord(models.Model):
    """One successful import of one file: lets a re-import of the same bytes be refused with a clear message."""

    class Kind(models.TextChoices):
        CORPUS = "corpus", "Corpus"
        QUERIES = "queries", "Queries"
        QRELS = "qrels", "Judgments"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    corpus = models.ForeignKey(Corpus, null=True, blank=True, on_delete=models.CASCADE, related_name="imports")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    filename = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class Judgment(models.Model):
    """A raw relevance fact of any source: imported qrels, an annotator's grade, an adjudicated gold grade.

    The gold grade of a (query, document) is derived from these by one rule (``workbench.selectors.qrels_gold``);
    the judging workflow (campaigns, assignments, adjudication) lives in the labeling app and writes these rows.
    """

    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported"
        ANNOTATOR = "annotator", "Annotator"
        ADJUDICATED = "adjudicated", "Adjudicated"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="judgments")
    # Judgments are per document (BEIR qrels); a passage and evidence spans make them finer where known.
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="judgments")
    passage = models.ForeignKey(Passage, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments")
    # Within the project's grade scale (checked by the services that write judgments).
    grade = models.SmallIntegerField()
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
    import_record = models.ForeignKey("ImportRecord", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query", "document", "split"],
                condition=models.Q(source="imported"),
                name="one_imported_judgment_per_pair_and_split",
            ),
        ]
        indexes = [models.Index(fields=["project", "query"], name="judgment_project_query_idx")]
        ordering = ["query_id", "document_id"]

    def __str__(self) -> str:
        return f"{self.query.external_id} / {self.document.external_id}: {self.grade}"


class Job(models.Model):
    """A background task as users see it: status, progress, message and log tail, polled by pages.

    Metrics (a training loss every few steps) are rows of JobMetric, appended without rewriting this row.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=50)
    title = models.CharField(max_length=300)
    queue = models.CharField(max_length=20, default="default")
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    message = models.TextField(blank=True)
    log_tail = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # False for failures that running the job again cannot fix (PermanentJobError): no Retry is offered.
    retryable = models.BooleanField(default=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["queue", "status"], name="job_queue_status")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def duration_s(self) -> float | None:
        if not self.started_at:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()

    @property
    def progress_percent(self) -> int:
        """Whole percent, rounded down so a job never shows 100 % before it is done (one number for bar and text)."""
        if self.status == self.Status.SUCCEEDED:
            return 100
        return min(99, max(0, int(self.progress * 100)))

    @property
    def can_retry(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.CANCELLED) and self.retryable

    @property
    def heartbeat_stale(self) -> bool:
        """A running job whose worker stopped beating; the periodic reaper will mark it failed (pages only show it)."""
        if self.status != self.Status.RUNNING or self.heartbeat_at is None:
            return False
        from django.utils import timezone

        return (timezone.now() - self.heartbeat_at).total_seconds() > settings.JOB_HEARTBEAT_TIMEOUT_S


class JobMetric(models.Model):
    """One reported value of a job (a training loss at a step): appended in O(1), read downsampled."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=100)
    step = models.BigIntegerField(help_text="Training step, or the report's sequence number per name.")
    value = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "name", "step", "id"]
        indexes = [models.Index(fields=["job", "name", "step"], name="jobmetric_job_name_step")]

    def __str__(self) -> str:
        return f"{self.name}@{self.step}={self.value}"


class ModelVersion(models.Model):
    """A model on disk the project can use: the base encoder, a registered directory, or a trained one."""

    class Kind(models.TextChoices):
        BI_ENCODER = "bi_encoder", "Bi-encoder"
        CROSS_ENCODER = "cross_encoder", "Cross-encoder (reranker)"
        LORA_ADAPTER = "lora_adapter", "LoRA adapter"

    class Source(models.TextChoices):
        BUILTIN = "builtin", "Built in"
        REGISTERED = "registered", "Registered by path"
        TRAINED = "trained", "Trained here"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.CharField(max_length=12, choices=Source.choices)
    path = models.CharField(max_length=1000)
    base = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="derived")
    fingerprint = models.CharField(max_length=64, blank=True, help_text="Hash of the weights and config files.")
    dimension = models.PositiveIntegerField(null=True, blank=True)
    max_seq_length = models.PositiveIntegerField(null=True, blank=True)
    # A cross-encoder whose head was never trained must not be offered to users as a reranker.
    usable_for_search = models.BooleanField(default=True)
    manifest = models.JSONField(default=dict, blank=True)
    # The CPU inference backend chosen by the last measurement ("" = never measured: today's default path) and that
    # measurement (per backend: speed, fidelity to float32, pass/refused; the CPU it holds for). Written by
    # ``workbench.services.backends``; the engine uses the backend only on the CPU it was measured on.
    inference_backend = models.CharField(max_length=20, blank=True)
    backend_report = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_model_name")]
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name


class IndexVersion(models.Model):
    """A complete, immutable index build (FAISS + BM25) of one corpus version with one encoder.

    Rows exist only for finished builds: a build that fails or is cancelled leaves no row and no directory.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="index_versions")
    corpus = models.ForeignKey(Corpus, on_delete=models.PROTECT, related_name="index_versions")
    corpus_version = models.PositiveIntegerField()
    encoder = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="index_versions")
    number = models.PositiveIntegerField(help_text="Version number within the corpus.")
    index_type = models.CharField(max_length=10)
    params = models.JSONField(default=dict)
    path = models.CharField(max_length=1000)
    passage_count = models.PositiveIntegerField()
    build_seconds = models.FloatField()
    embed_rate = models.FloatField(null=True, blank=True, help_text="Passages embedded per second.")
    manifest = models.JSONField(default=dict)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "number"], name="unique_index_number")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.corpus.name} v{self.number} ({self.index_type}, {self.encoder.name})"

    @property
    def is_stale(self) -> bool:
        return self.corpus_version != self.corpus.version

    @property
    def reused_vectors(self) -> int:
        """Passage vectors this build read back from an earlier index instead of embedding them."""
        return int(((self.manifest or {}).get("metrics") or {}).get("reused_vectors") or 0)

    @property
    def params_text(self) -> str:
        """The dense index's type and parameters as people read them ("HNSW · M 32 · efConstruction 128 ...")."""
        from workbench.retrieval.faiss_index import describe_params

        return describe_params({"index_type": self.index_type, **(self.params or {})})


class SearchConfiguration(models.Model):
    """A named way to search: an index version (and so its encoder), a mode, fusion settings, an optional reranker.

    The search page, the API, evaluations and (next) pooling and hard-negative mining all search through one of these;
    ``spec`` is its engine half (``workbench.retrieval.search.SearchSpec``). Rows are immutable once used: to search
    differently, save another configuration.
    """

    class Mode(models.TextChoices):
        DENSE = "dense", "Dense"
        BM25 = "bm25", "BM25"
        HYBRID = "hybrid", "Hybrid (RRF)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="search_configurations")
    name = models.CharField(max_length=200)
    # PROTECT: an index or reranker cannot be deleted while a configuration (and what it served) names it.
    index = models.ForeignKey(IndexVersion, on_delete=models.PROTECT, related_name="search_configurations")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.HYBRID)
    alpha = models.FloatField(default=0.5, help_text="Dense weight in hybrid fusion (BM25 gets 1 - alpha).")
    fusion_depth = models.PositiveIntegerField(
        default=DEFAULT_FUSION_DEPTH, help_text="Candidates each list contributes to fusion."
    )
    reranker = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="search_configurations"
    )
    rerank_top_n = models.PositiveIntegerField(default=50, help_text="First-stage candidates the reranker rescores.")
    rerank_adaptive = models.BooleanField(
        default=False, help_text="Rerank fewer candidates when the first stage is confident (score-gap rule)."
    )
    rerank_min_n = models.PositiveIntegerField(default=10, help_text="Adaptive: rerank at least this many.")
    rerank_margin = models.FloatField(
        default=0.5, help_text="Adaptive: rerank candidates within this share of the score spread from the top."
    )
    rerank_weight = models.FloatField(
        default=1.0,
        help_text="Reranker share of a z-scored blend with the first stage's scores; 1 ranks by the reranker alone.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_search_configuration_name"),
            models.CheckConstraint(
                condition=models.Q(alpha__gte=0.0, alpha__lte=1.0), name="search_configuration_alpha_0_1"
            ),
            models.CheckConstraint(condition=models.Q(mode__in=["dense", "bm25", "hybrid"]), name="known_search_mode"),
            models.CheckConstraint(
                condition=models.Q(rerank_weight__gt=0.0, rerank_weight__lte=1.0),
                name="search_configuration_rerank_weight_0_1",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def spec(self) -> SearchSpec:
        return SearchSpec(
            mode=self.mode,
            alpha=self.alpha,
            fusion_depth=self.fusion_depth,
            rerank_top_n=self.rerank_top_n,
            rerank_adaptive=self.rerank_adaptive,
            rerank_min_n=self.rerank_min_n,
            rerank_margin=self.rerank_margin,
            rerank_weight=self.rerank_weight,
        ).normalised(reranked=self.reranker_id is not None)

    def key(self) -> tuple:
        """What makes two configurations rank alike (names aside)."""
        spec = self.spec
        return (
            self.index_id, spec.mode, spec.alpha, spec.fusion_depth, self.reranker_id, spec.rerank_top_n,
            spec.rerank_adaptive, spec.rerank_min_n, spec.rerank_margin, spec.rerank_weight,
        )  # fmt: skip

    def describe(self) -> str:
        """Index, encoder and settings as users read them."""
        index = self.index
        where = f"{index.corpus.name} v{index.number} ({index.encoder.name})"
        return f"{where} · {self.spec.describe(self.reranker.name if self.reranker_id else None)}"


class ServingRecord(models.Model):
    """What a project serves: the search configuration its search page and API answer with by default.

    One row per project. An ML lead sets it by hand; release activation (the releases app) will set it too, which is
    why this record lives in the core and the layer above writes it.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="serving")
    configuration = models.ForeignKey(SearchConfiguration, on_delete=models.PROTECT, related_name="serving_records")
    source = models.CharField(max_length=20, default="manual", help_text="manual, or release activation.")
    # A canary: this share (0-100 %) of API callers, sticky per caller, is answered by another configuration.
    canary_configuration = models.ForeignKey(
        SearchConfiguration, null=True, blank=True, on_delete=models.PROTECT, related_name="canary_records"
    )
    canary_share = models.PositiveSmallIntegerField(default=0)
    # A shadow: searched beside the served configuration on live queries, logged, never answered with.
    shadow_configuration = models.ForeignKey(
        SearchConfiguration, null=True, blank=True, on_delete=models.PROTECT, related_name="shadow_records"
    )
    # More configurations web processes keep loaded (a release's rollback target, approved candidates), so a switch
    # to any of them never waits for a model load. Ids; written by the releases app.
    keep_warm = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=300, blank=True)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    set_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(canary_share__lte=100), name="canary_share_0_100"),
        ]

    def __str__(self) -> str:
        return f"{self.project} serves {self.configuration}"


class SearchLog(models.Model):
    """Per-stage latency of one search, for the latency page (p50/p95/p99 per stage and index version)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    index = models.ForeignKey(IndexVersion, on_delete=models.CASCADE, related_name="searches")
    # The saved configuration that answered (None for an ad-hoc search with explicit parameters).
    configuration = models.ForeignKey(
        SearchConfiguration, null=True, blank=True, on_delete=models.SET_NULL, related_name="searches"
    )
    served = models.BooleanField(default=False, help_text="Answered by what the project serves (no explicit choice).")
    arm = models.CharField(max_length=20, blank=True, help_text="Release arm (active, canary, shadow), when any.")
    mode = models.CharField(max_length=10)
    reranked = models.BooleanField(default=False)
    # Candidates the reranker actually scored (fewer than rerank top n under adaptive depth); None: not reranked.
    rerank_depth = models.PositiveIntegerField(null=True, blank=True)
    # Inference backend per stage that ran one ({"embed": "openvino-fp32", "rerank": "torch-int8"}).
    backends = models.JSONField(default=dict, blank=True)
    # The best hit's score: the drift monitor compares its distribution over time.
    top_score = models.FloatField(null=True, blank=True)
    # Shadow searches: share of the answered top 10 passages the shadow also returned.
    overlap_at_10 = models.FloatField(null=True, blank=True)
    via = models.CharField(max_length=10, default="ui")  # ui | api | eval
    timings_ms = models.JSONField(default=dict)
    total_ms = models.FloatField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]


class ApiToken(models.Model):
    """A personal API token; only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
