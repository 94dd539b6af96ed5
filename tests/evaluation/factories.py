"""Evaluation test helpers: rows made by hand and a fake engine with scripted hits (no model, no index files)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from django.db.models import Max

from evaluation import services
from evaluation.models import EvalRun
from tests.factories import make_corpus
from workbench.models import (
    Corpus,
    Document,
    IndexVersion,
    Judgment,
    ModelVersion,
    Passage,
    Project,
    Query,
    QueryTag,
    SearchConfiguration,
)
from workbench.retrieval.search import Hit, SearchResult, SearchSpec
from workbench.services import batch_search
from workbench.services.configurations import search_configuration_draft

_seq = itertools.count(1)


class FakeEngine:
    """Returns scripted passage hits per query text, best first, with per-stage timings that vary per call."""

    def __init__(self, hits_by_text: dict[str, list[tuple[int, float]]]) -> None:
        self.hits_by_text = hits_by_text
        self.calls = 0

    def search(self, query: str, *, mode: str, k: int, **_: object) -> SearchResult:
        self.calls += 1
        scripted = sorted(self.hits_by_text.get(query, []), key=lambda h: (-h[1], h[0]))[:k]
        t = float(self.calls)
        timings = {"embed": t, "dense": 2 * t, "bm25": 0.0, "fuse": 0.0, "rerank": 0.0, "total": 3 * t}
        return SearchResult(query, mode, [Hit(pid, score) for pid, score in scripted], timings)

    def search_spec(self, query: str, spec: SearchSpec, *, k: int, **_: object) -> SearchResult:
        return self.search(query, mode=spec.mode, k=k)


@contextmanager
def fake_engines(engines: dict[int, FakeEngine]) -> Iterator[None]:
    """Index version pk -> engine, in place of the real (cached, file-backed) engines."""
    with mock.patch.object(batch_search, "engine_for", lambda index: engines[index.pk]):
        yield


def spec(
    *,
    index: IndexVersion,
    mode: str = "dense",
    alpha: float = 0.5,
    reranker: ModelVersion | None = None,
    rerank_top_n: int = 50,
) -> SearchConfiguration:
    """A checked, unsaved search configuration (what the evaluation form and command build)."""
    return search_configuration_draft(
        project=index.project, index=index, mode=mode, alpha=alpha, reranker=reranker, rerank_top_n=rerank_top_n
    )  # fmt: skip


def make_encoder(project: Project, *, builtin: bool = False) -> ModelVersion:
    return ModelVersion.objects.create(
        project=project,
        name=f"enc{next(_seq)}",
        kind=ModelVersion.Kind.BI_ENCODER,
        source=ModelVersion.Source.BUILTIN if builtin else ModelVersion.Source.REGISTERED,
        path="/nonexistent",
    )


def make_index(
    project: Project, corpus: Corpus, encoder: ModelVersion, *, corpus_version: int | None = None
) -> IndexVersion:
    number = (IndexVersion.objects.filter(corpus=corpus).aggregate(n=Max("number"))["n"] or 0) + 1
    return IndexVersion.objects.create(
        project=project, corpus=corpus, encoder=encoder, number=number, index_type="flat", path="/nonexistent",
        corpus_version=corpus.version if corpus_version is None else corpus_version, passage_count=0, build_seconds=0.0,
    )  # fmt: skip


def make_doc(
    corpus: Corpus, external_id: str, *, passages: int = 1, **fields: object
) -> tuple[Document, list[Passage]]:
    doc = Document.objects.create(corpus=corpus, external_id=external_id, text="text", content_hash="x", **fields)
    made = [
        Passage.objects.create(
            document=doc,
            corpus=corpus,
            ordinal=i,
            text=f"{external_id} passage {i}",
            char_start=0,
            char_end=4,
            token_count=1,
            content_hash="x",
        )
        for i in range(passages)
    ]
    return doc, made


def make_query(project: Project, external_id: str, text: str, *tags: QueryTag) -> Query:
    query = Query.objects.create(project=project, external_id=external_id, text=text)
    query.tags.add(*tags)
    return query


def judge(query: Query, doc: Document, grade: int, *, source: str = "imported", **extra: object) -> Judgment:
    return Judgment.objects.create(
        project=query.project, query=query, document=doc, grade=grade, source=source, split=f"s{next(_seq)}", **extra
    )


def make_finished_eval(project: Project, user: object = None) -> EvalRun:
    """A small complete evaluation (two configurations, two judged queries) made through the service."""
    corpus = make_corpus(project, name=f"eval-corpus-{next(_seq)}")
    d1, (p1,) = make_doc(corpus, "eval-d1")
    d2, (p2,) = make_doc(corpus, "eval-d2")
    tag = QueryTag.objects.create(project=project, name=f"eval-tag-{next(_seq)}")
    q1 = make_query(project, f"eval-q{next(_seq)}", "first <query>", tag)
    q2 = make_query(project, f"eval-q{next(_seq)}", "second query", tag)
    judge(q1, d1, 2)
    judge(q2, d2, 1)
    encoder = make_encoder(project)
    a, b = make_index(project, corpus, encoder), make_index(project, corpus, encoder)
    hits = {q1.text: [(p1.pk, 0.9), (p2.pk, 0.5)], q2.text: [(p1.pk, 0.8), (p2.pk, 0.7)]}
    with fake_engines({a.pk: FakeEngine(hits), b.pk: FakeEngine(hits)}):
        return services.eval_run_start(
            project=project, user=user, tag=tag, resamples=200, background=False,
            configs=[spec(index=a, mode="dense"), spec(index=b, mode="bm25")],
        )  # fmt: skip
