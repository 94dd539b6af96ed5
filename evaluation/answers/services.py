"""Answer-run writes: start a run, execute it (retrieve, generate, store, score against gold), record reviews,
flag passage pairs for labeling, and run an automatic support judge.

A query whose backend fails (down, timeout, not a model, a citation of a passage that was not retrieved, a prompt over
the context limit) is stored as a failed answer with the error's kind; the run goes on. Each answer is written in its
own transaction so a crash mid-run leaves complete answers only, and a retried job starts the answers afresh.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from evaluation.answering import BACKENDS, ExtractiveGenerator, GenerationError, RetrievedPassage
from evaluation.answering.base import CITATION_POLICIES
from evaluation.answering.base import Answer as GeneratedAnswer
from evaluation.answering.gold import cited_rationales, load_claims, sentence_spans
from evaluation.answering.pipeline import answer_query
from evaluation.metrics.citations import (
    SUPPORT_LABELS,
    AnswerJudgement,
    ClaimSupport,
    per_query_scores,
    summarize,
)
from evaluation.models import (
    Answer,
    AnswerCitation,
    AnswerClaim,
    AnswerFlag,
    AnswerReview,
    AnswerRun,
    AutoSupport,
    CitationReview,
    ClaimReview,
)
from evaluation.models import (
    RetrievedPassage as StoredPassage,
)
from evaluation.slicing import tag_slices
from workbench.errors import WorkbenchError
from workbench.jobs import job_create
from workbench.models import Job, Passage, Project, Query, QueryTag, SearchConfiguration
from workbench.retrieval.errors import RetrievalError

JOB_KIND = "answer_run"
JUDGE_JOB_KIND = "answer_judge"
MAX_PASSAGES = 20
GOLD_SOURCES = ("", "scifact")
LATENCY_STAGES = ("retrieve", "rerank", "generate", "total")

Progress = Callable[[float, str], None]
Log = Callable[[str], None]


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --- starting a run ---------------------------------------------------------------------------------------------


def _clean_backend_settings(backend: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Only the keys a backend knows, checked; never a secret (the key's environment variable NAME only)."""
    if backend == "extractive":
        out = {
            "max_sentences": int(given.get("max_sentences") or 2),
            "passages_considered": int(given.get("passages_considered") or 3),
        }
        if not 1 <= out["max_sentences"] <= 10 or not 1 <= out["passages_considered"] <= MAX_PASSAGES:
            raise WorkbenchError("Extractive: 1–10 sentences from 1–20 passages.")
        return out
    if backend == "hf-local":
        path = str(given.get("model_path") or "").strip()
        if not path:
            raise WorkbenchError("hf-local needs the directory of a causal language model.")
        if not Path(path).is_dir():
            raise WorkbenchError(f"{path} is not a directory on this server.")
        adapter = str(given.get("adapter_path") or "").strip()
        if adapter and not (Path(adapter) / "adapter_config.json").is_file():
            raise WorkbenchError(f"{adapter} is not a LoRA adapter directory (no adapter_config.json).")
        tokens = int(given.get("max_new_tokens") or 160)
        if not 1 <= tokens <= 2048:
            raise WorkbenchError("max new tokens must be between 1 and 2048.")
        return {"model_path": path, "adapter_path": adapter, "max_new_tokens": tokens}
    if backend == "openai-compatible":
        base = str(given.get("base_url") or "").strip()
        if not base.startswith(("http://", "https://")):
            raise WorkbenchError("The base URL must start with http:// or https://, e.g. http://127.0.0.1:8000/v1.")
        model = str(given.get("model") or "").strip()
        if not model:
            raise WorkbenchError("Name the model the server should use.")
        env = str(given.get("api_key_env") or "").strip()
        if env and not env.replace("_", "").isalnum():
            raise WorkbenchError("The API key setting is the NAME of an environment variable, e.g. OPENAI_API_KEY.")
        timeout = float(given.get("timeout_s") or 30)
        if not 1 <= timeout <= 600:
            raise WorkbenchError("The timeout must be between 1 and 600 seconds.")
        return {"base_url": base, "model": model, "api_key_env": env, "timeout_s": timeout,
                "max_tokens": int(given.get("max_tokens") or 300)}  # fmt: skip
    raise WorkbenchError(f"Unknown generator backend {backend!r}: use one of {', '.join(BACKENDS)}.")


