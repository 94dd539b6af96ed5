"""Exports in BEIR and TREC formats that re-import to the same data (tests/workbench/test_roundtrip.py proves it)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from workbench.models import Corpus, Judgment, Project, Query
from workbench.selectors import gold_reduce, judgments_counted

# Annotators' own judgments are exported under this split, one grade per pair (the highest), as qrels need.
LABELS_SPLIT = "workbench-labels"


def corpus_lines(corpus: Corpus) -> Iterator[str]:
    docs = corpus.documents.order_by("id").values_list("external_id", "title", "text", "metadata")
    for ext, title, text, meta in docs.iterator(chunk_size=2000):
        yield json.dumps({"_id": ext, "title": title, "text": text, "metadata": meta}) + "\n"


def queries_lines(project: Project) -> Iterator[str]:
    queries = Query.objects.filter(project=project).order_by("id").prefetch_related("tags")
    for q in queries.iterator(chunk_size=2000):
        line = {"_id": q.external_id, "text": q.text, "metadata": q.metadata}
        tags = sorted(t.name for t in q.tags.all())
        if tags:
            line["tags"] = tags
        yield json.dumps(line) + "\n"


def qrels_by_split(corpus: Corpus) -> dict[str, list[tuple[str, str, int]]]:
    """(query id, document id, grade) per split; imported splits as imported, other judgments as their gold grade."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    imported = (
        Judgment.objects.filter(document__corpus=corpus, source=Judgment.Source.IMPORTED)
        .order_by("split", "id")
        .values_list("split", "query__external_id", "document__external_id", "grade")
    )
    for split, q, d, g in imported.iterator(chunk_size=5000):
        out.setdefault(split or "qrels", []).append((q, d, g))
    own = (
        judgments_counted(project=corpus.project, corpus=corpus)
        .exclude(source=Judgment.Source.IMPORTED)
        .order_by("id")
        .values_list("query__external_id", "document__external_id", "grade", "source")
    )
    labels = gold_reduce(own.iterator(chunk_size=5000))
    if labels:
        out[LABELS_SPLIT] = [(q, d, g) for q, grades in labels.items() for d, g in grades.items()]
    return out


def beir_qrels_text(rows: list[tuple[str, str, int]]) -> str:
    return "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in rows)


def trec_qrels_text(rows: list[tuple[str, str, int]]) -> str:
    return "".join(f"{q} 0 {d} {g}\n" for q, d, g in rows)


def queries_tsv_text(project: Project) -> str:
    rows = Query.objects.filter(project=project).order_by("id").values_list("external_id", "text")
    return "".join(f"{q}\t{' '.join(t.split())}\n" for q, t in rows)


def _write_lines(fh: IO[str], lines: Iterator[str]) -> int:
    n = 0
    for line in lines:
        fh.write(line)
        n += 1
    return n


def export_beir(*, corpus: Corpus, out_dir: Path) -> dict:
    """Write corpus.jsonl, queries.jsonl and qrels/<split>.tsv for a corpus and its project's queries."""
    (out_dir / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out_dir / "corpus.jsonl", "w", encoding="utf-8") as fh:
        n_docs = _write_lines(fh, corpus_lines(corpus))
    with open(out_dir / "queries.jsonl", "w", encoding="utf-8") as fh:
        n_queries = _write_lines(fh, queries_lines(corpus.project))
    splits = qrels_by_split(corpus)
    for split, rows in splits.items():
        (out_dir / "qrels" / f"{split}.tsv").write_text(beir_qrels_text(rows), encoding="utf-8")
    return {"documents": n_docs, "queries": n_queries, "splits": {s: len(r) for s, r in splits.items()}}


def export_zip(*, corpus: Corpus, fmt: str, fh: IO[bytes]) -> None:
    """A zip of the corpus in BEIR form (fmt="beir") or the judgments as TREC qrels plus topics (fmt="trec")."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        splits = qrels_by_split(corpus)
        if fmt == "beir":
            with zf.open("corpus.jsonl", "w") as out:
                for line in corpus_lines(corpus):
                    out.write(line.encode("utf-8"))
            zf.writestr("queries.jsonl", "".join(queries_lines(corpus.project)))
            for split, rows in splits.items():
                zf.writestr(f"qrels/{split}.tsv", beir_qrels_text(rows))
        elif fmt == "trec":
            zf.writestr("topics.tsv", queries_tsv_text(corpus.project))
            for split, rows in splits.items():
                zf.writestr(f"{split}.qrels", trec_qrels_text(rows))
        else:
            raise ValueError(f"unknown export format {fmt!r}")
