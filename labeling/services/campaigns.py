"""Judging campaigns: create, guidelines, pool building (a job), assignment with overlap, judgment submission.

Double submits, two tabs and two annotators on one pair are made safe by the database: one assignment per
(item, annotator), one judgment per assignment (a one-to-one link set by a conditional UPDATE), rows locked with
``select_for_update`` where the database supports it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from labeling.models import Adjudication, Assignment, Campaign, GuidelineVersion, PoolItem
from workbench.errors import WorkbenchError
from workbench.jobs import job_create
from workbench.models import (
    Corpus,
    Document,
    Job,
    Judgment,
    Membership,
    ModelVersion,
    Project,
    Query,
    QueryTag,
    SearchConfiguration,
)
from workbench.roles import Capability, role_allows

POOL_JOB_KIND = "campaign_pool"
MAX_OVERLAP = 5
MAX_EXPLANATION = 5000
MAX_SECONDS = 3600.0


def guideline_hash(text: str) -> str:
    return hashlib.sha256(text.strip().replace("\r\n", "\n").encode()).hexdigest()


def judges_of(project: Project) -> list[Any]:
    """Members whose role may judge, in a stable order."""
    rows = Membership.objects.filter(project=project).select_related("user").order_by("user_id")
    return [m.user for m in rows if role_allows(m.role, Capability.JUDGE)]


def campaign_create(
    *,
    project: Project,
    corpus: Corpus,
    name: str,
    user: Any,
    configurations: Sequence[SearchConfiguration],
    tag: QueryTag | None = None,
    query_ids: Sequence[str] = (),
    depth: int = 10,
    overlap: int = 1,
    blind: bool = True,
    aggregation: str = Campaign.Aggregation.MAJORITY,
    disagreement_threshold: int = 1,
    order: str = Campaign.Order.RANDOM,
    guidelines: str = "",
    annotators: Sequence[Any] | None = None,
    seed: int = 0,
    log_queries: Sequence[str] = (),
    boundary_model: ModelVersion | None = None,
    boundary: float = 0.5,
) -> Campaign:
    """A draft campaign with guidelines v1; its pool is built by ``campaign_pool_start``.

    ``log_queries``: query texts from a search log, added to the project (id ``log-<hash of the text>``, tagged
    ``log``; a text already there is reused) and to the campaign's query set.
    """
    name = (name or "").strip()
    if not name:
        raise WorkbenchError("Give the campaign a name.")
    if corpus.project_id != project.pk:
        raise WorkbenchError("That corpus is not in this project.")
    if not 1 <= overlap <= MAX_OVERLAP:
        raise WorkbenchError(f"Annotators per pair must be 1 to {MAX_OVERLAP} (got {overlap}).")
    if not 1 <= depth <= 1000:
        raise WorkbenchError(f"Pool depth must be 1 to 1000 (got {depth}).")
    if aggregation not in Campaign.Aggregation.values:
        raise WorkbenchError(f"Unknown aggregation rule {aggregation!r}.")
    if order not in Campaign.Order.values:
        raise WorkbenchError(f"Unknown queue order {order!r}.")
    if not 0.0 <= float(boundary) <= 1.0:
        raise WorkbenchError(f"The decision boundary is a score from 0 to 1 (got {boundary}).")
    if boundary_model is not None:
        if boundary_model.project_id != project.pk or boundary_model.kind != ModelVersion.Kind.CROSS_ENCODER:
            raise WorkbenchError("The boundary order scores pairs with a cross-encoder of this project.")
        if not boundary_model.usable_for_search:
            raise WorkbenchError(f"{boundary_model.name} has an untrained head; its scores would mean nothing.")
    configurations = list(configurations)
    if not configurations:
        raise WorkbenchError("Pick at least one search configuration to pool from.")
    for c in configurations:
        if c.project_id != project.pk:
            raise WorkbenchError(f"Configuration {c.name} is not in this project.")
        if c.index.corpus_id != corpus.pk:
            raise WorkbenchError(f"Configuration {c.name} searches another corpus than {corpus.name}.")
    queries = Query.objects.filter(project=project)
    if tag is not None:
        if tag.project_id != project.pk:
            raise WorkbenchError("That tag is not in this project.")
        queries = queries.filter(tags=tag)
    wanted = [q.strip() for q in query_ids if q and q.strip()]
    if wanted:
        queries = queries.filter(external_id__in=wanted)
        missing = sorted(set(wanted) - set(queries.values_list("external_id", flat=True)))
        if missing:
            raise WorkbenchError(f"Unknown query ids: {', '.join(missing[:5])}.")
    elif tag is None and not any(t.strip() for t in log_queries):
        raise WorkbenchError("Pick a query tag, list query ids or paste logged queries.")
    query_list = list(queries.order_by("id")) if (wanted or tag is not None) else []
    people = list(annotators) if annotators else judges_of(project)
    allowed = {u.pk for u in judges_of(project)}
    strangers = [u.username for u in people if u.pk not in allowed]
    if strangers:
        raise WorkbenchError(f"Not judges of this project: {', '.join(strangers)}.")
    if len(people) < overlap:
        raise WorkbenchError(
            f"{overlap} annotators per pair needs at least {overlap} judges; the project has {len(people)}."
        )
    texts = list(dict.fromkeys(t.strip()[:2000] for t in log_queries if t and t.strip()))
    if not query_list and not texts:
        raise WorkbenchError("The query set is empty.")
    with transaction.atomic():
        if Campaign.objects.filter(project=project, name=name).exists():
            raise WorkbenchError(f"A campaign named {name!r} already exists.")
        if texts:
            log_tag, _ = QueryTag.objects.get_or_create(project=project, name="log")
            for text in texts:
                qid = "log-" + hashlib.sha256(text.encode()).hexdigest()[:12]
                query, _ = Query.objects.get_or_create(project=project, external_id=qid, defaults={"text": text})
                query.tags.add(log_tag)
                if query not in query_list:
                    query_list.append(query)
        campaign = Campaign.objects.create(
            project=project,
            corpus=corpus,
            name=name[:200],
            depth=depth,
            overlap=overlap,
            blind=blind,
            aggregation=aggregation,
            disagreement_threshold=max(0, int(disagreement_threshold)),
            order=order,
            boundary_model=boundary_model if order == Campaign.Order.BOUNDARY else None,
            boundary=float(boundary),
            seed=seed,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        campaign.queries.set(query_list)
        campaign.configurations.set(configurations)
        campaign.annotators.set(people)
        GuidelineVersion.objects.create(
            campaign=campaign,
            number=1,
            text=guidelines,
            content_hash=guideline_hash(guidelines),
            created_by=campaign.created_by,
        )
    return campaign


def guideline_current(campaign: Campaign) -> GuidelineVersion | None:
    return campaign.guidelines.order_by("-number").first()


def guideline_publish(*, campaign: Campaign, text: str, user: Any) -> GuidelineVersion:
    """A new guideline version; judgments from now on record it. Unchanged text makes no new version."""
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        current = guideline_current(campaign)
        if current is not None and current.content_hash == guideline_hash(text):
            return current
        return GuidelineVersion.objects.create(
            campaign=campaign,
            number=(current.number + 1) if current else 1,
            text=text,
            content_hash=guideline_hash(text),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )


def campaign_pool_start(*, campaign: Campaign, user: Any) -> Job:
    """Queue the pool build (search every query with every configuration, then assign)."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status != Campaign.Status.DRAFT:
            raise WorkbenchError(f"The pool of {locked.name} is already {locked.get_status_display().lower()}.")
        job = job_create(
            project=campaign.project,
            kind=POOL_JOB_KIND,
            title=f"Build pool of campaign {campaign.name}",
            params={"campaign_id": campaign.pk},
            user=user,
        )
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.POOLING, job=job)
    campaign.refresh_from_db()
    return job