def answer_run_start(
    *,
    project: Project,
    user: Any,
    configuration: SearchConfiguration,
    tag: QueryTag | None,
    backend: str = "extractive",
    backend_settings: Mapping[str, Any] | None = None,
    citation_policy: str = "each-claim",
    abstain_threshold: float = 0.6,
    passages_k: int = 5,
    review_overlap: int = 1,
    gold: str = "",
    name: str = "",
    background: bool = True,
) -> AnswerRun:
    """Validate and create an answer run, then queue its job (or run it here with ``background=False``)."""
    if configuration.project_id != project.pk:
        raise WorkbenchError("That search configuration belongs to another project.")
    if tag is not None and tag.project_id != project.pk:
        raise WorkbenchError("That query tag belongs to another project.")
    if citation_policy not in CITATION_POLICIES:
        raise WorkbenchError(f"Unknown citation policy {citation_policy!r}.")
    if not 1 <= passages_k <= MAX_PASSAGES:
        raise WorkbenchError(f"Passages per answer must be between 1 and {MAX_PASSAGES}.")
    if not 1 <= review_overlap <= 5:
        raise WorkbenchError("Reviews per answer must be between 1 and 5.")
    if not -1.0 <= abstain_threshold <= 1.0:
        raise WorkbenchError("The abstention threshold is a similarity between -1 and 1.")
    if gold not in GOLD_SOURCES:
        raise WorkbenchError(f"Unknown gold evidence {gold!r}.")
    if gold == "scifact" and not (Path(settings.SCIFACT_DIR) / "original" / "claims_dev.jsonl").is_file():
        raise WorkbenchError(f"SciFact's original release is not at {Path(settings.SCIFACT_DIR) / 'original'}.")
    cleaned = _clean_backend_settings(backend, backend_settings or {})
    queries = _queries(project, tag)
    if not queries.exists():
        raise WorkbenchError("The query set has no queries.")
    label = f"tag {tag.name}" if tag else "all queries"
    name = (name.strip() or f"{backend} · {configuration.name} · {label}")[:200]
    with transaction.atomic():
        run = AnswerRun.objects.create(
            project=project, name=name, query_tag=tag, query_set=label, configuration=configuration,
            backend=backend, backend_settings=cleaned, citation_policy=citation_policy,
            abstain_threshold=float(abstain_threshold), passages_k=passages_k, review_overlap=review_overlap,
            gold=gold, created_by=user,
        )  # fmt: skip
        if background:
            run.job = job_create(
                project=project,
                kind=JOB_KIND,
                title=f"Answer {name}"[:300],
                params={"answer_run_id": run.pk},
                user=user,
            )
            run.save(update_fields=["job"])
    if not background:
        answer_run_execute(run=run)
        run.refresh_from_db()
    return run


def _queries(project: Project, tag: QueryTag | None):  # type: ignore[no-untyped-def]
    qs = Query.objects.filter(project=project)
    return (qs.filter(tags=tag) if tag is not None else qs).order_by("id")


# --- executing ---------------------------------------------------------------------------------------------------


def generators_build(run: AnswerRun, engine: Any) -> tuple[Any, ExtractiveGenerator]:
    """The run's backend, and the extractive scorer that gates every backend: the index's own encoder, over the
    sentence vectors the index stored at build time (sentences it lacks are embedded on the spot)."""
    from workbench.retrieval.encoders import encode_passages, encode_query

    conf = run.backend_settings or {}
    encoder = engine.encoder
    gate = ExtractiveGenerator(
        embed_query=lambda q: encode_query(encoder, q),
        embed_texts=lambda texts: encode_passages(encoder, list(texts), batch_size=64),
        stored_vectors=lambda p: engine.stored_sentence_vectors(p.passage_id, p.text),
        max_sentences=int(conf.get("max_sentences", 2)),
        passages_considered=int(conf.get("passages_considered", 3)),
    )
    if run.backend == "extractive":
        return gate, gate
    if run.backend == "hf-local":
        from evaluation.answering.hf_local import HFLocalGenerator

        return (
            HFLocalGenerator(
                conf["model_path"], adapter_path=conf.get("adapter_path") or None,
                max_new_tokens=int(conf.get("max_new_tokens", 160)),
            ),
            gate,
        )  # fmt: skip
    if run.backend == "openai-compatible":
        from evaluation.answering.openai_compatible import OpenAICompatibleGenerator

        return (
            OpenAICompatibleGenerator(
                base_url=conf["base_url"], model=conf["model"], api_key_env=conf.get("api_key_env", ""),
                timeout_s=float(conf.get("timeout_s", 30)), max_tokens=int(conf.get("max_tokens", 300)),
            ),
            gate,
        )  # fmt: skip
    raise WorkbenchError(f"Unknown generator backend {run.backend!r}.")


