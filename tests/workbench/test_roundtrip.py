"""Export → re-import gives exactly the same data."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.factories import make_corpus, make_project
from workbench.models import Corpus, Judgment, Project
from workbench.services.exports import export_beir, export_zip
from workbench.services.imports import InputFile, beir_import, qrels_import, queries_import

pytestmark = pytest.mark.django_db


def snapshot(project: Project, corpus: Corpus) -> dict:
    return {
        "docs": sorted(
            corpus.documents.values_list("external_id", "title", "text", "metadata", "tenant", "doc_type", "date")
        ),
        "passages": sorted(
            corpus.passages.values_list(
                "document__external_id", "ordinal", "text", "char_start", "char_end", "content_hash"
            )
        ),
        "queries": sorted(project.queries.values_list("external_id", "text", "metadata")),
        "tags": sorted(project.queries.values_list("external_id", "tags__name", "tags__held_out")),
        "judgments": sorted(
            Judgment.objects.filter(project=project).values_list(
                "query__external_id", "document__external_id", "grade", "split", "source"
            )
        ),
    }


def test_beir_roundtrip_on_scifact_slice(scifact_dir: Path, tmp_path: Path) -> None:
    p1 = make_project()
    c1 = make_corpus(p1, chunk_size=64, chunk_overlap=8)  # small chunks: several passages per abstract
    beir_import(project=p1, corpus=c1, folder=scifact_dir, user=None)
    assert c1.passages.count() > c1.documents.count()
    export_beir(corpus=c1, out_dir=tmp_path / "out")
    # The exported corpus is byte-identical to the BEIR source (same JSON conventions).
    assert (tmp_path / "out/corpus.jsonl").read_bytes() == (scifact_dir / "corpus.jsonl").read_bytes()
    p2 = make_project()
    c2 = make_corpus(p2, chunk_size=64, chunk_overlap=8)
    beir_import(project=p2, corpus=c2, folder=tmp_path / "out", user=None)
    assert snapshot(p1, c1) == snapshot(p2, c2)


def test_trec_zip_roundtrip(scifact_dir: Path, tmp_path: Path) -> None:
    p1 = make_project()
    c1 = make_corpus(p1)
    beir_import(project=p1, corpus=c1, folder=scifact_dir, user=None)
    buf = io.BytesIO()
    export_zip(corpus=c1, fmt="trec", fh=buf)
    out = tmp_path / "trec"
    zipfile.ZipFile(buf).extractall(out)
    p2 = make_project()
    c2 = make_corpus(p2)
    beir_zip = io.BytesIO()
    export_zip(corpus=c1, fmt="beir", fh=beir_zip)
    zipfile.ZipFile(beir_zip).extract("corpus.jsonl", tmp_path / "beir")
    from workbench.services.imports import corpus_import

    corpus_import(corpus=c2, files=[InputFile.checked(tmp_path / "beir/corpus.jsonl")], user=None)
    queries_import(project=p2, files=[InputFile.checked(out / "topics.tsv")], user=None)
    qrels_import(project=p2, corpus=c2, files=[InputFile.checked(p) for p in sorted(out.glob("*.qrels"))], user=None)
    s1, s2 = snapshot(p1, c1), snapshot(p2, c2)
    assert s1["judgments"] == s2["judgments"] and s1["docs"] == s2["docs"]
    assert [q[:2] for q in s1["queries"]] == [q[:2] for q in s2["queries"]]
