"""Answer-run test helpers: a finished run made by hand (no engine), and a real one over an indexed SciFact slice."""

from __future__ import annotations

import itertools

from django.utils import timezone

from evaluation.models import Answer, AnswerCitation, AnswerClaim, AnswerRun, RetrievedPassage
from tests.evaluation.factories import make_doc, make_encoder, make_index, make_query
from tests.factories import make_corpus
from workbench.models import Project, SearchConfiguration

_seq = itertools.count(1)


def make_finished_answer_run(project: Project, *, answers: int = 2, overlap: int = 1) -> AnswerRun:
    """A complete run with ``answers`` answered queries, each one claim citing passage [1] of two retrieved."""
    n = next(_seq)
    corpus = make_corpus(project, name=f"answers-corpus-{n}")
    index = make_index(project, corpus, make_encoder(project))
    configuration = SearchConfiguration.objects.create(
        project=project, name=f"answers-config-{n}", index=index, mode="bm25"
    )
    run = AnswerRun.objects.create(
        project=project, name=f"answer run {n}", query_set="all queries", configuration=configuration,
        review_overlap=overlap, finished_at=timezone.now(),
        summary={"counts": {"queries": answers, "answered": answers, "abstained": 0, "failed": 0}, "slices": {}},
    )  # fmt: skip
    for i in range(answers):
        doc, (p1,) = make_doc(corpus, f"ad{n}-{i}a")
        doc2, (p2,) = make_doc(corpus, f"ad{n}-{i}b")
        query = make_query(project, f"aq{n}-{i}", f"question <b>{i}</b>?")
        answer = Answer.objects.create(
            run=run, query=query, position=i + 1, status=Answer.Status.ANSWERED, text="Claim one <script>. [1]",
            latency_ms={"retrieve": 1.0, "rerank": 0.0, "generate": 2.0, "total": 3.0},
        )  # fmt: skip
        r1 = RetrievedPassage.objects.create(
            answer=answer, number=1, passage=p1, passage_pk=p1.pk, document=doc, doc_external_id=doc.external_id,
            text="Evidence sentence <i>one</i>. Other words.", score=0.9,
        )  # fmt: skip
        RetrievedPassage.objects.create(
            answer=answer, number=2, passage=p2, passage_pk=p2.pk, document=doc2, doc_external_id=doc2.external_id,
            text="Something else entirely.", score=0.5,
        )  # fmt: skip
        claim = AnswerClaim.objects.create(answer=answer, ordinal=0, text="Claim one <script>.", start=0, end=18)
        AnswerCitation.objects.create(claim=claim, retrieved=r1, start=0, end=29)
    return run


def review_payload(
    answer: Answer, *, label: str = "supported", verdict: str = "correct", by_first: bool = True
) -> dict:
    """Keyword arguments of ``answer_review_record`` labelling every claim and citation alike."""
    claims, citations = {}, {}
    for claim in answer.claims.prefetch_related("citations"):
        cits = list(claim.citations.all())
        claims[claim.pk] = (label, cits[0].retrieved_id if cits and by_first else None)
        for c in cits:
            citations[c.pk] = verdict
    return {"claims": claims, "citations": citations, "hallucination": label in ("unsupported", "contradicted"),
            "should_have_abstained": False, "usefulness": 4, "seconds": 12.5}  # fmt: skip