def _passages_for(hits: Sequence[Any]) -> list[RetrievedPassage]:
    ids = [h.passage_id for h in hits]
    rows = {
        p.pk: p
        for p in Passage.objects.filter(pk__in=ids)
        .select_related("document")
        .only("id", "text", "char_start", "document__id", "document__external_id", "document__title", "document__text")
    }
    out = []
    for h in hits:
        p = rows.get(h.passage_id)
        if p is None:  # deleted since the index was built
            continue
        # A chunk that does not start at a sentence end of its document begins with a fragment.
        before = p.document.text[max(0, p.char_start - 2) : p.char_start]
        mid = p.char_start > 0 and not (before[-1:].isspace() and before[:1] in ".!?")
        out.append(
            RetrievedPassage(len(out) + 1, p.pk, p.document.external_id, p.document.title, p.text, float(h.score), mid)
        )
    return out


def _store_answer(
    run: AnswerRun,
    query: Query,
    position: int,
    passages: list[RetrievedPassage],
    generated: GeneratedAnswer | None,
    error: GenerationError | None,
    latency: dict[str, float],
) -> Answer:
    doc_rows = dict(Passage.objects.filter(pk__in=[p.passage_id for p in passages]).values_list("pk", "document_id"))
    starts = dict(Passage.objects.filter(pk__in=[p.passage_id for p in passages]).values_list("pk", "char_start"))
    with transaction.atomic():
        if error is not None:
            status = Answer.Status.FAILED
        else:
            status = Answer.Status.ABSTAINED if generated.abstained else Answer.Status.ANSWERED  # type: ignore[union-attr]
        answer = Answer.objects.create(
            run=run, query=query, position=position, status=status,
            text="" if generated is None else generated.text, raw="" if generated is None else generated.raw[:20000],
            confidence=None if generated is None else generated.confidence,
            error_kind="" if error is None else error.kind, error="" if error is None else str(error)[:2000],
            latency_ms=latency,
        )  # fmt: skip
        stored = {
            p.number: StoredPassage.objects.create(
                answer=answer,
                number=p.number,
                passage_id=p.passage_id,
                passage_pk=p.passage_id,
                document_id=doc_rows.get(p.passage_id),
                doc_external_id=p.doc_id,
                doc_char_start=starts.get(p.passage_id, 0),
                title=p.title,
                text=p.text,
                score=p.score,
            )
            for p in passages
        }
        if generated is not None and not generated.abstained:
            for i, claim in enumerate(generated.claims):
                row = AnswerClaim.objects.create(
                    answer=answer, ordinal=i, text=claim.text, start=claim.start, end=claim.end
                )
                AnswerCitation.objects.bulk_create(
                    AnswerCitation(claim=row, retrieved=stored[c.number], start=c.start, end=c.end)
                    for c in claim.citations
                )
    return answer


