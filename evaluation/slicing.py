"""Query sets, qrels and slices read from the database for one evaluation.

Slices: query tags (``tag=NAME``), document metadata (``tenant=X``, ``doc_type=Y``: a query belongs when any of its
relevant documents has the value) and the built-in hard subset (``hard``). Empty slices are left out.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

from django.db.models import QuerySet

from evaluation.metrics import HARD_SLICE, Qrels, Run, hard_subset
from workbench.models import Corpus, Document, Project, Query, QueryTag
from workbench.selectors import qrels_gold, queries_judged

HARD_K = 10
METADATA_FIELDS = ("tenant", "doc_type")
# More slices than this per field make the Holm family (and the page) huge for little insight: keep the largest.
MAX_VALUES_PER_FIELD = 20
_CHUNK = 500


def query_set(project: Project, corpus: Corpus, tag: QueryTag | None) -> QuerySet[Query]:
    """The tag's queries, or every query with at least one counted judgment on the corpus."""
    if tag is not None:
        return Query.objects.filter(project=project, tags=tag).order_by("id")
    return queries_judged(project=project, corpus=corpus)


def qrels_for(project: Project, corpus: Corpus, queries: QuerySet[Query]) -> dict[str, dict[str, int]]:
    """The gold qrels of the query set (the core's one rule); ids are external ids."""
    return qrels_gold(project=project, corpus=corpus, queries=queries)


def qrels_hash(qrels: Qrels) -> str:
    """Order-independent fingerprint of the qrels: two evaluations with equal hashes used the same judgments."""
    digest = hashlib.sha256()
    for qid in sorted(qrels):
        for doc in sorted(qrels[qid]):
            digest.update(f"{qid}\t{doc}\t{qrels[qid][doc]}\n".encode())
    return digest.hexdigest()


def tag_slices(project: Project, qids: set[str], *, skip: QueryTag | None) -> dict[str, list[str]]:
    """``tag=NAME`` -> evaluated query ids; the query set's own tag would only repeat "all"."""
    rows = Query.tags.through.objects.filter(query__project=project).values_list(
        "query__external_id", "querytag__name", "querytag_id"
    )
    out: dict[str, list[str]] = defaultdict(list)
    for qid, name, tag_id in rows.iterator(chunk_size=5000):
        if qid in qids and (skip is None or tag_id != skip.pk):
            out[f"tag={name}"].append(qid)
    return {name: sorted(members) for name, members in sorted(out.items())}


def metadata_slices(
    corpus: Corpus, qrels: Qrels, *, relevance_threshold: int, notes: list[str]
) -> dict[str, list[str]]:
    """``tenant=X`` / ``doc_type=Y`` -> queries with at least one relevant document carrying that value."""
    relevant: dict[str, set[str]] = defaultdict(set)  # doc -> queries
    for qid, grades in qrels.items():
        for doc, grade in grades.items():
            if grade >= relevance_threshold:
                relevant[doc].add(qid)
    members: dict[str, dict[str, set[str]]] = {f: defaultdict(set) for f in METADATA_FIELDS}
    docs = sorted(relevant)
    for start in range(0, len(docs), _CHUNK):
        rows = Document.objects.filter(corpus=corpus, external_id__in=docs[start : start + _CHUNK]).values_list(
            "external_id", *METADATA_FIELDS
        )
        for doc, *values in rows:
            for name, value in zip(METADATA_FIELDS, values, strict=True):
                if value:  # documents without the field belong to no slice of it
                    members[name][value] |= relevant[doc]
    out: dict[str, list[str]] = {}
    for name in METADATA_FIELDS:
        sizes = Counter({value: len(qs) for value, qs in members[name].items()})
        kept = sizes.most_common(MAX_VALUES_PER_FIELD)
        if len(sizes) > len(kept):
            notes.append(
                f"{name} has {len(sizes)} values among relevant documents; only the {len(kept)} largest are sliced."
            )
        for value, _ in sorted(kept):
            out[f"{name}={value}"] = sorted(members[name][value])
    return out


def hard_slice(baseline_run: Run, qrels: Qrels, *, relevance_threshold: int) -> list[str]:
    """Judged queries whose every relevant document the baseline ranked outside its top ``HARD_K``.

    Audited hard negatives do not exist yet, so none are passed.
    """
    return sorted(
        hard_subset(baseline_run, qrels, k=HARD_K, hard_negatives=None, relevance_threshold=relevance_threshold)
    )


def all_slices(
    *,
    project: Project,
    corpus: Corpus,
    tag: QueryTag | None,
    qrels: Qrels,
    hard_baseline_run: Run,
    relevance_threshold: int,
    notes: list[str],
) -> dict[str, list[str]]:
    """Every non-empty slice of the judged queries, hard subset first."""
    judged = {q for q, grades in qrels.items() if grades}
    slices: dict[str, list[str]] = {}
    hard = hard_slice(hard_baseline_run, qrels, relevance_threshold=relevance_threshold)
    if hard:
        slices[HARD_SLICE] = hard
    else:
        notes.append(
            f"The hard subset is empty: the baseline found a relevant document in its top {HARD_K} everywhere."
        )
    slices.update(tag_slices(project, judged, skip=tag))
    slices.update(metadata_slices(corpus, qrels, relevance_threshold=relevance_threshold, notes=notes))
    return {name: members for name, members in slices.items() if members}