def informativeness(ranks: dict[str, int], n_configs: int, depth: int) -> float:
    """How much the pooled systems disagree about a pair: spread of their reciprocal-rank gains (absent = 0).

    A pair every system ranks alike tells little; one a system puts first and another misses moves metrics most.
    """
    gains = [1.0 / ranks[c] if c in ranks else 0.0 for c in map(str, range(n_configs))]
    if n_configs < 2:
        return 1.0 / min(ranks.values()) if ranks else 0.0
    mean = sum(gains) / n_configs
    return math.sqrt(sum((g - mean) ** 2 for g in gains) / n_configs)


def pooled_scores(runs: Sequence[dict[str, dict[str, float]]], depth: int) -> dict[tuple[str, str], float]:
    """A 0–1 score per pooled (query, document) from the configurations' own scores: min-max within each
    configuration's top ``depth`` for a query (raw BM25, cosine and reranker scores share no scale), averaged over the
    configurations, a configuration that missed the pair counting 0."""
    sums: dict[tuple[str, str], float] = {}
    for run in runs:
        for qid, scores in run.items():
            top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:depth]
            if not top:
                continue
            high, low = top[0][1], top[-1][1]
            for doc, score in top:
                norm = (score - low) / (high - low) if high > low else 1.0
                sums[(qid, doc)] = sums.get((qid, doc), 0.0) + norm
    return {pair: total / max(1, len(runs)) for pair, total in sums.items()}


def sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, float(logit)))))


def order_key(campaign: Campaign, annotator_id: int, item_id: int, info: float, score: float | None = None) -> str:
    """Sort key of one annotator's queue: random per annotator (a hash), after a prefix for the informed orders:
    systems' disagreement descending, or distance of the model score from the boundary ascending."""
    digest = hashlib.sha256(f"{campaign.seed}:{campaign.pk}:{annotator_id}:{item_id}".encode()).hexdigest()[:24]
    if campaign.order == Campaign.Order.INFORMATIVE:
        return f"{999_999 - min(999_999, int(info * 1_000_000)):06d}:{digest}"
    if campaign.order == Campaign.Order.BOUNDARY:
        distance = 1.0 if score is None else abs(score - campaign.boundary)
        return f"{min(999_999, int(distance * 1_000_000)):06d}:{digest}"
    return digest


def _model_scores(
    model: ModelVersion,
    pairs: Sequence[tuple[str, str]],
    qtexts: dict[str, str],
    corpus_id: int,
    progress: Callable[[float, str], None],
) -> dict[tuple[str, str], float]:
    """The cross-encoder's sigmoid score of every pooled pair, one call per query."""
    from workbench.retrieval.texts import passage_text
    from workbench.services.engines import reranker_for

    reranker = reranker_for(model)
    by_query: dict[str, list[str]] = {}
    for qid, doc in pairs:
        by_query.setdefault(qid, []).append(doc)
    texts = {
        ext: passage_text(title, text)
        for ext, title, text in Document.objects.filter(
            corpus_id=corpus_id, external_id__in={d for _, d in pairs}
        ).values_list("external_id", "title", "text")
    }
    out: dict[tuple[str, str], float] = {}
    for n, (qid, docs) in enumerate(by_query.items()):
        docs = [d for d in docs if d in texts]
        for doc, logit in zip(docs, reranker.score(qtexts[qid], [texts[d] for d in docs]), strict=True):
            out[(qid, doc)] = sigmoid(float(logit))
        progress(0.8 + 0.05 * (n + 1) / max(1, len(by_query)), f"Scoring pairs with {model.name}")
    return out


def judged_under(project: Project, guideline_hash_: str) -> set[tuple[int, int]]:
    """(query pk, document pk) pairs judged in any campaign of the project under guidelines with this text."""
    rows = Assignment.objects.filter(
        campaign__project=project, judgment__isnull=False, guideline__content_hash=guideline_hash_
    ).values_list("item__query_id", "item__document_id")
    return set(rows)