def answer_run_execute(
    *, run: AnswerRun, job: Job | None = None, progress: Progress | None = None, log: Log | None = None
) -> dict:
    """Answer every query of the run's set and store answers, citations, retrieved passages and latency."""
    from workbench.services.engines import engine_load, reranker_load

    progress = progress or (lambda f, m: None)
    log = log or (lambda line: None)
    run = AnswerRun.objects.select_related(
        "project", "configuration__index__encoder", "configuration__reranker", "query_tag"
    ).get(pk=run.pk)
    if run.is_complete:
        raise WorkbenchError(f"Answer run {run.name} is already complete; start a new one to run it again.")
    if job is not None and run.job_id != job.pk:
        AnswerRun.objects.filter(pk=run.pk).update(job=job)
    if run.query_tag is None and run.query_set != "all queries":
        raise WorkbenchError(f"The query set ({run.query_set}) was deleted after the run was created.")
    run.answers.all().delete()  # a retried job starts afresh (nothing can be reviewed before the run completes)
    configuration = run.configuration
    engine, _ = engine_load(configuration.index)
    reranker = reranker_load(configuration.reranker)[0] if configuration.reranker_id else None
    try:
        generator, gate = generators_build(run, engine)
    except GenerationError as exc:
        raise WorkbenchError(f"The {run.backend} backend cannot start: {exc}") from None
    queries = list(_queries(run.project, run.query_tag))
    log(f"{len(queries):,} queries, backend {run.backend}, {run.passages_k} passages each, "
        f"threshold {run.abstain_threshold:g}")  # fmt: skip
    store = getattr(engine, "sentences", None)
    log(
        f"sentence scoring: {store.sentence_count:,} sentence vectors stored by the index"
        if store is not None
        else "sentence scoring: this index stores no sentence vectors, so each answer embeds its passages' "
        "sentences (slower; an index built now stores them)"
    )
    failures: dict[str, int] = {}
    for position, query in enumerate(queries, start=1):
        passages: list[RetrievedPassage] = []
        generated, error = None, None
        latency: dict[str, float] = {}
        try:
            result = engine.search_spec(query.text, configuration.spec, k=run.passages_k, rerank=reranker)
            t = result.timings_ms
            latency["rerank"] = float(t.get("rerank", 0.0))
            latency["retrieve"] = float(t.get("total", 0.0)) - latency["rerank"] - float(t.get("load", 0.0))
            passages = _passages_for(result.hits)
            gate.remember_query(query.text, result.query_vector)  # the search's embedding serves the scorer too
            start = time.perf_counter()
            try:
                generated = answer_query(
                    generator, query.text, passages, policy=run.citation_policy, threshold=run.abstain_threshold,
                    gate=gate,
                )  # fmt: skip
            finally:
                latency["generate"] = (time.perf_counter() - start) * 1000.0
            latency["total"] = latency["retrieve"] + latency["rerank"] + latency["generate"]
        except RetrievalError as exc:
            error = GenerationError("retrieval", f"the search failed: {exc}")
        except GenerationError as exc:
            error = exc
        if error is not None:
            failures[error.kind] = failures.get(error.kind, 0) + 1
            if failures[error.kind] <= 3:
                log(f"query {query.external_id}: {error.kind}: {error}")
        _store_answer(run, query, position, passages, generated, error, latency)
        progress(0.95 * position / max(1, len(queries)), f"{position:,} / {len(queries):,} queries answered")
    if gate.sentences_stored or gate.sentences_embedded:
        log(f"sentences scored: {gate.sentences_stored:,} from the index, {gate.sentences_embedded:,} embedded here")
    progress(0.95, "Computing figures")
    summary = answer_run_summary(run)
    summary["failures"] = failures
    # Where the sentence vectors the extractive scorer used came from: what the run page explains latency with.
    summary["sentences"] = {"from_index": gate.sentences_stored, "embedded": gate.sentences_embedded}
    notes = list(run.notes)
    if failures:
        notes.append(
            f"{sum(failures.values())} queries have no answer ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(failures.items()))
            + "); they are counted as failed and never scored."
        )
    AnswerRun.objects.filter(pk=run.pk).update(summary=summary, notes=notes, finished_at=timezone.now())
    counts = summary["counts"]
    return {
        "answer_run_id": run.pk,
        "message": f"{counts['answered']:,} answered, {counts['abstained']:,} abstained, {counts['failed']:,} failed.",
    }


def _latency(answers: Sequence[Answer]) -> dict[str, dict[str, float]]:
    out = {}
    for stage in LATENCY_STAGES:
        values = np.array([a.latency_ms[stage] for a in answers if stage in a.latency_ms])
        if values.size:
            p50, p95 = np.percentile(values, [50, 95])
            out[stage] = {"n": int(values.size), "p50": float(p50), "p95": float(p95), "mean": float(values.mean())}
    return out


