"""What a new user trips on (issue 12): dashboard, query page, error pages, per-document search, readable fields."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from tests.evaluation.factories import make_finished_eval
from tests.factories import make_corpus, make_indexed_project, make_project, make_user
from workbench import selectors
from workbench.forms import IndexBuildForm
from workbench.models import Job, Membership, ModelVersion, Query, Role
from workbench.services import configurations, projects
from workbench.services.search import hits_by_document, per_document_depth

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    built = make_indexed_project(scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks)
    project, lead, _, _, index = built
    draft = configurations.search_configuration_draft(project=project, index=index, mode="hybrid", name="served")
    saved = configurations.search_configuration_create(configuration=draft, user=lead)
    configurations.serving_set(project=project, configuration=saved, user=lead)
    return built


def _url(name: str, project, **kwargs) -> str:  # type: ignore[no-untyped-def]
    return reverse(name, kwargs={"slug": project.slug, **kwargs})


# --- home page ------------------------------------------------------------------------------------------------------


def test_members_column_counts_every_member_not_what_the_viewer_sees(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(ann=Role.ANNOTATOR, lead=Role.ML_LEAD, boss=Role.ADMIN)
    annotator = project.memberships.get(role=Role.ANNOTATOR).user
    assert selectors.projects_for_user(annotator).get().n_members == 3
    client.force_login(annotator)
    html = client.get(reverse("workbench:home")).content.decode()
    assert '<td class="num">3</td>' in html and "Annotator" in html


# --- dashboard ------------------------------------------------------------------------------------------------------


def test_dashboard_next_step_for_an_ml_lead_with_a_corpus_and_no_index(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD, ann=Role.ANNOTATOR)
    corpus = make_corpus(project, name="papers")
    from tests.evaluation.factories import make_doc

    make_doc(corpus, "d1")
    client.force_login(project.memberships.get(role=Role.ML_LEAD).user)
    html = client.get(_url("workbench:project", project)).content.decode()
    assert 'data-testid="next-step"' in html and "Next step: build an index" in html
    assert f'href="{_url("workbench:indexes", project)}#build"' in html
    # Placeholders of stages that do not exist yet say so and link nowhere.
    assert 'data-stage="training" data-state="waiting"' in html  # the training app's own stage
    assert 'data-stage="labeling" data-state="waiting"' in html  # the labeling app's own stage
    assert 'data-stage="releases" data-state="waiting"' in html  # the releases app's own stage

    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    html = client.get(_url("workbench:project", project)).content.decode()
    assert "Build an index" not in html and "An ML lead or admin of this project can do this." in html


def test_dashboard_shows_index_serving_and_evaluation(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, _index = built
    make_finished_eval(project, lead)
    client.force_login(lead)
    html = client.get(_url("workbench:project", project)).content.decode()
    newest = project.index_versions.order_by("-created_at").first()  # the evaluation made two more
    assert f'href="{_url("workbench:index", project, pk=newest.pk)}"' in html and "3 index versions; newest:" in html
    assert "Served: served" in html
    assert 'data-stage="evaluation" data-state="done"' in html and "Open evaluation #" in html
    # What is left in the loop for an ML lead with an evaluation: propose a release judged by it.
    assert "Next step: propose a release" in html


# --- query page -----------------------------------------------------------------------------------------------------


def test_query_page_shows_judgments_and_a_search_link(client, built) -> None:  # type: ignore[no-untyped-def]
    project, _, _, _, _ = built
    query = Query.objects.filter(project=project, judgments__isnull=False).first()
    judgment = query.judgments.select_related("document").first()
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    queries_html = client.get(_url("workbench:queries", project)).content.decode()
    assert _url("workbench:query_detail", project, pk=query.pk) in queries_html
    html = client.get(_url("workbench:query_detail", project, pk=query.pk)).content.decode()
    assert judgment.document.external_id in html and "Gold grade" in html
    assert f"?q={query.text[:20].replace(' ', '%20')}" in html  # "Search it" prefills the query
    assert "Send to judging" not in html and "not available" not in html  # an annotator starts no campaign
    lead = project.memberships.get(role=Role.ML_LEAD).user
    client.force_login(lead)
    html = client.get(_url("workbench:query_detail", project, pk=query.pk)).content.decode()
    new = _url("labeling:campaign_new", project) + "?query_ids=" + query.external_id
    assert "Send to judging" in html and new in html
    form = client.get(new).content.decode()
    # The new campaign is prefilled with the query.
    assert re.search(rf'id="id_query_ids">\s*{re.escape(query.external_id)}</textarea>', form)


# --- error pages ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False])
def test_403_is_styled_with_the_message_inside_the_layout(client, settings, debug) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = debug
    project = make_project(lead=Role.ML_LEAD)
    client.force_login(project.memberships.get().user)
    response = client.get(_url("workbench:members", project))
    html = response.content.decode()
    assert response.status_code == 403
    assert "Your role (ML lead) cannot do this here." in html
    assert 'class="topbar"' in html and f"Back to {project.name}" in html


def test_404_is_styled_and_reveals_no_project_to_outsiders(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    client.force_login(project.memberships.get().user)
    response = client.get(_url("workbench:job", project, pk=999999))
    assert response.status_code == 404 and 'data-testid="error-404"' in response.content.decode()
    assert f"Back to {project.name}" in response.content.decode()
    client.force_login(make_user("stranger"))
    html = client.get(_url("workbench:project", project)).content.decode()
    assert 'data-testid="error-404"' in html and project.name not in html


def test_an_unknown_address_is_a_styled_404_for_anyone(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404 and "There is nothing at this address." in html and 'class="topbar"' in html


def test_500_page_renders_without_a_request_context() -> None:
    from django.template import loader

    html = loader.get_template("500.html").render()
    assert "Something went wrong on our side" in html


def test_role_refusals_on_post_say_why(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(ann=Role.ANNOTATOR)
    client.force_login(project.memberships.get().user)
    response = client.post(_url("workbench:indexes", project), {})
    assert response.status_code == 403 and "Only ML leads and admins build indexes." in response.content.decode()


# --- index type, readable fields, paths -----------------------------------------------------------------------------


def test_automatic_index_type_is_recorded_as_automatic(
    scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from workbench.services import indexes

    project, lead, corpus, encoder, _ = make_indexed_project(
        scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = indexes.index_build_start(
            project=project, corpus=corpus, encoder=encoder, index_type="auto", params={}, user=lead,
            reuse_vectors=False,  # embedded afresh, so the log names the encoder it embeds with
        )  # fmt: skip
    job = Job.objects.get(pk=job.pk)
    assert job.status == "succeeded", job.log_tail
    assert job.title.endswith("(automatic → flat)") and "reused" not in job.log_tail
    assert "automatic → flat (" in job.log_tail and "chosen by the user" not in job.log_tail
    assert "{" not in job.log_tail and "/" not in job.log_tail.split("passages with ", 1)[1].split("\n")[0]
    index = project.index_versions.get(job=job)
    assert index.manifest["parameters"]["auto_reason"].startswith("automatic → flat (")
    assert index.manifest["parameters"]["requested_index_type"] == "auto"


def test_user_chosen_index_type_says_so(built) -> None:  # type: ignore[no-untyped-def]
    project, *_ = built
    job = Job.objects.get(project=project, kind="index_build")
    assert "flat chosen by the user" in job.log_tail and "Flat (exact)" in job.log_tail


def test_index_page_shows_readable_manifest_and_paths_only_to_admins(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = built
    client.force_login(lead)
    html = client.get(_url("workbench:index", project, pk=index.pk)).content.decode()
    assert "Flat (exact)" in html and "flat chosen by the user" in html
    assert index.path not in html and "{&#x27;" not in html and "{'" not in html
    html = client.get(_url("workbench:models", project)).content.decode()
    model = ModelVersion.objects.get(project=project, name="tiny")
    assert model.path not in html
    boss = make_user("boss")
    Membership.objects.create(project=project, user=boss, role=Role.ADMIN)
    client.force_login(boss)
    assert index.path in client.get(_url("workbench:index", project, pk=index.pk)).content.decode()
    assert model.path in client.get(_url("workbench:models", project)).content.decode()


def test_a_single_choice_starts_selected(built) -> None:  # type: ignore[no-untyped-def]
    project, _, corpus, _encoder, _ = built
    form = IndexBuildForm(project=project)
    html = str(form["corpus"])
    assert "---------" not in html and f'value="{corpus.pk}" selected' in html


# --- one result per document ------------------------------------------------------------------------------------------


def test_hits_by_document_keeps_the_best_passage_and_the_rest_under_more() -> None:
    hits = [
        {"rank": i + 1, "passage_id": pid, "document_pk": doc, "ordinal": o, "text": "t", "score": 1.0 - i / 10}
        for i, (pid, doc, o) in enumerate([(1, 10, 0), (2, 10, 1), (3, 20, 0), (4, 10, 2), (5, 30, 0), (6, 40, 0)])
    ]
    docs = hits_by_document(hits, k=3)
    assert [d["document_pk"] for d in docs] == [10, 20, 30]
    assert [d["rank"] for d in docs] == [1, 2, 3] and docs[2]["passage_rank"] == 5
    assert [m["passage_id"] for m in docs[0]["more"]] == [2, 4] and docs[1]["more"] == []
    assert per_document_depth(10) == 50 and per_document_depth(20) == 100 and per_document_depth(1000) == 1000


def test_search_page_defaults_to_one_result_per_document(client, built) -> None:  # type: ignore[no-untyped-def]
    project, *_ = built
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    url = _url("workbench:search", project)
    response = client.get(url, {"q": "cells protein", "k": 20})
    outcome = response.context["outcome"]
    documents = [h["document_pk"] for h in outcome.hits]
    assert outcome.per_document and len(documents) == len(set(documents)) == 20
    assert outcome.passages_ranked == 100 and "group" in outcome.result.timings_ms
    total = outcome.result.timings_ms["total"]
    assert total >= sum(v for k, v in outcome.result.timings_ms.items() if k != "total") - 0.01
    html = response.content.decode()
    assert "20 documents (best passage of each, from the top 100 passages)" in html
    assert any(h["more"] for h in outcome.hits) and "More from this document" in html
    passages = client.get(url, {"q": "cells protein", "k": 20, "per_document": "0"}).context["outcome"]
    assert not passages.per_document and len(passages.hits) == 20 and "group" not in passages.result.timings_ms


def test_api_per_document_flag(client, built) -> None:  # type: ignore[no-untyped-def]
    project, lead, *_ = built
    key = projects.api_token_create(user=lead, name="ci")
    url = reverse("api:search", kwargs={"slug": project.slug})
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    plain = client.get(url, {"q": "cells protein", "k": 20}, **auth).json()
    assert plain["per_document"] is False and plain["results"][0]["more"] is None  # compatible default
    grouped = client.post(
        url, json.dumps({"q": "cells protein", "k": 20, "per_document": True}), content_type="application/json", **auth
    ).json()
    docs = [r["document_id"] for r in grouped["results"]]
    assert grouped["per_document"] is True and grouped["passages_ranked"] == 100 and len(docs) == len(set(docs)) == 20
    assert "group" in grouped["timings_ms"] and any(r["more"] for r in grouped["results"])


# --- evaluation page ------------------------------------------------------------------------------------------------


def test_evaluation_page_says_what_delta_compares_and_hides_pairs_from_annotators(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD, ann=Role.ANNOTATOR)
    run = make_finished_eval(project)
    client.force_login(project.memberships.get(role=Role.ML_LEAD).user)
    url = reverse("evaluation:detail", kwargs={"slug": project.slug, "pk": run.pk})
    html = client.get(url).content.decode()
    assert 'data-testid="delta-meaning"' in html and "Δ = #2" in html and "(the baseline)" in html
    assert "Δ #2 − #1" in html and "unjudged (query, document) pairs" in html
    response = client.get(url, {"qq": "second", "order": "-delta"})
    assert [r["text"] for r in response.context["query_page"].object_list] == ["second query"]
    client.force_login(project.memberships.get(role=Role.ANNOTATOR).user)
    html = client.get(url).content.decode()
    assert "unjudged (query, document) pairs" not in html
    query = project.queries.get(text="second query")
    drill = client.get(reverse("evaluation:query", kwargs={"slug": project.slug, "pk": run.pk, "query_pk": query.pk}))
    assert "download these pairs" not in drill.content.decode()


def test_evaluation_query_rows_paginate(client) -> None:  # type: ignore[no-untyped-def]
    project = make_project(lead=Role.ML_LEAD)
    run = make_finished_eval(project)
    client.force_login(project.memberships.get().user)
    url = reverse("evaluation:detail", kwargs={"slug": project.slug, "pk": run.pk})
    page = client.get(url).context["query_page"]
    assert page.paginator.per_page == 25 and page.paginator.count == 2


def test_a_finished_job_page_offers_the_next_step(
    client, scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = make_indexed_project(
        scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks
    )
    job = Job.objects.get(project=project, kind="index_build")
    client.force_login(lead)
    html = client.get(_url("workbench:job", project, pk=job.pk)).content.decode()
    assert _url("workbench:index", project, pk=index.pk) in html  # what it produced
    assert "Next step: save and serve a configuration" in html and _url("workbench:configurations", project) in html


def test_index_builds_store_answer_sentences_unless_unticked(client, built, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    project, lead, corpus, encoder, index = built
    client.force_login(lead)
    html = client.get(_url("workbench:indexes", project)).content.decode()
    assert re.search(r'<input type="checkbox" name="answer_sentences"[^>]*checked', html)
    row = dict(selectors.index_manifest_fields(index, show_paths=False))["Answer sentences"]
    assert row.startswith(f"{index.manifest['sentence_count']:,} citable sentences embedded")
    assert "embedded per answer" not in client.get(_url("workbench:index", project, pk=index.pk)).content.decode()
    # An unticked box is absent from the POST: the build skips the sentences and the index page says what that costs.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _url("workbench:indexes", project), {"corpus": corpus.pk, "encoder": encoder.pk, "index_type": "flat"}
        )
    job = Job.objects.filter(project=project, kind="index_build").latest("pk")
    assert response.status_code == 302 and job.params["answer_sentences"] is False, response.content[:500]
    plain = project.index_versions.get(job=job)
    assert plain.manifest["sentence_count"] is None
    assert "embed their passages" in client.get(_url("workbench:index", project, pk=plain.pk)).content.decode()
