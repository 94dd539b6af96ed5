"""Reads for the core app's pages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import (
    Avg,
    BigIntegerField,
    Count,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.utils import timezone

from workbench.models import (
    Corpus,
    Document,
    IndexVersion,
    Job,
    JobMetric,
    Judgment,
    Membership,
    ModelVersion,
    Project,
    Query,
    QueryTag,
    SearchConfiguration,
    SearchLog,
    ServingRecord,
)


def projects_for_user(user: Any) -> QuerySet[Project]:
    """The projects a user may open, each with ``n_members``: all of its members, not only the rows the viewer's
    membership filter joined (a subquery keeps the filter's join away from the count)."""
    qs = Project.objects.all()
    if not user.is_superuser:
        qs = qs.filter(pk__in=Membership.objects.filter(user=user).values("project_id"))
    my_role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return qs.annotate(n_members=Count("memberships", distinct=True), my_role=Subquery(my_role)).order_by("name")


def project_overview(project: Project) -> dict:
    corpora = project.corpora.annotate(
        n_documents=Count("documents", distinct=True),
    ).order_by("name")
    return {
        "corpora": corpora,
        "n_queries": project.queries.count(),
        "n_judgments": Judgment.objects.filter(project=project).count(),
        "tags": QueryTag.objects.filter(project=project).annotate(n=Count("queries")).order_by("name"),
        "recent_jobs": Job.objects.filter(project=project)[:8],
    }


def corpus_passage_count(corpus: Corpus) -> int:
    return corpus.passages.count()


def corpus_dependents(corpus: Corpus, *, own_running_jobs: int = 0) -> list[str]:
    """What keeps a corpus from being deleted, as readable phrases ("2 index versions", "1 eval run", ...).

    Rows of any app that point to the corpus with a PROTECT key (index versions, evaluations), judgments made by
    people (imported ones can be imported again), and queued or running jobs that would write into it (less
    ``own_running_jobs``: the caller's own job, when a job asks).
    """
    found = []
    for rel in Corpus._meta.related_objects:
        if rel.on_delete.__name__ != "PROTECT":
            continue
        n = rel.related_model._default_manager.filter(**{rel.field.name: corpus}).count()
        if n:
            meta = rel.related_model._meta
            found.append(f"{n} {meta.verbose_name if n == 1 else meta.verbose_name_plural}")
    human = Judgment.objects.filter(document__corpus=corpus).exclude(source=Judgment.Source.IMPORTED).count()
    if human:
        found.append(f"{human} judgment{'s' if human != 1 else ''} by annotators or adjudication")
    jobs = Job.objects.filter(project_id=corpus.project_id, status__in=Job.ACTIVE, params__corpus_id=corpus.pk)
    if n_jobs := max(0, jobs.count() - own_running_jobs):
        found.append(f"{n_jobs} queued or running job{'s' if n_jobs != 1 else ''}")
    return found


def members(project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("user__username")


def documents_search(corpus: Corpus, *, text: str = "", tenant: str = "", doc_type: str = "") -> QuerySet[Document]:
    """Documents matching a full-text query (PostgreSQL ranking when available, substring match otherwise)."""
    qs = corpus.documents.all()
    if tenant:
        qs = qs.filter(tenant=tenant)
    if doc_type:
        qs = qs.filter(doc_type=doc_type)
    text = text.strip()
    if not text:
        return qs.order_by("id")
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = SearchVector("title", weight="A", config="english") + SearchVector(
            "text", weight="B", config="english"
        )
        query = SearchQuery(text, search_type="websearch", config="english")
        return qs.annotate(rank=SearchRank(vector, query)).filter(rank__gt=0).order_by("-rank", "id")
    terms = text.split()
    cond = Q()
    for term in terms:
        cond &= Q(title__icontains=term) | Q(text__icontains=term)
    return qs.filter(cond).order_by("id")


def facet_values(corpus: Corpus, field: str) -> list[str]:
    return list(corpus.documents.exclude(**{field: ""}).order_by(field).values_list(field, flat=True).distinct()[:200])


def queries_list(project: Project, *, tag: str = "", text: str = "") -> QuerySet[Query]:
    qs = project.queries.prefetch_related("tags").annotate(n_judgments=Count("judgments"))
    if tag:
        qs = qs.filter(tags__name=tag)
    if text.strip():
        qs = qs.filter(Q(text__icontains=text.strip()) | Q(external_id=text.strip()))
    return qs.order_by("id")


def query_judgments(query: Query) -> list[dict[str, Any]]:
    """One row per judged document of a query: its gold grade (by ``GOLD_RULE``) and every judgment behind it."""
    rows = list(
        Judgment.objects.filter(query=query)
        .select_related("document__corpus", "annotator")
        .order_by("document_id", "id")
    )
    gold = gold_reduce((r.query_id, r.document_id, r.grade, r.source) for r in rows if not r.cant_judge).get(
        query.pk, {}
    )
    labels = dict(query.project.grades)
    by_doc: dict[int, dict[str, Any]] = {}
    for r in rows:
        entry = by_doc.setdefault(
            r.document_id, {"document": r.document, "gold": gold.get(r.document_id), "judgments": []}
        )
        entry["judgments"].append(r)
    out = list(by_doc.values())
    for entry in out:
        entry["gold_label"] = labels.get(entry["gold"], "") if entry["gold"] is not None else ""
    # Most relevant first, then by document id, so the page reads like a ranked answer key.
    out.sort(key=lambda e: (-(e["gold"] if e["gold"] is not None else -1), e["document"].external_id))
    return out


def jobs_for_project(project: Project, *, status: str = "") -> QuerySet[Job]:
    qs = Job.objects.filter(project=project).select_related("created_by")
    return qs.filter(status=status) if status else qs


def job_metric_names(job: Job) -> list[str]:
    return list(JobMetric.objects.filter(job=job).order_by("name").values_list("name", flat=True).distinct())


def job_metric_series(job: Job, name: str, *, max_points: int = 500) -> list[tuple[int, float]]:
    """At most ``max_points`` (step, value) points of one metric for a chart, downsampled in SQL.

    The first and last points are the exact first and last reports; between them, steps are split into equal ranges
    and each range shows its mean at its last step. Never more than ``max_points`` rows leave the database.
    """
    max_points = max(2, max_points)
    rows = JobMetric.objects.filter(job=job, name=name)
    stats = rows.aggregate(n=Count("id"), lo=Min("step"), hi=Max("step"))
    if not stats["n"]:
        return []
    if stats["n"] <= max_points:
        return list(rows.order_by("step", "id").values_list("step", "value"))
    first = rows.order_by("step", "id").values_list("step", "value")[0]
    last = rows.order_by("-step", "-id").values_list("step", "value")[0]
    lo, hi, buckets = first[0], last[0], max_points - 2
    width = max(1, -(-(hi - lo - 1) // buckets))  # ceil: steps strictly between the first and the last
    middle = (
        rows.filter(step__gt=lo, step__lt=hi)
        .annotate(bucket=ExpressionWrapper((F("step") - Value(lo + 1)) / Value(width), output_field=BigIntegerField()))
        .values("bucket")
        .annotate(at=Max("step"), mean=Avg("value"))
        .order_by("bucket")
        .values_list("at", "mean")[:buckets]
    )
    return [(first[0], first[1]), *((int(at), float(mean)) for at, mean in middle), (last[0], last[1])]


def job_metric_chart(job: Job, *, max_points: int = 500) -> dict[str, list[tuple[int, float]]]:
    """Every metric of a job, downsampled, for the chart of its page."""
    return {name: job_metric_series(job, name, max_points=max_points) for name in job_metric_names(job)[:8]}


def job_queue_ahead(job: Job, *, limit: int = 5) -> dict[str, Any] | None:
    """For a queued job: its place in its queue and what runs or waits ahead of it (read-only).

    Workers take a queue's jobs oldest first, so what is ahead is every active job on the same queue created before
    it. Jobs of other projects share the queue but are only counted, never named.
    """
    if job.status != Job.Status.QUEUED:
        return None
    ahead = Job.objects.filter(queue=job.queue, status__in=Job.ACTIVE).filter(
        Q(status=Job.Status.RUNNING) | Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, pk__lt=job.pk)
    )
    total = ahead.count()
    own = ahead.filter(project=job.project)
    n_own = own.count()
    mine = list(own.order_by("created_at", "id")[:limit])
    return {
        "position": total + 1,
        "queue": job.queue,
        "ahead": mine,
        "more": n_own - len(mine),
        "other_projects": total - n_own,
    }


def job_links(job: Job) -> list[tuple[str, str]]:
    """Links to what a finished job produced (an index, an evaluation, a corpus), declared with its task."""
    from workbench.jobs import job_kind

    entry = job_kind(job.kind)
    if job.status != Job.Status.SUCCEEDED or entry is None or entry.links is None:
        return []
    return entry.links(job)


def job_result_fields(job: Job) -> list[tuple[str, str]]:
    """A finished job's result as readable (label, value) pairs: ids become links elsewhere, never raw keys."""
    fields = []
    for key, value in (job.result or {}).items():
        if key == "message" or key.endswith("_id") or key.endswith("_ids"):
            continue
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, int):
            text = f"{value:,}"
        elif isinstance(value, float):
            text = f"{value:,.1f}" if key.endswith(("_seconds", "_s")) else f"{value:,.4g}"
        elif isinstance(value, list | tuple):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in value.items())
        else:
            text = str(value)
        label = key.replace("_", " ")
        label = label.removesuffix(" seconds") + " (s)" if key.endswith("_seconds") else label
        fields.append((label[:1].upper() + label[1:], text))
    return fields


def readable_value(value: Any) -> str:
    """A JSON value as text people read (no Python reprs): lists joined, objects as "key value" pairs."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(readable_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return " · ".join(f"{k} {readable_value(v)}" for k, v in value.items()) or "none"
    return str(value)


def indexes_with_weights_of(encoder: ModelVersion, *, corpus: Corpus) -> QuerySet[IndexVersion]:
    """Index versions of ``corpus`` embedded with ``encoder``'s weights (that model version, or one with the same
    fingerprint), newest first: their stored vectors are what the encoder computes, at the length each was built
    with (callers that need one length check it)."""
    same = Q(encoder=encoder) | (Q(encoder__fingerprint=encoder.fingerprint) if encoder.fingerprint else Q(pk=None))
    return IndexVersion.objects.filter(same, corpus=corpus).select_related("encoder").order_by("-created_at", "-pk")


def index_manifest_fields(index: IndexVersion, *, show_paths: bool) -> list[tuple[str, str]]:
    """An index manifest as (label, value) rows people read; server paths only when ``show_paths`` (admins)."""
    m = index.manifest or {}
    params, metrics, encoder = m.get("parameters", {}), m.get("metrics", {}), m.get("encoder", {})
    rows = [
        ("Dense index", index.params_text),
        ("Why this type", params.get("auto_reason", "")),
        ("Adjustments", readable_value(params.get("adjustments") or [])),
        ("BM25", readable_value(params.get("bm25", {}))),
        ("Encoder", f"{m.get('encoder_name') or index.encoder.name}, {encoder.get('dimension', '?')} dimensions, "
                    f"max {encoder.get('max_seq_length', '?')} tokens"),
        ("Encoder fingerprint", str(encoder.get("fingerprint", ""))[:16]),
        ("Embedding", f"batch {params.get('batch_size', '?')}, {params.get('precision', '?')}"),
        ("Vectors reused", _reused_text(params, metrics)),
        ("Build time", " · ".join(
            f"{label} {metrics[key]:,.1f} s"
            for key, label in (("build_seconds", "total"), ("embed_seconds", "embedding"),
                               ("sentence_seconds", "answer sentences"), ("dense_seconds", "dense"),
                               ("bm25_seconds", "BM25"))
            if isinstance(metrics.get(key), int | float)
        )),
        ("Size on disk", f"{metrics['size_bytes'] / 1e6:,.1f} MB" if metrics.get("size_bytes") else ""),
        ("Passages", f"{m.get('passage_count', index.passage_count):,}" + (", texts kept" * bool(m.get("has_texts")))),
        ("Answer sentences", _answer_sentences_text(m)),
        ("Built", str(m.get("created", ""))),
    ]  # fmt: skip
    if show_paths:
        rows += [("Directory", index.path), ("Encoder path", str(encoder.get("path", "")))]
    return [(label, value) for label, value in rows if value]


def _reused_text(params: dict, metrics: dict) -> str:
    passages, sentences = metrics.get("reused_vectors") or 0, metrics.get("reused_sentence_vectors") or 0
    if not params.get("reused_from") or not (passages or sentences):
        return ""
    source = params["reused_from"]
    return f"{passages:,} passages and {sentences:,} answer sentences from {source} (same texts, same weights)"


def _answer_sentences_text(manifest: dict) -> str:
    count = manifest.get("sentence_count")
    if count is None:
        return "not stored: extractive answers embed their passages' sentences per answer (slower)"
    return f"{count:,} citable sentences embedded: extractive answers read them instead of running the encoder"


LATENCY_WINDOWS = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
LATENCY_STAGES = ("embed", "dense", "bm25", "fuse", "rerank", "total")


def backend_measure_job(model: ModelVersion) -> Job | None:
    """The queued or running backend measurement of a model version, if any."""
    return (
        Job.objects.filter(project_id=model.project_id, kind="backend_measure", params__model_id=model.pk)
        .filter(status__in=Job.ACTIVE)
        .first()
    )


def latency_stats(project: Project, *, window: str = "24h", limit: int = 50_000) -> list[dict]:
    """p50/p95/p99 per stage and index version over a time window (stages that did not run are left out).

    Stages that ran on an inference backend (embed, rerank) are also broken down per backend, so a change of
    backend shows as its own row ("rerank · torch-int8"), with the mean rerank depth where searches reranked."""
    since = timezone.now() - timezone.timedelta(hours=LATENCY_WINDOWS.get(window, 24))
    logs = (
        SearchLog.objects.filter(project=project, created_at__gte=since)
        .order_by("-created_at")
        .values_list("index_id", "timings_ms", "backends", "rerank_depth")[:limit]
    )
    by_index: dict[int, list[tuple[dict, dict, int | None]]] = {}
    for index_id, timings, used, depth in logs:
        by_index.setdefault(index_id, []).append((timings, used or {}, depth))
    names = {i.pk: str(i) for i in IndexVersion.objects.filter(pk__in=by_index).select_related("corpus", "encoder")}
    rows = []
    for index_id, entries in sorted(by_index.items()):
        stages = []
        for stage in LATENCY_STAGES:
            values = [(t.get(stage, 0.0), used.get(stage, ""), d) for t, used, d in entries if t.get(stage, 0.0) > 0.0]
            if not values:
                continue
            stages.append(_latency_row(stage, values, backend=""))
            labels = sorted({label for _, label, _ in values if label})
            if stage in BACKEND_STAGES and labels:
                for label in labels:
                    stages.append(_latency_row(stage, [v for v in values if v[1] == label], backend=label))
        rows.append(
            {"index_id": index_id, "index": names.get(index_id, f"#{index_id}"), "n": len(entries), "stages": stages}
        )
    return rows


BACKEND_STAGES = ("embed", "rerank")


def _latency_row(stage: str, values: list[tuple[float, str, int | None]], *, backend: str) -> dict:
    ms = np.array([v[0] for v in values])
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    depths = [v[2] for v in values if v[2]]
    return {
        "stage": f"{stage} · {backend}" if backend else stage,
        "backend": backend,
        "n": int(ms.size),
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "mean_depth": float(np.mean(depths)) if stage == "rerank" and depths else None,
    }


def search_configurations(project: Project) -> QuerySet[SearchConfiguration]:
    return SearchConfiguration.objects.filter(project=project).select_related(
        "index__corpus", "index__encoder", "reranker", "created_by"
    )


def serving_record(project: Project) -> ServingRecord | None:
    return (
        ServingRecord.objects.filter(project=project)
        .select_related("configuration__index__corpus", "configuration__index__encoder", "configuration__reranker")
        .select_related("set_by")
        .first()
    )


# --- Gold qrels: the one rule --------------------------------------------------------------------------------------
GOLD_RULE = "adjudicated grade where one exists, else the highest grade over judgments; can't-judge excluded"


def judgments_counted(*, project: Project, corpus: Corpus) -> QuerySet[Judgment]:
    """Judgments that take part in gold: of this corpus's documents, not "can't judge"."""
    return Judgment.objects.filter(project=project, document__corpus=corpus, cant_judge=False)


