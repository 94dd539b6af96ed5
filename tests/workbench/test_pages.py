"""Browser flows on the database: upload files, follow the job, browse and search, import queries and qrels, export."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import make_corpus, make_project, make_user
from workbench.models import Corpus, Document, Job, Judgment, Query, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead_client(client):  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD, ann=Role.ANNOTATOR)
    client.force_login(project.memberships.get(role=Role.ML_LEAD).user)
    return client, project


def _jsonl(name: str, rows: list[dict]) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, "".join(json.dumps(r) + "\n" for r in rows).encode())


def test_empty_project_shows_first_step(lead_client) -> None:  # type: ignore[no-untyped-def]
    client, project = lead_client
    html = client.get(reverse("workbench:project", kwargs={"slug": project.slug})).content.decode()
    assert "First step: upload a corpus" in html


def test_create_corpus_by_uploading_several_files(
    lead_client, eager_celery, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    client, project = lead_client
    files = [
        _jsonl(
            "corpus.jsonl",
            [{"_id": "d1", "title": "T", "text": "Aspirin <b>reduces</b> fever.", "metadata": {"tenant": "acme"}}],
        ),
        SimpleUploadedFile("notes.md", b"# Notes\n\nStatins lower LDL."),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("workbench:corpus_new", kwargs={"slug": project.slug}),
            {"name": "Clinical", "chunk_size": 128, "chunk_overlap": 16, "files": files},
        )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/jobs/{job.pk}/")
    job.refresh_from_db()
    assert job.status == "succeeded", job.message
    assert job.result["documents"] == 2
    corpus = Corpus.objects.get(name="Clinical")
    assert corpus.chunk_size == 128
    page = client.get(reverse("workbench:job", kwargs={"slug": project.slug, "pk": job.pk})).content.decode()
    assert "Succeeded" in page and "Imported 2 documents" in page
    # Browse and search; document text is escaped, never rendered as markup.
    listing = client.get(reverse("workbench:corpus", kwargs={"slug": project.slug, "pk": corpus.pk}), {"q": "aspirin"})
    html = listing.content.decode()
    assert "d1" in html and "notes.md" not in html and "&lt;b&gt;reduces&lt;/b&gt;" in html
    doc = Document.objects.get(external_id="d1")
    detail = client.get(reverse("workbench:document", kwargs={"slug": project.slug, "pk": doc.pk})).content.decode()
    assert "&lt;b&gt;reduces" in detail and "<b>reduces" not in detail
    partial = client.get(
        reverse("workbench:corpus", kwargs={"slug": project.slug, "pk": corpus.pk}),
        {"q": "statins"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="doc-results",
    )
    assert "<html" not in partial.content.decode() and "notes.md" in partial.content.decode()


def test_failed_import_job_shows_file_and_line(lead_client, eager_celery, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    client, project = lead_client
    corpus = make_corpus(project)
    bad = SimpleUploadedFile("bad.jsonl", b'{"_id": "a", "text": "fine"}\nnot json\n')
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("workbench:corpus_upload", kwargs={"slug": project.slug, "pk": corpus.pk}), {"files": [bad]}
        )
    job = Job.objects.get()
    assert job.status == "failed" and "bad.jsonl, line 2: malformed JSON" in job.message
    assert not Document.objects.exists()
    html = client.get(reverse("workbench:job", kwargs={"slug": project.slug, "pk": job.pk})).content.decode()
    # A malformed file is a permanent failure: retrying the same bytes cannot succeed, so no Retry is offered.
    assert "bad.jsonl, line 2" in html and "<button>Retry</button>" not in html and "Retrying cannot fix this" in html
    assert not job.retryable


def test_import_queries_and_qrels_then_export(lead_client, eager_celery, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    client, project = lead_client
    corpus = make_corpus(project)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("workbench:corpus_upload", kwargs={"slug": project.slug, "pk": corpus.pk}),
            {"files": [_jsonl("c.jsonl", [{"_id": "d1", "text": "x"}, {"_id": "d2", "text": "y"}])]},
        )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("workbench:queries_import", kwargs={"slug": project.slug}),
            {"files": [SimpleUploadedFile("q.csv", b"id,text\nq1,first\nq2,second\n")], "tags": "golden, faq"},
        )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("workbench:qrels_import", kwargs={"slug": project.slug}),
            {"corpus": corpus.pk, "files": [SimpleUploadedFile("test.tsv", b"q1\td1\t2\nq2\td2\t1\n")]},
        )
    assert [j.status for j in Job.objects.order_by("id")] == ["succeeded"] * 3
    assert Query.objects.filter(tags__name="golden").count() == 2
    assert Judgment.objects.filter(split="test").count() == 2
    html = client.get(reverse("workbench:queries", kwargs={"slug": project.slug}), {"tag": "test"}).content.decode()
    assert "first" in html and "held out" in html
    response = client.get(
        reverse("workbench:export", kwargs={"slug": project.slug}), {"corpus": corpus.pk, "format": "beir"}
    )
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["corpus.jsonl", "qrels/test.tsv", "queries.jsonl"]
    assert archive.read("qrels/test.tsv").decode().splitlines()[1:] == ["q1\td1\t2", "q2\td2\t1"]


def test_members_page_adds_and_changes_roles(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(boss=Role.ADMIN)
    make_user("newbie")
    client.force_login(project.memberships.get().user)
    url = reverse("workbench:members", kwargs={"slug": project.slug})
    assert client.post(url, {"username": "newbie", "role": "reviewer"}).status_code == 302
    assert client.post(url, {"username": "newbie", "role": "annotator"}).status_code == 302
    assert project.memberships.get(user__username="newbie").role == "annotator"
    response = client.post(url, {"username": "ghost", "role": "reviewer"})
    assert "No user called" in response.content.decode()
    only_admin = project.memberships.get(user__username="boss")
    client.post(reverse("workbench:member_remove", kwargs={"slug": project.slug, "pk": only_admin.pk}))
    assert project.memberships.filter(user__username="boss").exists()  # the last admin stays