def campaign_pool_build(*, campaign: Campaign, progress: Callable[[float, str], None] | None = None) -> dict:
    """Pool the top ``depth`` documents of every configuration per query, skip pairs already judged under the same
    guidelines, and give each pair to ``overlap`` annotators (balanced round robin), randomised per annotator."""
    from workbench.services.batch_search import PassageDocuments, configuration_run

    progress = progress or (lambda f, m: None)
    configurations = list(campaign.configurations.order_by("id"))
    queries = list(campaign.queries.order_by("id"))
    qtexts = [(q.external_id, q.text) for q in queries]
    documents = PassageDocuments(campaign.corpus_id)
    ranks: dict[tuple[str, str], dict[str, int]] = {}
    runs = []
    for n, configuration in enumerate(configurations):
        progress(n / max(1, len(configurations)) * 0.8, f"Searching with {configuration.name}")
        outcome = configuration_run(configuration, qtexts, depth=campaign.depth, documents=documents)
        runs.append(outcome.run)
        for qid, scores in outcome.run.items():
            ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (doc, _) in enumerate(ordered[: campaign.depth], start=1):
                ranks.setdefault((qid, doc), {})[str(n)] = rank
    scores: dict[tuple[str, str], float] = {}
    if campaign.order == Campaign.Order.BOUNDARY:
        model = campaign.boundary_model
        if model is not None:
            scores = _model_scores(model, sorted(ranks), dict(qtexts), campaign.corpus_id, progress)
        else:
            scores = pooled_scores(runs, campaign.depth)
    progress(0.85, "Assigning pairs")
    qpk = {q.external_id: q.pk for q in queries}
    dpk = dict(
        Document.objects.filter(corpus=campaign.corpus, external_id__in={d for _, d in ranks}).values_list(
            "external_id", "pk"
        )
    )
    guideline = guideline_current(campaign)
    skip = judged_under(campaign.project, guideline.content_hash) if guideline else set()
    people = list(campaign.annotators.order_by("id"))
    if len(people) < campaign.overlap:
        raise WorkbenchError(f"The campaign needs {campaign.overlap} annotators; it has {len(people)}.")
    skipped = 0
    with transaction.atomic():
        items = []
        for (qid, doc), r in sorted(ranks.items()):
            if doc not in dpk:
                continue
            if (qpk[qid], dpk[doc]) in skip:
                skipped += 1
                continue
            items.append(
                PoolItem(
                    campaign=campaign,
                    query_id=qpk[qid],
                    document_id=dpk[doc],
                    ranks=r,
                    informativeness=informativeness(r, len(configurations), campaign.depth),
                    model_score=scores.get((qid, doc)),
                )
            )
        PoolItem.objects.bulk_create(items, ignore_conflicts=True)
        created = list(PoolItem.objects.filter(campaign=campaign).order_by("id"))
        assignments = []
        for i, item in enumerate(created):
            for j in range(campaign.overlap):
                person = people[(i * campaign.overlap + j) % len(people)]
                assignments.append(
                    Assignment(
                        item=item,
                        campaign=campaign,
                        annotator=person,
                        order_key=order_key(campaign, person.pk, item.pk, item.informativeness, item.model_score),
                    )
                )
        Assignment.objects.bulk_create(assignments, ignore_conflicts=True)
        stats = {
            "pairs": len(created),
            "assignments": len(assignments),
            "skipped_judged_under_same_guidelines": skipped,
            "queries": len(queries),
            "configurations": [c.name for c in configurations],
        }
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.OPEN, pool_stats=stats)
    return {"message": f"Pool built: {len(created)} pairs, {len(assignments)} assignments.", **stats}


def campaign_pool_failed(*, campaign_id: int) -> None:
    Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.POOLING).update(status=Campaign.Status.DRAFT)


def campaign_close(*, campaign: Campaign, reopen: bool = False) -> Campaign:
    target, source = (
        (Campaign.Status.OPEN, Campaign.Status.CLOSED) if reopen else (Campaign.Status.CLOSED, Campaign.Status.OPEN)
    )
    if not Campaign.objects.filter(pk=campaign.pk, status=source).update(status=target):
        raise WorkbenchError(f"The campaign is {campaign.get_status_display().lower()}.")
    campaign.refresh_from_db()
    return campaign


# --- judging ----------------------------------------------------------------------------------------------------------


def _spans(evidence: Iterable[Any], length: int) -> list[list[int]]:
    spans = []
    for span in evidence or []:
        try:
            start, end = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            raise WorkbenchError(f"An evidence span must be two character offsets (got {span!r}).") from None
        if not 0 <= start < end <= length:
            raise WorkbenchError(f"Evidence span {start}–{end} lies outside the passage text (0–{length}).")
        spans.append([start, end])
    return sorted({tuple(s): s for s in spans}.values())


