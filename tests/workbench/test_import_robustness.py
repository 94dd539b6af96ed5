"""Imports found on real collections: documents without text, grade scales, failed first uploads, corpus deletion,
the project's grade scale, and the shell commands' project creation and help."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django.urls import reverse

from tests.factories import make_corpus, make_project, make_user, write_beir, write_jsonl
from workbench.errors import PermanentJobError, WorkbenchError
from workbench.models import (
    Corpus,
    Document,
    ImportRecord,
    IndexVersion,
    Job,
    Judgment,
    Membership,
    ModelVersion,
    Passage,
    Project,
    Query,
    Role,
)
from workbench.parsers import ImportFileError, parse_grade_map
from workbench.retrieval.chunking import content_hash
from workbench.selectors import qrels_gold
from workbench.services import indexes
from workbench.services.imports import REPORT_IDS, InputFile, beir_import, corpus_import, qrels_import
from workbench.services.projects import corpus_delete, project_grade_scale_set

pytestmark = pytest.mark.django_db

DOCS = [
    {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever in adults."},
    {"_id": "t1", "title": "Only a title here", "text": ""},
    {"_id": "e1", "title": "", "text": ""},
]
QUERIES = [{"_id": "q1", "text": "fever"}, {"_id": "q2", "text": "nothing"}]


def _f(path: Path) -> list[InputFile]:
    return [InputFile.checked(path)]


def _setup(tmp_path: Path, project: Project | None = None) -> tuple[Project, Corpus]:
    project = project or make_project()
    corpus = make_corpus(project)
    corpus_import(
        corpus=corpus, files=_f(write_jsonl(tmp_path / "c.jsonl", [*DOCS[:1], {"_id": "d2", "text": "y"}])), user=None
    )
    from workbench.services.imports import queries_import

    queries_import(project=project, files=_f(write_jsonl(tmp_path / "q.jsonl", QUERIES)), user=None)
    return project, corpus


# --- documents without text ----------------------------------------------------------------------------------------


def test_beir_with_textless_documents_imports_them_lists_both_and_keeps_their_qrels(tmp_path: Path) -> None:
    project = make_project()
    corpus = make_corpus(project)
    folder = write_beir(tmp_path / "beir", DOCS, QUERIES, {"test": [("q1", "d1", 2), ("q2", "e1", 1)]})
    result = beir_import(project=project, corpus=corpus, folder=folder, user=None)
    assert result["documents"] == 3 and result["judgments"] == 2
    assert result["title_only_documents"] == ["t1"] and result["documents_without_passage"] == ["e1"]
    assert "indexed by its title alone: t1." in result["message"]
    assert "neither title nor text" in result["message"] and "(1 judgment on it kept): e1." in result["message"]
    # The title-only passage is an (empty) exact slice of the document; the index reads its title.
    t1 = Document.objects.get(external_id="t1")
    (p,) = t1.passages.all()
    assert (p.text, p.char_start, p.char_end, p.token_count) == ("", 0, 0, 0)
    assert t1.text[p.char_start : p.char_end] == p.text and p.content_hash == content_hash("Only a title here")
    texts = dict(indexes._corpus_passages(corpus)[0])
    assert texts[p.pk].strip() == "Only a title here"
    d1_passage = Passage.objects.get(document__external_id="d1")
    assert texts[d1_passage.pk] == "Aspirin\nAspirin reduces fever in adults."  # normal documents unchanged
    assert not Passage.objects.filter(document__external_id="e1").exists()
    # The judgment on the passage-less document is valid gold: a relevant document nothing can retrieve.
    assert qrels_gold(project=project, corpus=corpus) == {"q1": {"d1": 2}, "q2": {"e1": 1}}


def test_every_textless_document_is_listed_in_the_result(tmp_path: Path) -> None:
    n = REPORT_IDS + 5
    rows = [{"_id": f"x{i}", "title": "", "text": ""} for i in range(n)] + [{"_id": "ok", "text": "words"}]
    result = corpus_import(
        corpus=make_corpus(make_project()), files=_f(write_jsonl(tmp_path / "c.jsonl", rows)), user=None
    )
    assert result["documents_without_passage"] == [f"x{i}" for i in range(n)]
    assert "and 5 more (all listed in the import's result)" in result["message"]
    assert Document.objects.count() == n + 1 and Passage.objects.count() == 1


def test_html_with_only_a_title_is_a_title_only_document(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text("<html><head><title>Just the title</title></head><body></body></html>")
    result = corpus_import(corpus=make_corpus(make_project()), files=_f(tmp_path / "t.html"), user=None)
    assert result["title_only_documents"] == ["t.html"] and result["passages"] == 1


def test_cli_lists_textless_documents(tmp_path: Path) -> None:
    project = make_project()
    folder = write_beir(tmp_path / "beir", DOCS, QUERIES, {"test": [("q2", "e1", 1)]})
    out = io.StringIO()
    call_command("import_beir", str(folder), "--project", project.slug, "--corpus", "c", stdout=out)
    assert "t1." in out.getvalue() and "e1." in out.getvalue()


# --- grade scale ---------------------------------------------------------------------------------------------------


def test_grades_up_to_4_accepted_when_the_project_scale_is_0_to_4(tmp_path: Path) -> None:
    project = make_project()
    project_grade_scale_set(project=project, grade_min=0, grade_max=4, labels=[], relevance_threshold=1, by=None)
    project, corpus = _setup(tmp_path, project)
    (tmp_path / "test.tsv").write_text("q1\td1\t4\nq1\td2\t0\n")
    result = qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "test.tsv"), user=None)
    assert result["judgments"] == 2 and "grades_mapped" not in result
    assert Judgment.objects.get(document__external_id="d1").grade == 4


def test_out_of_scale_grade_is_refused_with_file_line_scale_and_option_and_nothing_written(tmp_path: Path) -> None:
    project, corpus = _setup(tmp_path)
    (tmp_path / "test.tsv").write_text("q1\td1\t2\nq1\td2\t4\n")
    with pytest.raises(PermanentJobError) as info:
        qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "test.tsv"), user=None)
    message = str(info.value)
    assert message.startswith("test.tsv, line 2: grade 4 is outside the project's grade scale 0–3")
    assert "--grade-map=4:3" in message and "--clip" in message and "grade mapping field" in message
    assert Judgment.objects.count() == 0 and not ImportRecord.objects.filter(kind="qrels").exists()


def test_beir_folder_with_out_of_scale_grade_writes_nothing(tmp_path: Path) -> None:
    project = make_project()
    folder = write_beir(tmp_path / "beir", DOCS[:1], QUERIES, {"test": [("q1", "d1", 4)]})
    with pytest.raises(ImportFileError, match=r"qrels/test.tsv, line 2: grade 4 is outside"):
        beir_import(project=project, corpus=make_corpus(project), folder=folder, user=None)
    assert (Document.objects.count(), Passage.objects.count(), Query.objects.count(), Judgment.objects.count()) == (
        0,
        0,
        0,
        0,
    )


def test_grade_map_and_clip_map_grades_and_the_report_says_how(tmp_path: Path) -> None:
    project, corpus = _setup(tmp_path)
    # TREC qrels with -1 (judged, not relevant) and a 0-4 collection's 4.
    (tmp_path / "trec.qrels").write_text("q1 0 d1 4\nq1 0 d2 -1\nq2 0 d1 -1\nq2 0 d2 1\n")
    result = qrels_import(
        project=project, corpus=corpus, files=_f(tmp_path / "trec.qrels"), user=None, grade_map="-1:0,4:3"
    )
    assert result["grades_mapped"] == 3 and result["grade_mapping"] == {"-1→0": 2, "4→3": 1}
    assert "Mapped 3 grades into the project's scale 0–3: -1→0 ×2, 4→3 ×1." in result["message"]
    assert sorted(Judgment.objects.values_list("grade", flat=True)) == [0, 0, 1, 3]
    (tmp_path / "clip.tsv").write_text("q1\td1\t7\n")
    clipped = qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "clip.tsv"), user=None, clip=True)
    assert clipped["grade_mapping"] == {"7→3 (clipped)": 1}


def test_grade_map_syntax_and_targets_are_checked(tmp_path: Path) -> None:
    assert parse_grade_map(" -1:0, 4:3 ") == {-1: 0, 4: 3} and parse_grade_map("") == {}
    with pytest.raises(WorkbenchError, match="is not FROM:TO"):
        parse_grade_map("4=3")
    with pytest.raises(WorkbenchError, match="both to 3 and to 2"):
        parse_grade_map("4:3,4:2")
    project, corpus = _setup(tmp_path)
    (tmp_path / "t.tsv").write_text("q1\td1\t4\n")
    with pytest.raises(WorkbenchError, match="4:5 maps to grades outside the project's scale 0–3"):
        qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "t.tsv"), user=None, grade_map="4:5")


def test_cli_grade_map_and_refusal(tmp_path: Path) -> None:
    project, corpus = _setup(tmp_path)
    (tmp_path / "t.qrels").write_text("q1 0 d1 -1\n")
    base = ["import_files", "qrels", str(tmp_path / "t.qrels"), "--project", project.slug, "--corpus", corpus.name]
    with pytest.raises(CommandError, match=r"grade -1 is outside .* 0–3.*--grade-map=-1:0"):
        call_command(*base)
    out = io.StringIO()
    call_command(*base, "--grade-map=-1:0", stdout=out)
    assert "Mapped 1 grade" in out.getvalue() and Judgment.objects.get().grade == 0


def test_grade_scale_cannot_shrink_below_existing_judgments(tmp_path: Path) -> None:
    project, corpus = _setup(tmp_path)
    (tmp_path / "t.tsv").write_text("q1\td1\t3\nq2\td1\t3\nq1\td2\t2\n")
    qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "t.tsv"), user=None)
    with pytest.raises(
        WorkbenchError,
        match=r"cannot become 0–1: 3 existing judgments are outside it \(1 with grade 2, 2 with grade 3\)",
    ):
        project_grade_scale_set(project=project, grade_min=0, grade_max=1, labels=[], relevance_threshold=1, by=None)
    with pytest.raises(WorkbenchError, match="one label per grade"):
        project_grade_scale_set(project=project, grade_min=0, grade_max=4, labels=["a"], relevance_threshold=1, by=None)
    with pytest.raises(WorkbenchError, match="relevance threshold"):
        project_grade_scale_set(project=project, grade_min=0, grade_max=4, labels=[], relevance_threshold=5, by=None)
    project_grade_scale_set(
        project=project, grade_min=0, grade_max=4, labels=list("abcde"), relevance_threshold=2, by=None
    )
    project.refresh_from_db()
    assert (project.grade_max, project.relevance_threshold, project.grades[4]) == (4, 2, (4, "e"))


def test_grade_scale_page_for_ml_leads(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD, ann=Role.ANNOTATOR)
    url = reverse("workbench:grade_scale", kwargs={"slug": project.slug})
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    assert client.get(url).status_code == 403
    client.force_login(project.memberships.get(role=Role.ML_LEAD).user)
    assert "Grade scale of" in client.get(url).content.decode()
    response = client.post(
        url, {"grade_min": 0, "grade_max": 4, "labels": "no\nweak\nsome\ngood\nperfect", "relevance_threshold": 2}
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.grade_max, project.relevance_threshold, project.grade_labels[-1]) == (4, 2, "perfect")
    html = client.post(url, {"grade_min": 0, "grade_max": 4, "labels": "x", "relevance_threshold": 2}).content.decode()
    assert "one label per grade" in html.lower()


# --- failed first uploads and corpus deletion ----------------------------------------------------------------------


def test_failed_first_upload_leaves_no_corpus(client, eager_celery, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    client.force_login(project.memberships.get().user)
    bad = SimpleUploadedFile("bad.jsonl", b'{"_id": "a", "text": "fine"}\nnot json\n')
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("workbench:corpus_new", kwargs={"slug": project.slug}),
            {"name": "badjson", "chunk_size": 224, "chunk_overlap": 32, "files": [bad]},
        )
    job = Job.objects.get()
    assert job.status == "failed" and "bad.jsonl, line 2: malformed JSON" in job.message
    assert "the new corpus 'badjson' was removed" in job.message
    assert not Corpus.objects.exists()
    client.get(reverse("workbench:project", kwargs={"slug": project.slug}))  # consumes the "created" flash message
    pages = (("project", "badjson</a> ·"), ("export", "<td>badjson</td>"), ("indexes", ">badjson</option>"))
    for name, shown in pages:
        assert shown not in client.get(reverse(f"workbench:{name}", kwargs={"slug": project.slug})).content.decode()
    make_corpus(project, name="badjson")  # the same checks do see a corpus that exists
    for name, shown in pages:
        assert shown in client.get(reverse(f"workbench:{name}", kwargs={"slug": project.slug})).content.decode()


def test_new_corpus_upload_refused_before_queueing_creates_no_corpus(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    client.force_login(project.memberships.get().user)
    client.post(
        reverse("workbench:corpus_new", kwargs={"slug": project.slug}),
        {"name": "c", "chunk_size": 224, "chunk_overlap": 32, "files": [SimpleUploadedFile("e.jsonl", b"")]},
    )
    assert not Corpus.objects.exists() and not Job.objects.exists()


def test_failed_import_into_a_filled_corpus_keeps_it(tmp_path: Path) -> None:
    _, corpus = _setup(tmp_path)
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(ImportFileError) as info:
        corpus_import(corpus=corpus, files=_f(tmp_path / "bad.jsonl"), user=None)
    assert "removed" not in str(info.value) and Corpus.objects.filter(pk=corpus.pk).exists()


def _index_row(corpus: Corpus) -> IndexVersion:
    encoder = ModelVersion.objects.create(
        project=corpus.project, name="enc", kind="bi_encoder", source="registered", path="/x"
    )
    return IndexVersion.objects.create(
        project=corpus.project, corpus=corpus, corpus_version=1, encoder=encoder, number=1, index_type="flat",
        path="/nowhere", passage_count=1, build_seconds=0.1,
    )  # fmt: skip


def test_corpus_delete_allowed_when_nothing_depends_on_it(tmp_path: Path) -> None:
    project, corpus = _setup(tmp_path)
    (tmp_path / "t.tsv").write_text("q1\td1\t1\n")
    qrels_import(project=project, corpus=corpus, files=_f(tmp_path / "t.tsv"), user=None)
    corpus_delete(corpus=corpus, by=None)
    assert not Corpus.objects.exists() and not Document.objects.exists() and not Judgment.objects.exists()
    assert Query.objects.count() == 2  # queries belong to the project, not the corpus


def test_corpus_delete_refused_naming_what_depends_on_it(tmp_path: Path) -> None:
    project, corpus = _setup(tmp_path)
    _index_row(corpus)
    Judgment.objects.create(
        project=project, query=Query.objects.get(external_id="q1"), document=Document.objects.get(external_id="d1"),
        grade=2, source=Judgment.Source.ANNOTATOR,
    )  # fmt: skip
    with pytest.raises(WorkbenchError, match=r"cannot be deleted: 1 index version, 1 judgment by annotators"):
        corpus_delete(corpus=corpus, by=None)
    assert Corpus.objects.filter(pk=corpus.pk).exists() and Document.objects.count() == 2


def test_corpus_delete_button_post_only_for_ml_leads(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD, ann=Role.ANNOTATOR)
    project, corpus = _setup(tmp_path, project)
    url = reverse("workbench:corpus_delete", kwargs={"slug": project.slug, "pk": corpus.pk})
    page = reverse("workbench:corpus", kwargs={"slug": project.slug, "pk": corpus.pk})
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    assert "Delete corpus" not in client.get(page).content.decode()
    assert client.post(url).status_code == 403
    client.force_login(project.memberships.get(role=Role.ML_LEAD).user)
    html = client.get(page).content.decode()
    assert "Delete corpus" in html and "return confirm(" in html and "csrfmiddlewaretoken" in html
    assert client.get(url).status_code == 405
    index = _index_row(corpus)
    response = client.post(url, follow=True)
    assert "cannot be deleted: 1 index version" in response.content.decode() and Corpus.objects.exists()
    index.delete()
    response = client.post(url)
    assert response.status_code == 302 and not Corpus.objects.exists()


# --- shell commands ------------------------------------------------------------------------------------------------


def test_import_beir_create_project(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir", DOCS[:1], QUERIES[:1], {"test": [("q1", "d1", 1)]})
    with pytest.raises(CommandError, match=r"No project with slug 'fresh' \(add --create-project to create it\)"):
        call_command("import_beir", str(folder), "--project", "fresh", "--corpus", "c")
    out = io.StringIO()
    call_command("import_beir", str(folder), "--project", "fresh", "--create-project", "--corpus", "c", stdout=out)
    project = Project.objects.get(slug="fresh")
    assert project.name == "fresh" and not project.memberships.exists() and "no members yet" in out.getvalue()
    owner = make_user("olga")
    call_command(
        "import_beir", str(folder), "--project", "owned", "--create-project", "--project-name", "Owned one",
        "--owner", "olga", "--corpus", "c", stdout=io.StringIO(),
    )  # fmt: skip
    owned = Project.objects.get(slug="owned")
    assert owned.name == "Owned one" and Membership.objects.get(project=owned).user == owner
    assert Membership.objects.get(project=owned).role == Role.ADMIN


def test_failed_import_with_create_project_leaves_no_project(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir", DOCS[:1], QUERIES[:1], {"test": [("q1", "nope", 1)]})
    with pytest.raises(CommandError, match="unknown document id 'nope'"):
        call_command("import_beir", str(folder), "--project", "fresh", "--create-project", "--corpus", "c")
    assert not Project.objects.exists() and not Corpus.objects.exists()
    with pytest.raises(CommandError, match="not a slug"):
        call_command("import_beir", str(folder), "--project", "Not A Slug", "--create-project", "--corpus", "c")


OUR_APPS = ("workbench", "evaluation", "labeling", "training", "releases")


@pytest.mark.parametrize("name", sorted(n for n, app in get_commands().items() if app in OUR_APPS))
def test_every_argument_of_our_commands_has_help(name: str) -> None:
    command = load_command_class(get_commands()[name], name)
    parser = command.create_parser("manage.py", name)
    assert command.help
    own = [a for a in parser._actions if a.dest not in {"help", "version", "verbosity", "settings", "pythonpath",
           "traceback", "no_color", "force_color", "skip_checks"}]  # fmt: skip
    missing = [a.option_strings[0] if a.option_strings else a.dest for a in own if not (a.help or "").strip()]
    assert not missing, f"{name}: no help for {missing}"
    if "user" in {a.dest for a in own} and name == "evaluate":
        assert "importer" not in next(a.help for a in own if a.dest == "user")


def test_help_texts_of_chunking_options_are_shown(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        call_command("import_beir", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "tokens per passage" in text and "tokens shared by consecutive passages" in text
    assert "--create-project" in text and "--grade-map" in text


def test_judgments_import_form_maps_grades_through_the_job(
    client, tmp_path: Path, eager_celery, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    project, corpus = _setup(tmp_path, make_project(lead=Role.ML_LEAD))
    client.force_login(project.memberships.get().user)
    url = reverse("workbench:qrels_import", kwargs={"slug": project.slug})

    def post(**fields: object) -> Job:
        qrels = SimpleUploadedFile("test.tsv", b"q1\td1\t4\nq2\td2\t-1\n")
        with django_capture_on_commit_callbacks(execute=True):
            client.post(url, {"corpus": corpus.pk, "files": [qrels], **fields})
        return Job.objects.filter(kind="import_qrels").order_by("-id").first()

    refused = post()
    assert refused.status == "failed" and "test.tsv, line 1: grade 4 is outside" in refused.message
    assert not Judgment.objects.exists()
    post(grade_map="4 to 3")  # not FROM:TO: the form refuses it and no job starts
    assert Job.objects.filter(kind="import_qrels").count() == 1
    job = post(grade_map="4:3", clip="on")
    assert job.status == "succeeded", job.message
    assert job.result["grade_mapping"] == {"-1→0 (clipped)": 1, "4→3": 1} and "Mapped 2 grades" in job.message
    assert sorted(Judgment.objects.values_list("grade", flat=True)) == [0, 3]