def gold_reduce(rows: Iterable[tuple[Any, Any, int, str]]) -> dict[Any, dict[Any, int]]:
    """(query key, document key, grade, source) rows -> query -> document -> gold grade, by ``GOLD_RULE``.

    An adjudicated judgment settles its pair (the latest one wins when rows arrive in creation order); otherwise the
    highest grade does. Judging campaigns apply their own aggregation rule by writing adjudicated rows.
    """
    best: dict[Any, dict[Any, int]] = {}
    settled: set[tuple[Any, Any]] = set()
    for qid, doc, grade, source in rows:
        grades = best.setdefault(qid, {})
        if source == Judgment.Source.ADJUDICATED:
            grades[doc] = int(grade)
            settled.add((qid, doc))
        elif (qid, doc) not in settled:
            grades[doc] = max(int(grade), grades.get(doc, int(grade)))
    return best


def qrels_gold(
    *, project: Project, corpus: Corpus, queries: QuerySet[Query] | None = None
) -> dict[str, dict[str, int]]:
    """Gold qrels of a corpus with external ids (query -> document -> grade), optionally for some queries only.

    Evaluation, exports and search badges all read gold through this function (and, later, frozen label snapshots
    store its output), so the rule lives in one place.
    """
    rows = judgments_counted(project=project, corpus=corpus)
    if queries is not None:
        rows = rows.filter(query__in=queries.values("pk"))
    values = rows.order_by("id").values_list("query__external_id", "document__external_id", "grade", "source")
    return gold_reduce(values.iterator(chunk_size=5000))


def grades_gold(*, query: Query, document_ids: Iterable[int]) -> dict[int, int]:
    """Gold grade per document primary key for one query (documents without a counted judgment are left out)."""
    rows = (
        Judgment.objects.filter(query=query, document_id__in=list(document_ids), cant_judge=False)
        .order_by("id")
        .values_list("query_id", "document_id", "grade", "source")
    )
    return gold_reduce(rows).get(query.pk, {})


def queries_judged(*, project: Project, corpus: Corpus) -> QuerySet[Query]:
    """Queries with at least one counted judgment on the corpus: what "all judged queries" means everywhere."""
    counted = judgments_counted(project=project, corpus=corpus)
    return Query.objects.filter(project=project, pk__in=counted.values("query_id")).order_by("id")