def answer_run_summary(run: AnswerRun) -> dict[str, Any]:
    """Counts, latency, slices and (with gold evidence) the gold figures; marks citations' gold support."""
    answers = list(run.answers.select_related("query"))
    counts = {
        "queries": len(answers),
        "answered": sum(a.status == Answer.Status.ANSWERED for a in answers),
        "abstained": sum(a.status == Answer.Status.ABSTAINED for a in answers),
        "failed": sum(a.status == Answer.Status.FAILED for a in answers),
    }
    qids = {a.query.external_id for a in answers}
    slices = tag_slices(run.project, qids, skip=run.query_tag)
    summary: dict[str, Any] = {"counts": counts, "latency": _latency(answers), "slices": slices}
    if run.gold == "scifact":
        summary["gold"] = _gold_scifact(run, answers, slices)
        summary["slices"] = {**slices, **summary["gold"].pop("slice_members")}
    return summary


def _gold_scifact(run: AnswerRun, answers: list[Answer], slices: dict[str, list[str]]) -> dict[str, Any]:
    original = Path(settings.SCIFACT_DIR) / "original"
    claims = load_claims(original)
    scored = [a for a in answers if a.status != Answer.Status.FAILED and a.query.external_id in claims]
    doc_ids = {d for a in scored for d in claims[a.query.external_id].rationales}
    spans = sentence_spans(original, doc_ids)
    judgements: list[AnswerJudgement] = []
    citation_updates: list[AnswerCitation] = []
    gold_rows: list[Answer] = []
    rationale_total = rationale_cited = 0
    for a in scored:
        gold = claims[a.query.external_id]
        retrieved = list(a.retrieved.all())
        # Evidence retrieved: some retrieved passage contains a gold rationale sentence.
        evidence_retrieved = any(
            cited_rationales(gold, r.doc_external_id, (r.doc_char_start, r.doc_char_start + len(r.text)), spans)
            for r in retrieved
        )
        covered: set[tuple[str, int]] = set()
        claim_support = []
        for claim in a.claims.prefetch_related("citations__retrieved"):
            alone = {}
            for c in claim.citations.all():
                r = c.retrieved
                hit = cited_rationales(
                    gold, r.doc_external_id, (r.doc_char_start + c.start, r.doc_char_start + c.end), spans
                )
                covered |= {(r.doc_external_id, i) for i in hit}
                alone[r.number] = bool(hit)
                c.gold_support = bool(hit)
                citation_updates.append(c)
            claim_support.append(ClaimSupport.from_alone(sorted(alone), alone))
        rationale_total += gold.n_sentences
        rationale_cited += len(covered)
        a.gold = {"nei": gold.nei, "evidence_retrieved": evidence_retrieved, "rationales": gold.n_sentences,
                  "rationales_cited": len(covered)}  # fmt: skip
        gold_rows.append(a)
        judgements.append(
            AnswerJudgement(
                qid=a.query.external_id, abstained=a.status == Answer.Status.ABSTAINED,
                claims=tuple(claim_support), should_abstain=not evidence_retrieved,
            )
        )  # fmt: skip
    AnswerCitation.objects.bulk_update(citation_updates, ["gold_support"], batch_size=500)
    Answer.objects.bulk_update(gold_rows, ["gold"], batch_size=500)
    gold_slices = {
        "nei": sorted(a.query.external_id for a in gold_rows if a.gold["nei"]),
        "evidence": sorted(a.query.external_id for a in gold_rows if not a.gold["nei"]),
        "evidence retrieved": sorted(a.query.external_id for a in gold_rows if a.gold["evidence_retrieved"]),
    }
    gold_slices = {k: v for k, v in gold_slices.items() if v}
    failed = [a.query.external_id for a in answers if a.status == Answer.Status.FAILED]
    report = summarize(judgements, slices={**slices, **gold_slices}, failed=failed, seed=run.seed)
    nei = [j for j in judgements if claims[j.qid].nei]
    report["nei_abstention"] = {"n": len(nei), "abstained": sum(j.abstained for j in nei)}
    report["rationale_recall"] = {"cited": rationale_cited, "total": rationale_total,
                                  "value": rationale_cited / rationale_total if rationale_total else None}  # fmt: skip
    report["per_query"] = per_query_scores(judgements)
    report["missing"] = len(answers) - len(scored) - len(failed)  # queries with no SciFact claim
    report["slice_members"] = gold_slices
    return report