class _Raced(Exception):
    pass


def judgment_submit(
    *,
    assignment_id: int,
    user: Any,
    grade: int | None,
    evidence: Iterable[Any] = (),
    cant_judge: bool = False,
    explanation: str = "",
    seconds: float | None = None,
    campaign_id: int | None = None,
) -> Judgment:
    """Record (or revise) the user's judgment of their assignment: one Judgment per assignment, whatever arrives
    twice. Refused, writing nothing: another's or a closed campaign's assignment (or, given ``campaign_id``, one of
    another campaign), a grade off the scale, a span outside the text, can't-judge without a reason.

    The returned judgment's ``assignment`` is the assignment row as locked (item, document and campaign loaded), so
    callers need not read it again."""
    for attempt in range(2):
        try:
            return _submit(assignment_id, user, grade, evidence, cant_judge, explanation, seconds, campaign_id)
        except _Raced:
            if attempt:
                raise WorkbenchError("This pair was judged in another tab at the same moment; reload it.") from None
    raise AssertionError("unreachable")


def _current_guideline_id() -> Subquery:
    return Subquery(
        GuidelineVersion.objects.filter(campaign_id=OuterRef("campaign_id")).order_by("-number").values("pk")[:1]
    )


def _submit(
    assignment_id: int,
    user: Any,
    grade: int | None,
    evidence: Iterable[Any],
    cant_judge: bool,
    explanation: str,
    seconds: float | None,
    campaign_id: int | None,
) -> Judgment:
    with transaction.atomic():
        # One locked read brings everything the checks and writes need: the campaign and its project, the document
        # (span bounds), a rule's gold grade of the pair and the current guideline version. Not the judgment: when
        # this read waited for another request's lock, PostgreSQL re-reads the locked row but not an outer-joined
        # one, so a judgment linked meanwhile would come back as none; a revision reads it after the lock instead.
        a = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("campaign__project", "item__document", "item__adjudication")
            .annotate(current_guideline_id=_current_guideline_id())
            .filter(pk=assignment_id)
            .first()
        )
        if a is None or (campaign_id is not None and a.campaign_id != campaign_id):
            raise WorkbenchError("This pair is no longer in the campaign.")
        if a.annotator_id != user.pk:
            raise WorkbenchError("This pair is no longer assigned to you; nothing was saved.")
        campaign = a.campaign
        project = campaign.project
        if campaign.status != Campaign.Status.OPEN:
            raise WorkbenchError(
                f"Campaign {campaign.name} is {campaign.get_status_display().lower()}; nothing was saved."
            )
        explanation = (explanation or "").strip()[:MAX_EXPLANATION]
        if cant_judge:
            if not explanation:
                raise WorkbenchError("Say why you can't judge this pair.")
            grade = project.grade_min
        else:
            if grade is None:
                raise WorkbenchError("Pick a grade.")
            if not project.grade_min <= int(grade) <= project.grade_max:
                raise WorkbenchError(f"Grade {grade} is outside the scale {project.grade_min}–{project.grade_max}.")
        spans = _spans(evidence, len(a.item.document.text))
        secs = None if seconds is None else max(0.0, min(MAX_SECONDS, float(seconds)))
        guideline_id = a.current_guideline_id  # type: ignore[attr-defined]
        now = timezone.now()
        fields = {
            "grade": int(grade),
            "evidence": spans,
            "cant_judge": bool(cant_judge),
            "explanation": explanation,
            "seconds": secs,
        }
        if a.judgment_id:
            Judgment.objects.filter(pk=a.judgment_id).update(updated_at=now, **fields)
            Assignment.objects.filter(pk=a.pk).update(guideline_id=guideline_id, judged_at=now)
            judgment = Judgment.objects.get(pk=a.judgment_id)
        else:
            judgment = Judgment.objects.create(
                project=project,
                query_id=a.item.query_id,
                document_id=a.item.document_id,
                source=Judgment.Source.ANNOTATOR,
                annotator=user,
                **fields,
            )
            linked = Assignment.objects.filter(pk=a.pk, judgment__isnull=True).update(
                judgment=judgment, guideline_id=guideline_id, judged_at=now
            )
            if not linked:  # another request linked one first (databases without row locks): roll this back
                raise _Raced()
        a.guideline_id, a.judged_at = guideline_id, now
        # A rule's gold grade came from the old grades: drop it so the rule (or an adjudicator) decides again.
        gold = getattr(a.item, "adjudication", None)
        if gold is not None and gold.method == Adjudication.Method.RULE:
            _drop_rule_gold(a.item_id)
        judgment.assignment = a  # the reverse one-to-one, cached: sets a.judgment too
        return judgment


