"""Index builds, search page, JSON API and latency page, with a tiny encoder built from a config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from tests.factories import make_corpus, make_indexed_project, make_project, make_user
from workbench.errors import WorkbenchError
from workbench.models import IndexVersion, Job, ModelVersion, Role, SearchLog
from workbench.retrieval.faiss_index import load_dense_index
from workbench.retrieval.vector_reuse import earlier_vectors
from workbench.services import configurations, indexes, projects

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """A project with a SciFact slice, a tiny registered encoder and one Flat index built through the job, serving
    that index in hybrid mode (as an ML lead would set it up)."""
    built = make_indexed_project(scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks)
    project, lead, _, _, index = built
    draft = configurations.search_configuration_draft(project=project, index=index, mode="hybrid", name="served")
    configurations.serving_set(
        project=project, configuration=configurations.search_configuration_create(configuration=draft, user=lead),
        user=lead,
    )  # fmt: skip
    return built


def test_index_build_records_a_version_with_manifest(built) -> None:  # type: ignore[no-untyped-def]
    _, _, corpus, encoder, index = built
    assert index.number == 1 and index.encoder == encoder and index.index_type == "flat"
    assert index.passage_count == corpus.passages.count()
    assert Path(index.path, "manifest.json").is_file()
    manifest = json.loads(Path(index.path, "manifest.json").read_text())
    assert manifest["corpus_version"] == corpus.version and manifest["encoder_version_id"] == encoder.pk
    assert index.build_seconds > 0 and index.embed_rate > 0
    job = Job.objects.get(kind="index_build")
    assert "embedding" in job.log_tail or "embedded" in job.log_tail


def test_register_rejects_non_model_and_detects_cross_encoder(tiny_cross_encoder_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hi")
    with pytest.raises(WorkbenchError, match="not a sentence-transformers"):
        indexes.model_register(project=project, path=str(tmp_path / "junk"), name="junk", user=None)
    with pytest.raises(WorkbenchError, match="does not exist"):
        indexes.model_register(project=project, path=str(tmp_path / "nope"), name="nope", user=None)
    cross = indexes.model_register(project=project, path=str(tiny_cross_encoder_path), name="ce", user=None)
    assert cross.kind == ModelVersion.Kind.CROSS_ENCODER
    assert not ModelVersion.objects.filter(name__in=["junk", "nope"]).exists()


def test_bad_index_parameters_are_refused_without_a_job(built) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, encoder, _ = built
    with pytest.raises(WorkbenchError, match=r"nprobe \(64\) cannot exceed nlist \(8\)"):
        indexes.index_build_start(
            project=project, corpus=corpus, encoder=encoder, index_type="ivfpq",
            params={"nlist": 8, "nprobe": 64, "pq_m": 8}, user=lead,
        )  # fmt: skip
    empty = make_corpus(project, name="empty")
    with pytest.raises(WorkbenchError, match="has no passages"):
        indexes.index_build_start(
            project=project, corpus=empty, encoder=encoder, index_type="auto", params={}, user=lead
        )
    assert Job.objects.filter(kind="index_build").count() == 1


def test_search_page_shows_ranked_results_judgments_and_timings(client, built) -> None:  # type: ignore[no-untyped-def]
    project, _, _, _, index = built
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    query = project.queries.filter(judgments__isnull=False).first()
    url = reverse("workbench:search", kwargs={"slug": project.slug})
    html = client.get(url, {"q": query.text, "index": index.pk, "mode": "hybrid", "k": 20}).content.decode()
    assert "Answered by custom settings" in html and "embed" in html and "bm25" in html
    assert f"<strong>{query.external_id}</strong></a>: judgments shown" in html  # linked to the query page
    assert "grade 1" in html or "unjudged" in html
    partial = client.get(url, {"q": "cells", "mode": "bm25"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "<mark>" in partial.lower()
    assert SearchLog.objects.filter(via="ui").count() == 2


def test_search_page_escapes_document_text(client, built) -> None:  # type: ignore[no-untyped-def]
    project, _, corpus, _, _ = built
    passage = corpus.passages.first()
    passage.text = "<script>alert('x')</script> cells"
    passage.save()
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    html = client.get(
        reverse("workbench:search", kwargs={"slug": project.slug}), {"q": "<b>cells</b>", "mode": "bm25", "k": 100}
    ).content.decode()
    assert "<script>alert" not in html and "<b>cells" not in html


def test_api_search_with_token(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = built
    key = projects.api_token_create(user=lead, name="ci")
    url = reverse("api:search", kwargs={"slug": project.slug})
    response = client.post(
        url, json.dumps({"q": "cells", "mode": "hybrid", "k": 5, "index": index.pk}), content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"]) == 5 and body["results"][0]["rank"] == 1
    assert set(body["timings_ms"]) >= {"embed", "dense", "bm25", "fuse", "total"}
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert SearchLog.objects.get(via="api").index == index


@pytest.mark.parametrize(
    "params,status,message",
    [
        ({"q": "cells", "colour": "red", "filters": {"colour": "red"}}, 400, "Unknown filter colour"),
        ({"q": "cells", "index": 999999}, 404, "No index 999999"),
        ({"q": "cells", "rerank": 999999}, 404, "No trained reranker"),
        ({"q": "   "}, 400, "empty"),
    ],
)
def test_api_bad_input_is_refused_with_message(client, built, params, status, message) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, _ = built
    key = projects.api_token_create(user=lead, name="ci")
    response = client.post(
        reverse("api:search", kwargs={"slug": project.slug}), json.dumps(params), content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )  # fmt: skip
    assert response.status_code == status and message in response.json()["error"], response.content
    assert not SearchLog.objects.exists()


@pytest.mark.parametrize(
    "params,field,message",
    [
        ({"q": "x" * 100_000}, "q", "at most 10000 characters"),
        ({"q": ""}, "q", "at least 1 character"),
        ({"q": "cells", "mode": "magic"}, "mode", "Input should be 'dense', 'bm25' or 'hybrid'"),
        ({"q": "cells", "k": 0}, "k", "greater than or equal to 1"),
        ({"q": "cells", "k": "ten"}, "k", "Input should be a valid integer"),
        ({"q": "cells", "alpha": 2}, "alpha", "less than or equal to 1"),
        ({"q": "cells", "date_from": "last week"}, "date_from", "valid date"),
        ({"q": "cells", "filters": {"tenant": ["a"]}}, "filters.tenant", "valid string"),
    ],
)
def test_api_invalid_fields_are_400_field_by_field(client, built, params, field, message) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, _ = built
    key = projects.api_token_create(user=lead, name="ci")
    response = client.post(
        reverse("api:search", kwargs={"slug": project.slug}), json.dumps(params), content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )  # fmt: skip
    body = response.json()
    assert response.status_code == 400 and body["error"] == "invalid request", body
    assert message in body["fields"][field], body
    assert not SearchLog.objects.exists()


def test_api_auth_and_membership(client, built) -> None:  # type: ignore[no-untyped-def]
    project, _, _, _, _ = built
    url = reverse("api:search", kwargs={"slug": project.slug})
    assert client.get(url, {"q": "cells"}).status_code == 401
    assert client.get(url, {"q": "cells"}, HTTP_AUTHORIZATION="Token wrong").status_code == 401
    outsider_key = projects.api_token_create(user=make_user(), name="x")
    assert client.get(url, {"q": "cells"}, HTTP_AUTHORIZATION=f"Token {outsider_key}").status_code == 404
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    assert client.get(url, {"q": "cells", "mode": "bm25"}).status_code == 200  # session auth works for GET
    assert client.get(reverse("api:indexes", kwargs={"slug": project.slug})).json()["indexes"][0]["passages"] > 0


def test_filters_restrict_results(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, _, _ = built
    doc = corpus.documents.order_by("id").first()
    doc.tenant = "acme"
    doc.save()
    key = projects.api_token_create(user=lead, name="ci")
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}),
        {"q": doc.title, "tenant": "acme", "k": 10, "mode": "dense"},
        HTTP_AUTHORIZATION=f"Token {key}",
    ).json()
    assert body["results"] and {r["document_id"] for r in body["results"]} == {doc.external_id}


def test_latency_page_percentiles(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = built
    for ms in range(1, 101):
        SearchLog.objects.create(
            project=project, index=index, mode="dense", timings_ms={"embed": ms, "total": ms}, total_ms=ms
        )
    client.force_login(lead)
    html = client.get(reverse("workbench:latency", kwargs={"slug": project.slug})).content.decode()
    assert "100 searches" in html and "50.50" in html and "95.05" in html


def test_index_delete_removes_directory_and_row(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = built
    client.force_login(lead)
    url = reverse("workbench:index_delete", kwargs={"slug": project.slug, "pk": index.pk})
    refused = client.post(url, follow=True).content.decode()  # the served configuration still names it
    assert "still used by search configurations" in refused and IndexVersion.objects.filter(pk=index.pk).exists()
    project.serving.delete()
    project.search_configurations.all().delete()
    response = client.post(url)
    assert response.status_code == 302 and not IndexVersion.objects.exists() and not Path(index.path).exists()


def test_untrained_cross_encoder_is_not_offered(client, built, tiny_cross_encoder_path) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, _ = built
    ce = indexes.model_register(project=project, path=str(tiny_cross_encoder_path), name="fresh-head", user=lead)
    ce.usable_for_search = False
    ce.save()
    client.force_login(lead)
    html = client.get(reverse("workbench:search", kwargs={"slug": project.slug})).content.decode()
    assert "fresh-head" not in html


def test_reranking_through_api(client, built, tiny_cross_encoder_path) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, _ = built
    ce = indexes.model_register(project=project, path=str(tiny_cross_encoder_path), name="ce", user=lead)
    key = projects.api_token_create(user=lead, name="ci")
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}),
        {"q": "cells", "rerank": ce.pk, "rerank_top_n": 20, "k": 5}, HTTP_AUTHORIZATION=f"Token {key}",
    ).json()  # fmt: skip
    assert body["reranker"] == "ce" and body["timings_ms"]["rerank"] > 0
    assert all(r["scores"]["rerank"] is not None for r in body["results"])


@pytest.mark.parametrize(
    "params,message",
    [
        ({"q": "cells", "index": 999999}, "No index 999999"),
        ({"q": "cells", "index": "{index}", "rerank": 999999}, "No trained reranker"),
        ({"q": "cells", "configuration": 999999}, "No search configuration 999999"),
    ],
)
def test_api_unknown_objects_are_404(client, built, params, message) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = built
    key = projects.api_token_create(user=lead, name="ci")
    params = {k: (index.pk if v == "{index}" else v) for k, v in params.items()}
    response = client.post(
        reverse("api:search", kwargs={"slug": project.slug}), json.dumps(params), content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )  # fmt: skip
    assert response.status_code == 404 and message in response.json()["error"]
    assert not SearchLog.objects.exists()


def test_the_served_configuration_answers_not_the_newest_index(client, built, tiny_encoder_path) -> None:  # type: ignore[no-untyped-def]
    """A new index (here of a 1-document scratch corpus) never becomes what the API answers by itself."""
    project, lead, _corpus, encoder, index = built
    scratch = make_corpus(project, name="scratch")
    from workbench.services.imports import InputFile, corpus_import

    folder = Path(index.path).parent / "scratch-src"
    folder.mkdir()
    (folder / "c.jsonl").write_text('{"_id": "s1", "title": "Scratch", "text": "cells cells cells"}\n')
    corpus_import(corpus=scratch, files=[InputFile.checked(folder / "c.jsonl", "c.jsonl")], user=lead)
    IndexVersion.objects.filter(pk=index.pk).update(created_at="2000-01-01T00:00:00Z")  # make it the older one
    newer = IndexVersion.objects.create(
        project=project, corpus=scratch, corpus_version=1, encoder=encoder, number=1, index_type="flat",
        path=index.path, passage_count=1, build_seconds=0.0,
    )  # fmt: skip
    key = projects.api_token_create(user=lead, name="ci")
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}), {"q": "cells", "k": 3}, HTTP_AUTHORIZATION=f"Token {key}"
    ).json()
    served = project.serving.configuration
    assert body["configuration"] == {
        "id": served.pk,
        "name": "served",
        "served": True,
        "description": served.describe(),
    }
    assert body["index"]["id"] == index.pk != newer.pk
    log = SearchLog.objects.get()
    assert log.configuration == served and log.served and log.index == index


def test_no_served_configuration_is_a_clear_error(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = built
    project.serving.delete()
    key = projects.api_token_create(user=lead, name="ci")
    url = reverse("api:search", kwargs={"slug": project.slug})
    response = client.get(url, {"q": "cells"}, HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 400 and "serves no search configuration" in response.json()["error"]
    explicit = client.get(url, {"q": "cells", "index": index.pk, "mode": "bm25"}, HTTP_AUTHORIZATION=f"Token {key}")
    answered = explicit.json()["configuration"]
    assert explicit.status_code == 200 and answered["description"] == "scifact v1 (tiny) · bm25"
    assert (answered["id"], answered["name"], answered["served"]) == (None, None, False)
    assert SearchLog.objects.get().configuration is None


def test_saved_configuration_by_id_and_page(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = built
    client.force_login(lead)
    url = reverse("workbench:configurations", kwargs={"slug": project.slug})
    response = client.post(url, {"name": "bm25 only", "index": index.pk, "mode": "bm25", "alpha": 0.5,
                                 "fusion_depth": 100, "rerank_top_n": 50})  # fmt: skip
    assert response.status_code == 302
    saved = project.search_configurations.get(name="bm25 only")
    again = client.post(url, {"name": "bm25 only", "index": index.pk, "mode": "dense", "alpha": 0.5,
                              "fusion_depth": 100, "rerank_top_n": 50})  # fmt: skip
    assert "already exists" in again.content.decode()
    bad = client.post(url, {"name": "x", "index": index.pk, "mode": "hybrid", "alpha": 3, "fusion_depth": 100,
                            "rerank_top_n": 50})  # fmt: skip
    assert (
        "alpha must be between 0 and 1" in bad.content.decode()
        and not project.search_configurations.filter(name="x").exists()
    )
    html = client.get(reverse("workbench:search", kwargs={"slug": project.slug}),
                      {"q": "cells", "configuration": saved.pk}).content.decode()  # fmt: skip
    assert "Answered by <strong>bm25 only</strong>" in html
    page = client.get(url).content.decode()
    assert "served</span>" in page and "bm25 only" in page
    client.post(reverse("workbench:configuration_serve", kwargs={"slug": project.slug, "pk": saved.pk}))
    assert project.serving.__class__.objects.get(project=project).configuration == saved
    # What is served, or what an evaluation used, cannot be deleted; the message says why.
    client.post(reverse("workbench:configuration_delete", kwargs={"slug": project.slug, "pk": saved.pk}))
    assert project.search_configurations.filter(pk=saved.pk).exists()


def test_serving_refuses_what_cannot_load_and_keeps_the_previous(client, built, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, encoder, _index = built
    before = project.serving.configuration
    broken_index = IndexVersion.objects.create(
        project=project, corpus=corpus, corpus_version=corpus.version, encoder=encoder, number=9, index_type="flat",
        path=str(tmp_path / "gone"), passage_count=1, build_seconds=0.0,
    )  # fmt: skip
    broken = configurations.search_configuration_create(
        configuration=configurations.search_configuration_draft(project=project, index=broken_index, name="b"),
        user=lead,
    )
    with pytest.raises(WorkbenchError, match="cannot be loaded"):
        configurations.serving_set(project=project, configuration=broken, user=lead)
    project.refresh_from_db()
    assert project.serving.configuration == before


def test_cold_start_is_a_stage_and_warming_removes_it(client, built) -> None:  # type: ignore[no-untyped-def]
    from workbench.services.engines import engine_cache_drop

    project, lead, _, _, index = built
    key = projects.api_token_create(user=lead, name="ci")
    url = reverse("api:search", kwargs={"slug": project.slug})
    engine_cache_drop(index)
    cold = client.get(url, {"q": "cells"}, HTTP_AUTHORIZATION=f"Token {key}").json()["timings_ms"]
    assert cold["load"] > 0 and cold["total"] >= cold["load"]
    engine_cache_drop(index)
    assert configurations.serving_warm_all() == [f"{project.slug}: served"]
    warm = client.get(url, {"q": "cells"}, HTTP_AUTHORIZATION=f"Token {key}").json()["timings_ms"]
    assert warm["load"] == 0


def test_canary_is_sticky_per_caller_and_shadow_only_logs(client, built, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from workbench.services import search as search_service

    monkeypatch.setattr(search_service, "SHADOW_INLINE", True)
    project, lead, _, _, index = built
    active = project.serving.configuration
    candidate = configurations.search_configuration_create(
        configuration=configurations.search_configuration_draft(project=project, index=index, mode="bm25", name="c"),
        user=lead,
    )
    with pytest.raises(WorkbenchError, match="between 0 and 100"):
        configurations.serving_set(project=project, configuration=active, user=lead, canary=candidate, canary_share=101)
    configurations.serving_set(project=project, configuration=active, user=lead, canary=candidate, canary_share=50)
    arms = {c: configurations.served_arm(project, f"user:{c}")[1] for c in range(200)}
    assert set(arms.values()) == {"active", "canary"} and 60 < list(arms.values()).count("canary") < 140
    assert all(configurations.served_arm(project, f"user:{c}")[1] == arm for c, arm in arms.items())  # sticky
    configurations.serving_set(project=project, configuration=active, user=lead, shadow=candidate)
    key = projects.api_token_create(user=lead, name="ci")
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}), {"q": "cells"}, HTTP_AUTHORIZATION=f"Token {key}"
    ).json()
    assert body["configuration"]["id"] == active.pk
    logs = {row.arm: row for row in SearchLog.objects.all()}
    assert set(logs) == {"active", "shadow"} and logs["shadow"].configuration == candidate
    assert logs["active"].top_score is not None and 0.0 <= logs["shadow"].overlap_at_10 <= 1.0
    assert logs["active"].overlap_at_10 is None


def test_overlap_at_10() -> None:
    from workbench.services.search import overlap_at_10

    assert overlap_at_10(list(range(10)), list(range(5, 20))) == 0.5
    assert overlap_at_10([1, 2], [2, 3]) == 0.5 and overlap_at_10([], [1]) == 1.0


def test_model_and_index_pages_never_write_on_get(client, built) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project, lead, _, _, _ = built
    ModelVersion.objects.filter(project=project, source="builtin").delete()
    client.force_login(lead)
    for name in ("workbench:models", "workbench:indexes"):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(name, kwargs={"slug": project.slug})).status_code == 200
        writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
        assert not writes, writes
    page = client.get(reverse("workbench:models", kwargs={"slug": project.slug})).content.decode()
    assert "Register the base encoder" in page
    client.post(reverse("workbench:models", kwargs={"slug": project.slug}), {"register_base": "1"})
    assert ModelVersion.objects.filter(project=project, source="builtin").count() == 1


def _build_from_page(client, project, corpus, encoder, capture, **fields):  # type: ignore[no-untyped-def]
    """Post the indexes page's build form as an ML lead would (ticked boxes are sent, unticked ones are not)."""
    data = {"corpus": corpus.pk, "encoder": encoder.pk, "index_type": "hnsw", "hnsw_m": 8, "ef_construction": 16,
            "ef_search": 32, **fields}  # fmt: skip
    with capture(execute=True):
        response = client.post(reverse("workbench:indexes", kwargs={"slug": project.slug}), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.filter(kind="index_build").latest("pk")
    assert job.status == "succeeded", (job.message, job.log_tail)
    return IndexVersion.objects.get(job=job), job


def test_a_rebuild_reuses_the_vectors_of_unchanged_passages(client, built, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, encoder, first = built
    n = corpus.passages.count()
    assert first.reused_vectors == 0 and first.manifest["parameters"]["reused_from"] is None  # nothing to reuse yet
    client.force_login(lead)
    page = client.get(reverse("workbench:indexes", kwargs={"slug": project.slug})).content.decode()
    assert 'name="reuse_vectors"' in page and "Reuse vectors of unchanged passages" in page
    capture = django_capture_on_commit_callbacks

    hnsw, job = _build_from_page(client, project, corpus, encoder, capture, reuse_vectors="on")
    assert hnsw.reused_vectors == n and hnsw.embed_rate is None
    assert f"reused the vectors of {n:,} of {n:,} passages from scifact v1" in job.log_tail

    passage = corpus.passages.order_by("pk").first()
    passage.text = "An added first sentence changes this passage. " + passage.text  # first: past max length is cut
    passage.save()
    edited, job = _build_from_page(client, project, corpus, encoder, capture, reuse_vectors="on")
    assert edited.reused_vectors == n - 1 and f"from scifact v{hnsw.number}" in job.log_tail
    assert "embedding 1 passages" in job.log_tail
    # The edited passage got a fresh vector, the others the earlier index's own.
    dense = load_dense_index(edited.path)
    lent, _ = earlier_vectors(hnsw.path, label="hnsw")
    rows, found = dense.row_positions(np.asarray([passage.pk]))
    old_rows, _ = lent.dense.row_positions(np.asarray([passage.pk]))
    assert found.all()
    assert not np.array_equal(dense.stored_vectors()[rows[0]], lent.matrix[old_rows[0]])
    other = corpus.passages.order_by("pk")[1]
    rows, _ = dense.row_positions(np.asarray([other.pk]))
    old_rows, _ = lent.dense.row_positions(np.asarray([other.pk]))
    np.testing.assert_array_equal(dense.stored_vectors()[rows[0]], lent.matrix[old_rows[0]])

    detail = client.get(reverse("workbench:index", kwargs={"slug": project.slug, "pk": edited.pk})).content.decode()
    assert f"{n - 1:,} passages and" in detail and f"from scifact v{hnsw.number}" in detail
    listing = client.get(reverse("workbench:indexes", kwargs={"slug": project.slug})).content.decode()
    assert f"{n - 1:,} vectors reused" in listing

    afresh, job = _build_from_page(client, project, corpus, encoder, capture)  # the box unticked
    assert afresh.reused_vectors == 0 and afresh.embed_rate > 0 and "reused" not in job.log_tail


def test_a_vanished_earlier_index_means_embedding_all(client, built, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, encoder, first = built
    shutil.rmtree(first.path)
    client.force_login(lead)
    again, job = _build_from_page(client, project, corpus, encoder, django_capture_on_commit_callbacks,
                                  reuse_vectors="on")  # fmt: skip
    assert again.reused_vectors == 0 and again.passage_count == corpus.passages.count()
    assert "not reusing vectors: scifact v1 could not be read" in job.log_tail
