"""Request and response schemas of the JSON API: what the OpenAPI document at ``/api/openapi.json`` describes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import field_validator, model_validator

from workbench.models import Job
from workbench.retrieval.search import MAX_K, MAX_QUERY_CHARS

SearchMode = Literal["dense", "bm25", "hybrid"]  # = workbench.retrieval.search.SEARCH_MODES (a test checks it)
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]  # = Job.Status (a test checks it)


class ErrorOut(Schema):
    error: str = Field(description="What went wrong, in words a user can act on.")
    fields: dict[str, str] | None = Field(
        None, description="For invalid requests: the message for each offending field (dotted path)."
    )


def _blank_to_default(data: Any) -> Any:
    """A query string or form sends ``index=`` for "not given": treat empty strings as absent."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value != ""}
    return data


# --- search ---------------------------------------------------------------------------------------------------


class SearchIn(Schema):
    """The same fields as query parameters (GET) or as a JSON object (POST)."""

    q: str = Field(..., min_length=1, max_length=MAX_QUERY_CHARS, description="The query text.")
    configuration: int | None = Field(
        None, ge=1, description="Saved search configuration id. Default: what the project serves."
    )
    index: int | None = Field(
        None, ge=1, description="Index version id for an ad-hoc configuration (with the settings below)."
    )
    # Settings left out come from the named or served configuration; any given make the search ad hoc.
    mode: SearchMode | None = Field(None, description="dense, bm25, or hybrid (reciprocal-rank fusion).")
    k: int = Field(10, ge=1, le=MAX_K, description="Number of results (documents with per_document).")
    per_document: bool = Field(
        False,
        description=(
            "One result per document: its best passage, with up to 5 of its other passages under `more` (ranked from "
            "a deeper passage list: 5 x k, at least 50). Default false: one result per passage, as before."
        ),
    )
    alpha: float | None = Field(None, ge=0.0, le=1.0, description="Dense weight in hybrid mode (default 0.5).")
    fusion_depth: int | None = Field(None, ge=1, le=MAX_K, description="Candidates per list in hybrid fusion.")
    rerank: int | None = Field(None, ge=0, description="Id of a trained cross-encoder to rerank with; 0: none.")
    rerank_top_n: int | None = Field(None, ge=1, le=MAX_K, description="First-stage hits the reranker rescores.")
    rerank_adaptive: bool | None = Field(
        None,
        description=(
            "Rerank fewer candidates when the first stage is confident: those whose first-stage score is within "
            "rerank_margin of the spread (top minus rerank_top_n-th) from the top, at least rerank_min_n."
        ),
    )
    rerank_min_n: int | None = Field(None, ge=1, le=MAX_K, description="Adaptive depth: rerank at least this many.")
    rerank_margin: float | None = Field(None, ge=0.0, le=1.0, description="Adaptive depth: share of the score spread.")
    rerank_weight: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description=(
            "Blend the reranker with the first stage: weight * z(rerank) + (1 - weight) * z(first stage) over the "
            "reranked candidates; 1 (the default) is the reranker alone."
        ),
    )
    tenant: str | None = None
    doc_type: str | None = None
    date_from: dt.date | None = Field(None, description="Documents dated on or after (YYYY-MM-DD).")
    date_to: dt.date | None = Field(None, description="Documents dated on or before (YYYY-MM-DD).")
    tag: str | None = Field(None, description="Only documents with this tag.")
    filters: dict[str, str] = Field(
        default_factory=dict,
        description="The same filters as an object (as a JSON string in a query string); the named fields win.",
    )

    _blank = model_validator(mode="before")(_blank_to_default)

    @field_validator("filters", mode="before")
    @classmethod
    def _filters_from_json_text(cls, value: Any) -> Any:
        # A query string can only carry text: accept the object JSON-encoded there.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("filters must be a JSON object") from None
        return value


class IndexRef(Schema):
    id: int
    name: str


class HitScores(Schema):
    dense: float | None
    bm25: float | None
    fused: float | None
    rerank: float | None