def _drop_rule_gold(item_id: int) -> None:
    rule = Adjudication.objects.filter(item_id=item_id, method=Adjudication.Method.RULE).first()
    if rule is not None:
        Judgment.objects.filter(pk=rule.judgment_id).delete()  # cascades to the adjudication


def judgment_undo(*, assignment_id: int, user: Any) -> Assignment:
    """Take back the user's judgment of an assignment (the pair goes back into their queue)."""
    with transaction.atomic():
        a = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(pk=assignment_id)
            .first()
        )
        if a is None or a.annotator_id != user.pk:
            raise WorkbenchError("This pair is not assigned to you.")
        if a.campaign.status != Campaign.Status.OPEN:
            raise WorkbenchError("The campaign is not open; nothing was changed.")
        if a.judgment_id:
            Judgment.objects.filter(pk=a.judgment_id).delete()
            Assignment.objects.filter(pk=a.pk).update(judgment=None, judged_at=None)
            _drop_rule_gold(a.item_id)
        a.refresh_from_db()
        return a


def assignment_reassign(*, assignment: Assignment, to: Any) -> Assignment:
    """Give an unjudged assignment to another judge (a stale page of the former one then saves nothing)."""
    with transaction.atomic():
        a = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if a.judgment_id:
            raise WorkbenchError("A judged pair cannot be reassigned.")
        if Assignment.objects.filter(item_id=a.item_id, annotator=to).exists():
            raise WorkbenchError(f"{to} already has this pair.")
        a.annotator = to
        a.save(update_fields=["annotator"])
        return a


def assignments_reassign_remaining(*, campaign: Campaign, from_user: Any, to_user: Any) -> dict[str, int]:
    """Give every pair ``from_user`` has not judged yet in the campaign to ``to_user`` (an annotator who left, or
    one who is behind). Their judged pairs stay theirs. Pairs ``to_user`` already has (overlap) stay put: one
    annotator never judges a pair twice.

    Safe against a judgment arriving at the same moment: the pending rows are locked (``select_for_update``) and moved
    by an UPDATE that still requires them unjudged, so a pair is either judged by ``from_user`` and stays, or moved
    and their stale page then saves nothing ("no longer assigned to you")."""
    if from_user.pk == to_user.pk:
        raise WorkbenchError("Pick another annotator to give the pairs to.")
    if to_user.pk not in {u.pk for u in judges_of(campaign.project)}:
        raise WorkbenchError(f"{to_user} may not judge in this project.")
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)  # one reassignment at a time
        if locked.status not in (Campaign.Status.OPEN, Campaign.Status.CLOSED):
            raise WorkbenchError("The campaign has no pool yet.")
        pending = list(
            Assignment.objects.select_for_update()
            .filter(campaign=campaign, annotator=from_user, judgment__isnull=True)
            .values_list("pk", "item_id")
        )
        theirs = set(
            Assignment.objects.filter(
                campaign=campaign, annotator=to_user, item_id__in=[i for _, i in pending]
            ).values_list("item_id", flat=True)
        )
        movable = [pk for pk, item in pending if item not in theirs]
        moved = Assignment.objects.filter(pk__in=movable, annotator=from_user, judgment__isnull=True).update(
            annotator=to_user
        )
        if moved:
            locked.annotators.add(to_user)
    return {"moved": moved, "kept_overlap": len(pending) - len(movable), "pending": len(pending)}