# --- reviews -----------------------------------------------------------------------------------------------------


def answer_review_record(
    *,
    answer: Answer,
    reviewer: Any,
    claims: Mapping[int, tuple[str, int | None]],
    citations: Mapping[int, str],
    hallucination: bool,
    should_have_abstained: bool,
    usefulness: int,
    seconds: float | None = None,
    adjudication: bool = False,
) -> AnswerReview:
    """Record (or replace) one reviewer's review of an answer.

    ``claims``: claim id -> (support label, id of the cited retrieved passage that supports it, or None);
    ``citations``: citation id -> correct | wrong | irrelevant. Every claim and citation of the answer needs a label.
    One review per (answer, reviewer, kind), one adjudication per answer: the database enforces both, so two
    reviewers saving at once never overwrite each other and a double submit updates instead of duplicating.
    """
    if answer.status == Answer.Status.FAILED:
        raise WorkbenchError("This query has no answer (the backend failed); there is nothing to review.")
    if isinstance(usefulness, bool) or not isinstance(usefulness, int) or not 1 <= usefulness <= 5:
        raise WorkbenchError("Usefulness is a whole number from 1 to 5.")
    claim_rows = {c.pk: c for c in answer.claims.prefetch_related("citations")}
    missing = sorted(set(claim_rows) - set(claims))
    if missing:
        raise WorkbenchError(f"Label every claim: {len(missing)} of {len(claim_rows)} have no support label.")
    if set(claims) - set(claim_rows):
        raise WorkbenchError("Some labelled claims are not claims of this answer.")
    citation_rows = {c.pk: c for claim in claim_rows.values() for c in claim.citations.all()}
    if set(citations) != set(citation_rows):
        raise WorkbenchError(f"Give a verdict for every citation ({len(citation_rows)} in this answer).")
    for claim_id, (label, supported_by) in claims.items():
        if label not in SUPPORT_LABELS:
            raise WorkbenchError(f"Unknown support label {label!r}.")
        cited = {c.retrieved_id for c in claim_rows[claim_id].citations.all()}
        if supported_by is not None and supported_by not in cited:
            raise WorkbenchError("'Supported by' must be one of the passages the claim cites.")
    for verdict in citations.values():
        if verdict not in CitationReview.Verdict.values:
            raise WorkbenchError(f"Unknown citation verdict {verdict!r}.")
    kind = AnswerReview.Kind.ADJUDICATION if adjudication else AnswerReview.Kind.REVIEW
    if seconds is not None:
        seconds = max(0.0, min(float(seconds), 24 * 3600.0))
    try:
        with transaction.atomic():
            Answer.objects.select_for_update().filter(pk=answer.pk).first()  # serialise reviews of one answer
            if adjudication:
                other = AnswerReview.objects.filter(answer=answer, kind=kind).exclude(reviewer=reviewer).first()
                if other is not None:
                    raise WorkbenchError(f"{other.reviewer} has already adjudicated this answer.")
            review, _ = AnswerReview.objects.update_or_create(
                answer=answer, reviewer=reviewer, kind=kind,
                defaults={"hallucination": bool(hallucination), "should_have_abstained": bool(should_have_abstained),
                          "usefulness": usefulness, "seconds": seconds},
            )  # fmt: skip
            review.claim_reviews.all().delete()
            review.citation_reviews.all().delete()
            ClaimReview.objects.bulk_create(
                ClaimReview(review=review, claim_id=cid, label=label, supported_by_id=by)
                for cid, (label, by) in claims.items()
            )
            CitationReview.objects.bulk_create(
                CitationReview(review=review, citation_id=cid, verdict=v) for cid, v in citations.items()
            )
    except IntegrityError:
        raise WorkbenchError(
            "Another review of this answer was saved at the same moment; reload and try again."
        ) from None
    return review