class MorePassageOut(Schema):
    passage_id: int
    ordinal: int
    text: str
    score: float
    passage_rank: int


class HitOut(Schema):
    rank: int
    passage_id: int
    document_id: str = Field(description="The document's external id.")
    title: str
    ordinal: int = Field(description="Position of the passage in its document.")
    text: str
    score: float = Field(description="The final score (ranking is by this, descending).")
    scores: HitScores
    judgment: int | None = Field(description="Gold grade when the query is one of the project's queries.")
    passage_rank: int | None = Field(None, description="With per_document: the passage's rank in the passage list.")
    more: list[MorePassageOut] | None = Field(
        None, description="With per_document: other passages of this document from the same ranked list, best first."
    )


class ConfigurationRef(Schema):
    id: int | None = Field(description="Saved configuration id; null for ad-hoc settings.")
    name: str | None
    served: bool = Field(description="True when it answered because the project serves it.")
    description: str


class SearchOut(Schema):
    query: str
    configuration: ConfigurationRef
    index: IndexRef
    mode: SearchMode
    reranker: str | None = Field(description="Name of the reranker used, if any.")
    timings_ms: dict[str, float] = Field(
        description=(
            "Milliseconds per stage: load (cold start), embed, dense, bm25, fuse, rerank, group (per_document: "
            "reading and grouping the deeper passage list), total."
        )
    )
    per_document: bool = Field(False, description="Results are documents (best passage each), not passages.")
    passages_ranked: int = Field(0, description="How many passages the engine ranked to find these results.")
    rerank_depth: int | None = Field(
        None, description="Candidates the reranker scored (fewer than rerank_top_n under adaptive depth); null: none."
    )
    backends: dict[str, str] = Field(
        default_factory=dict,
        description='Inference backend per stage that ran one, e.g. {"embed": "torch-fp32", "rerank": "torch-int8"}.',
    )
    results: list[HitOut]


# --- catalog --------------------------------------------------------------------------------------------------


class IndexOut(Schema):
    id: int
    name: str
    corpus: str
    corpus_version: int
    stale: bool = Field(description="The corpus changed since the index was built.")
    encoder: str
    index_type: str
    params: dict[str, Any]
    passages: int
    build_seconds: float
    created_at: dt.datetime


class IndexListOut(Schema):
    indexes: list[IndexOut]


class ModelOut(Schema):
    id: int
    name: str
    kind: str
    source: str
    dimension: int | None
    usable_for_search: bool
    created_at: dt.datetime


class ModelListOut(Schema):
    models: list[ModelOut]


# --- jobs -----------------------------------------------------------------------------------------------------


class JobsIn(Schema):
    status: JobStatus | None = None
    kind: str | None = Field(None, max_length=50, description="e.g. build_index, import_corpus.")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)

    _blank = model_validator(mode="before")(_blank_to_default)


class JobOut(Schema):
    id: int
    kind: str
    title: str
    status: JobStatus
    progress: float = Field(description="0 to 1.")
    message: str
    created_by: str | None = Field(description="Username of who started it.")
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @staticmethod
    def resolve_created_by(job: Job) -> str | None:
        return job.created_by.get_username() if job.created_by else None


class JobDetailOut(JobOut):
    result: dict[str, Any]
    log_tail: str
    metrics: dict[str, list[tuple[int, float]]] = Field(
        description="Each reported metric as (step, value) points, downsampled to at most 500 per metric."
    )
    retry_of: int | None = Field(description="Id of the job this one retried.")

    @staticmethod
    def resolve_retry_of(job: Job) -> int | None:
        return job.retry_of_id

    @staticmethod
    def resolve_metrics(job: Job) -> dict[str, list[tuple[int, float]]]:
        from workbench.selectors import job_metric_names, job_metric_series

        return {name: job_metric_series(job, name) for name in job_metric_names(job)}


class JobListOut(Schema):
    count: int = Field(description="Jobs matching the filters, over all pages.")
    limit: int
    offset: int
    jobs: list[JobOut]
