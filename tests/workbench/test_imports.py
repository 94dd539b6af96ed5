"""Imports: atomic, clear errors naming file and line, idempotent or refused on repeat."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import make_corpus, make_project, write_beir, write_jsonl
from workbench.errors import WorkbenchError
from workbench.models import Document, Judgment, Passage, Query, QueryTag
from workbench.services.imports import InputFile, beir_import, corpus_import, qrels_import, queries_import

pytestmark = pytest.mark.django_db

DOCS = [
    {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever in adults.", "metadata": {"tenant": "acme"}},
    {
        "_id": "d2",
        "title": "Statins",
        "text": "Statins lower LDL cholesterol.",
        "metadata": {"doc_type": "review", "date": "2020-05-01"},
    },
]


def _f(path: Path) -> list[InputFile]:
    return [InputFile.checked(path)]


def test_beir_corpus_import_chunks_and_promotes_metadata(tmp_path: Path) -> None:
    corpus = make_corpus(make_project())
    result = corpus_import(corpus=corpus, files=_f(write_jsonl(tmp_path / "corpus.jsonl", DOCS)), user=None)
    assert result["documents"] == 2 and result["passages"] == 2
    d1, d2 = Document.objects.order_by("external_id")
    assert d1.tenant == "acme" and d2.doc_type == "review" and str(d2.date) == "2020-05-01"
    p = Passage.objects.get(document=d1)
    assert d1.text[p.char_start : p.char_end] == p.text and len(p.content_hash) == 64
    corpus.refresh_from_db()
    assert corpus.version == 1


def test_text_markdown_html_and_plain_jsonl(tmp_path: Path) -> None:
    corpus = make_corpus(make_project())
    (tmp_path / "a.txt").write_text("Plain text document.")
    (tmp_path / "b.md").write_text("# Heading here\n\nSome *markdown* body.")
    (tmp_path / "c.html").write_text(
        "<html><head><title>Page</title><script>alert(1)</script></head><body><p>Visible &amp; kept</p>"
        "<style>p{}</style></body></html>"
    )
    write_jsonl(tmp_path / "d.jsonl", [{"id": 7, "body": "x", "text": "Plain JSONL text", "lang": "en"}])
    files = [InputFile.checked(tmp_path / n) for n in ("a.txt", "b.md", "c.html", "d.jsonl")]
    corpus_import(corpus=corpus, files=files, user=None)
    docs = {d.external_id: d for d in Document.objects.all()}
    assert docs["b.md"].title == "Heading here"
    assert docs["c.html"].title == "Page" and docs["c.html"].text == "Visible & kept"
    assert "alert" not in docs["c.html"].text
    assert docs["7"].metadata == {"body": "x", "lang": "en"}


@pytest.mark.parametrize(
    "content,expected",
    [
        ('{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "broken"\n', "corpus.jsonl, line 2: malformed JSON"),
        ('{"_id": "a", "text": "ok"}\n{"_id": "a", "text": "again"}\n', "line 2: duplicate document id 'a'"),
        ('{"_id": "a", "title": "no text"}\n', "line 1: missing the text field"),
        ('{"_id": "a", "text": "x", "metadata": {"date": "yesterday"}}\n', "line 1: metadata date 'yesterday'"),
        ("\n\n", "the file is empty"),
    ],
)
def test_bad_corpus_lines_name_file_and_line_and_write_nothing(tmp_path: Path, content: str, expected: str) -> None:
    corpus = make_corpus(make_project())
    path = tmp_path / "corpus.jsonl"
    path.write_text(content)
    with pytest.raises(WorkbenchError, match=expected):
        corpus_import(corpus=corpus, files=_f(path), user=None)
    assert not Document.objects.exists() and not Passage.objects.exists()


def test_wrong_encoding_is_reported_with_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(WorkbenchError, match=r"line 2: is not valid UTF-8"):
        corpus_import(corpus=make_corpus(make_project()), files=_f(path), user=None)
    assert not Document.objects.exists()


def test_empty_and_oversize_files_are_refused(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(WorkbenchError, match=r"empty.jsonl: the file is empty"):
        InputFile.checked(tmp_path / "empty.jsonl")
    settings.IMPORT_MAX_BYTES = 10
    (tmp_path / "big.jsonl").write_text('{"_id": "a", "text": "more than ten bytes"}\n')
    with pytest.raises(WorkbenchError, match="over the import limit"):
        InputFile.checked(tmp_path / "big.jsonl")


def test_reimporting_the_same_file_is_refused_and_clashing_ids_too(tmp_path: Path) -> None:
    corpus = make_corpus(make_project())
    path = write_jsonl(tmp_path / "corpus.jsonl", DOCS)
    corpus_import(corpus=corpus, files=_f(path), user=None)
    with pytest.raises(WorkbenchError, match="already imported"):
        corpus_import(corpus=corpus, files=_f(path), user=None)
    other = write_jsonl(tmp_path / "more.jsonl", [{"_id": "new", "text": "fresh"}, DOCS[0]])
    with pytest.raises(WorkbenchError, match=r"more.jsonl, line 2: document id 'd1' already exists"):
        corpus_import(corpus=corpus, files=_f(other), user=None)
    assert Document.objects.count() == 2


def test_ids_clashing_across_files_of_one_upload(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [DOCS[0]])
    b = write_jsonl(tmp_path / "b.jsonl", [DOCS[1], DOCS[0]])
    with pytest.raises(WorkbenchError, match=r"b.jsonl, line 2: document id 'd1' also appears in a.jsonl \(line 1\)"):
        corpus_import(corpus=make_corpus(make_project()), files=_f(a) + _f(b), user=None)


def test_queries_formats_tags_and_idempotent_reimport(tmp_path: Path) -> None:
    project = make_project()
    (tmp_path / "q.csv").write_text("id,text,tags\nq1,What lowers LDL?,cardio;easy\nq2,Does aspirin help?,\n")
    (tmp_path / "q.txt").write_text("q3\tThird query\n")
    queries_import(project=project, files=_f(tmp_path / "q.csv"), user=None, tags=["golden"], held_out=True)
    queries_import(project=project, files=_f(tmp_path / "q.txt"), user=None)
    q1 = Query.objects.get(external_id="q1")
    assert sorted(t.name for t in q1.tags.all()) == ["cardio", "easy", "golden"]
    assert QueryTag.objects.get(name="golden").held_out and not QueryTag.objects.get(name="cardio").held_out
    # Same queries from another file: identical rows are skipped, not duplicated.
    write_jsonl(tmp_path / "q.jsonl", [{"_id": "q1", "text": "What lowers LDL?"}])
    assert queries_import(project=project, files=_f(tmp_path / "q.jsonl"), user=None)["skipped"] == 1
    assert Query.objects.count() == 3
    write_jsonl(tmp_path / "q2.jsonl", [{"_id": "q1", "text": "Changed text"}])
    with pytest.raises(WorkbenchError, match="already exists with a different text"):
        queries_import(project=project, files=_f(tmp_path / "q2.jsonl"), user=None)


def test_qrels_unknown_ids_bad_grades_and_conflicts(tmp_path: Path) -> None:
    project = make_project()
    corpus = make_corpus(project)
    corpus_import(corpus=corpus, files=_f(write_jsonl(tmp_path / "c.jsonl", DOCS)), user=None)
    queries_import(
        project=project, files=_f(write_jsonl(tmp_path / "q.jsonl", [{"_id": "q1", "text": "t"}])), user=None
    )
    (tmp_path / "bad.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\n")
    with pytest.raises(WorkbenchError, match=r"bad.tsv, line 3: unknown query id 'q9'"):
        qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "bad.tsv"), user=None)
    (tmp_path / "bad2.tsv").write_text("q1 0 dX 1\n")
    with pytest.raises(WorkbenchError, match=r"line 1: unknown document id 'dX'"):
        qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "bad2.tsv"), user=None)
    (tmp_path / "bad3.tsv").write_text("q1\td1\t7\n")
    with pytest.raises(
        WorkbenchError, match=r"bad3.tsv, line 1: grade 7 is outside the project.s grade scale 0–3; .*--grade-map=7:3"
    ):
        qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "bad3.tsv"), user=None)
    assert not Judgment.objects.exists()
    (tmp_path / "test.qrels").write_text("q1 0 d1 2\nq1 0 d2 0\n")
    qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "test.qrels"), user=None)
    assert Judgment.objects.filter(source="imported", split="test").count() == 2
    assert QueryTag.objects.get(name="test").held_out
    (tmp_path / "other/test.qrels").parent.mkdir()
    (tmp_path / "other/test.qrels").write_text("q1 0 d1 3\n")
    with pytest.raises(WorkbenchError, match="already has imported grade 2"):
        qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "other/test.qrels"), user=None)


def test_beir_folder_is_one_transaction(tmp_path: Path) -> None:
    project = make_project()
    corpus = make_corpus(project)
    folder = write_beir(
        tmp_path / "beir", DOCS, [{"_id": "q1", "text": "t"}], {"test": [("q1", "d1", 1), ("q1", "nope", 1)]}
    )
    with pytest.raises(WorkbenchError, match=r"qrels/test.tsv, line 3: unknown document id 'nope'"):
        beir_import(project=project, corpus=corpus, folder=folder, user=None)
    assert not Document.objects.exists() and not Query.objects.exists() and not Judgment.objects.exists()


def test_beir_folder_with_missing_file(tmp_path: Path) -> None:
    folder = tmp_path / "beir"
    write_jsonl(folder / "corpus.jsonl", DOCS)
    project = make_project()
    with pytest.raises(WorkbenchError, match=r"missing queries.jsonl, qrels/\*.tsv"):
        beir_import(project=project, corpus=make_corpus(project), folder=folder, user=None)