def answer_flag_create(
    *, answer: Answer, retrieved: StoredPassage, target: str, user: Any, claim: AnswerClaim | None = None,
    reason: str = "",
) -> tuple[AnswerFlag, bool]:  # fmt: skip
    """Send a (query, passage) pair to labeling (a judging campaign or the hard-negative audit); idempotent."""
    if target not in AnswerFlag.Target.values:
        raise WorkbenchError(f"Unknown target {target!r}: judging or audit.")
    if retrieved.answer_id != answer.pk:
        raise WorkbenchError("That passage was not retrieved for this answer.")
    if claim is not None and claim.answer_id != answer.pk:
        raise WorkbenchError("That claim is not part of this answer.")
    if retrieved.document_id is None:
        raise WorkbenchError("The passage's document no longer exists; it cannot be judged.")
    try:
        with transaction.atomic():
            return AnswerFlag.objects.get_or_create(
                project=answer.run.project, query=answer.query, document_id=retrieved.document_id, target=target,
                defaults={"run": answer.run, "answer": answer, "claim": claim, "passage_id": retrieved.passage_id,
                          "reason": reason[:200], "created_by": user},
            )  # fmt: skip
    except IntegrityError:  # the same pair flagged by someone else at the same moment
        return AnswerFlag.objects.get(
            project=answer.run.project, query=answer.query, document_id=retrieved.document_id, target=target
        ), False


# --- automatic support judge -------------------------------------------------------------------------------------

JUDGES = ("cross-encoder", "nli", "llm")


def auto_judge_start(*, run: AnswerRun, user: Any, judge: str, path: str = "", base_url: str = "", model: str = "",
                     api_key_env: str = "") -> Job:  # fmt: skip
    """Queue an automatic support judge over the run's claims."""
    if not run.is_complete:
        raise WorkbenchError("The run has no answers yet.")
    if judge not in JUDGES:
        raise WorkbenchError(f"Unknown judge {judge!r}: {', '.join(JUDGES)}.")
    if judge in ("cross-encoder", "nli") and not Path(path).is_dir():
        raise WorkbenchError(f"{path or 'The model path'} is not a directory on this server.")
    if judge == "llm":
        _clean_backend_settings("openai-compatible", {"base_url": base_url, "model": model, "api_key_env": api_key_env})
    params = {"answer_run_id": run.pk, "judge": judge, "path": path, "base_url": base_url, "model": model,
              "api_key_env": api_key_env}  # fmt: skip
    with transaction.atomic():
        return job_create(
            project=run.project, kind=JUDGE_JOB_KIND, title=f"Judge support: {run.name}"[:300], params=params, user=user
        )


def judge_name(params: Mapping[str, Any]) -> str:
    what = (
        params.get("model")
        if params.get("judge") == "llm"
        else os.path.basename(str(params.get("path", "")).rstrip("/"))
    )
    return f"{params.get('judge')}:{what}"[:200]


def auto_judge_execute(*, run: AnswerRun, params: Mapping[str, Any], progress: Progress | None = None) -> dict:
    """Label every claim of the run with the judge; replaces this judge's previous labels for the run."""
    from evaluation.answering.judges import judge_build

    progress = progress or (lambda f, m: None)
    try:
        judge = judge_build(dict(params))
    except GenerationError as exc:
        raise WorkbenchError(f"The judge cannot start: {exc}") from None
    name = judge_name(params)
    claims = list(AnswerClaim.objects.filter(answer__run=run).prefetch_related("citations__retrieved").order_by("id"))
    rows = []
    for i, claim in enumerate(claims, start=1):
        evidence = [c.retrieved.text[c.start : c.end] or c.retrieved.text for c in claim.citations.all()]
        try:
            label, score = judge.judge(claim.text, evidence)
        except GenerationError:
            label, score = None, None  # undetermined: counted, never averaged
        rows.append(AutoSupport(run=run, claim=claim, judge=name, label=label, score=score))
        progress(i / max(1, len(claims)), f"{i:,} / {len(claims):,} claims")
    with transaction.atomic():
        AutoSupport.objects.filter(run=run, judge=name).delete()
        AutoSupport.objects.bulk_create(rows, batch_size=500)
    undetermined = sum(r.label is None for r in rows)
    return {"answer_run_id": run.pk, "message": f"{len(rows):,} claims judged by {name}; {undetermined} undetermined."}
