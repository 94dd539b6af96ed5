"""The JSON API as clients of HTTP APIs expect it: OpenAPI document, docs page, auth, error format, jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, make_indexed_project, make_project, make_user
from workbench.api.schemas import JobStatus, SearchMode
from workbench.models import ApiToken, Job, Role, SearchLog
from workbench.retrieval.search import SEARCH_MODES
from workbench.services import projects

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/p/{slug}/search": {"get", "post"},
    "/api/p/{slug}/indexes": {"get"},
    "/api/p/{slug}/models": {"get"},
    "/api/p/{slug}/jobs": {"get"},
    "/api/p/{slug}/jobs/{pk}": {"get"},
}


@pytest.fixture
def member():  # type: ignore[no-untyped-def]
    """A project (no index) with a lead and an API token of theirs."""
    project = make_project(lead=Role.ML_LEAD)
    lead = project.memberships.get(role=Role.ML_LEAD).user
    return project, lead, projects.api_token_create(user=lead, name="ci")


def test_openapi_document_lists_every_path_with_schemas(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/api/openapi.json")  # public: it describes the API, not any project's data
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    doc = json.loads(response.content)
    assert doc["openapi"].startswith("3.") and {p: set(ops) for p, ops in doc["paths"].items()} == PATHS
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            ok = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert "$ref" in ok, (path, method)
            for status in ("401", "403", "404"):
                assert op["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
            assert {next(iter(s)) for s in op["security"]} == {"TokenAuth", "SessionAuth"}, (path, method)
    operation_ids = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    assert operation_ids == {"search_get", "search_post", "indexes_list", "models_list", "jobs_list", "job_get"}
    search = doc["paths"]["/api/p/{slug}/search"]
    assert search["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/SearchIn")
    query_params = {p["name"] for p in search["get"]["parameters"] if p["in"] == "query"}
    assert query_params >= {"q", "index", "configuration", "mode", "k", "alpha", "rerank", "rerank_top_n", "tag"}
    schemas = doc["components"]["schemas"]
    assert set(schemas["ErrorOut"]["properties"]) == {"error", "fields"}
    assert schemas["SearchIn"]["properties"]["k"]["maximum"] == 1000
    assert {"rank", "passage_id", "document_id", "scores", "judgment"} <= set(schemas["HitOut"]["properties"])
    assert {"status", "progress", "message", "result", "created_at", "finished_at"} <= set(
        schemas["JobDetailOut"]["properties"]
    )


def test_schema_choices_match_the_code() -> None:
    assert get_args(SearchMode) == SEARCH_MODES
    assert list(get_args(JobStatus)) == Job.Status.values


def test_docs_page_needs_login_and_loads_vendored_swagger_ui(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/api/docs")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(make_user())  # any signed-in user: the page shows only the API's shape
    html = client.get("/api/docs").content.decode()
    assert "vendor/swagger-ui/swagger-ui-bundle.js" in html and "vendor/swagger-ui/swagger-ui.css" in html
    assert "http://" not in html and "https://" not in html  # no CDN
    assert '"url": "/api/openapi.json"' in html
    static = Path(settings.BASE_DIR) / "static/vendor/swagger-ui"
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"} <= {p.name for p in static.iterdir()}


def test_token_and_bearer_auth_and_401s(client, member) -> None:  # type: ignore[no-untyped-def]
    project, _, key = member
    url = reverse("api:indexes", kwargs={"slug": project.slug})
    for scheme in ("Token", "Bearer", "token"):
        assert client.get(url, HTTP_AUTHORIZATION=f"{scheme} {key}").json() == {"indexes": []}
    assert ApiToken.objects.get().last_used_at is not None
    none = client.get(url)
    assert none.status_code == 401 and "Authorization: Token" in none.json()["error"]
    assert "Bearer" in none["WWW-Authenticate"]
    for header in ("Token wrong", "Basic dXNlcjpwdw==", "Token "):
        bad = client.get(url, HTTP_AUTHORIZATION=header)
        assert bad.status_code == 401 and bad.json() == {"error": "invalid API token"}, header
    # A bad token is refused even with a valid session: the caller meant the token.
    client.force_login(project.memberships.get().user)
    assert client.get(url, HTTP_AUTHORIZATION="Token wrong").status_code == 401
    assert client.get(url).status_code == 200


def test_role_and_membership_are_checked_before_the_request_is_parsed(client, member) -> None:  # type: ignore[no-untyped-def]
    project, _, _ = member
    url = reverse("api:search", kwargs={"slug": project.slug})
    outsider = projects.api_token_create(user=make_user(), name="x")
    response = client.get(url, {"k": "not a number"}, HTTP_AUTHORIZATION=f"Token {outsider}")
    assert response.status_code == 404 and response.json() == {"error": "no such project"}
    gone = client.get(reverse("api:search", kwargs={"slug": "no-such"}), HTTP_AUTHORIZATION=f"Token {outsider}")
    assert gone.status_code == 404


def test_bodies_that_are_not_a_json_object_are_400(client, member) -> None:  # type: ignore[no-untyped-def]
    project, _, key = member
    url = reverse("api:search", kwargs={"slug": project.slug})

    def post(body: str | bytes) -> tuple[int, str]:
        response = client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
        return response.status_code, response.json()["error"]

    assert post(json.dumps({"q": "x" * 1_100_000})) == (400, "request body over 1,000,000 bytes")
    status, message = post('{"q": "cells",')
    assert status == 400 and message.startswith("malformed JSON body")
    assert post("[1, 2]") == (400, "the JSON body must be an object")
    assert post(b"\xff\xfe")[0] == 400
    missing = client.post(url, "{}", content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert missing.status_code == 400 and missing.json()["fields"] == {"q": "Field required"}
    query = client.get(url, {"q": "cells", "k": "ten", "mode": "bm25"}, HTTP_AUTHORIZATION=f"Token {key}")
    assert query.status_code == 400 and query.json()["fields"] == {
        "k": "Input should be a valid integer, unable to parse string as an integer"
    }


@pytest.fixture
def built(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    return make_indexed_project(scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks)


def test_session_search_post_needs_csrf_and_get_and_post_agree(built) -> None:  # type: ignore[no-untyped-def]
    project, lead, _, _, index = built
    client = Client(enforce_csrf_checks=True)
    client.login(username=lead.username, password=PASSWORD)
    url = reverse("api:search", kwargs={"slug": project.slug})
    params = {"q": "cells", "mode": "bm25", "k": 3, "index": index.pk, "filters": {}}
    refused = client.post(url, json.dumps(params), content_type="application/json")
    assert refused.status_code == 403 and refused.json() == {"error": "CSRF token missing or incorrect"}
    assert not SearchLog.objects.exists()
    client.get("/api/docs")  # a page that carries the CSRF token sets its cookie
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    posted = client.post(url, json.dumps(params), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert posted.status_code == 200, posted.content
    got = client.get(url, {**params, "filters": "{}", "index": index.pk})  # GET needs no CSRF token
    assert got.status_code == 200
    strip = lambda body: {**body, "timings_ms": None}  # noqa: E731
    assert strip(got.json()) == strip(posted.json()) and len(posted.json()["results"]) == 3
    assert SearchLog.objects.filter(via="api", user=lead).count() == 2


def test_jobs_list_filters_pages_and_stays_in_the_project(client, member) -> None:  # type: ignore[no-untyped-def]
    project, lead, key = member
    other = make_project(owner_other=Role.ADMIN)
    done = Job.objects.create(
        project=project, kind="build_index", title="Build", status=Job.Status.SUCCEEDED, progress=1.0,
        message="built", result={"index": 7}, created_by=lead,
    )  # fmt: skip
    for n in range(4):
        Job.objects.create(project=project, kind="import_corpus", title=f"Import {n}")
    foreign = Job.objects.create(project=other, kind="build_index", title="Theirs")
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    url = reverse("api:jobs", kwargs={"slug": project.slug})

    body = client.get(url, **auth).json()
    assert body["count"] == 5 and body["offset"] == 0 and foreign.pk not in {j["id"] for j in body["jobs"]}
    assert body["jobs"][0]["title"] == "Import 3"  # newest first
    page = client.get(url, {"kind": "import_corpus", "limit": 2, "offset": 2}, **auth).json()
    assert page["count"] == 4 and [j["title"] for j in page["jobs"]] == ["Import 1", "Import 0"]
    succeeded = client.get(url, {"status": "succeeded"}, **auth).json()["jobs"]
    assert [(j["id"], j["created_by"], j["progress"]) for j in succeeded] == [(done.pk, lead.username, 1.0)]
    bad = client.get(url, {"status": "sleeping", "limit": 0}, **auth)
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"status", "limit"}

    detail = client.get(reverse("api:job", kwargs={"slug": project.slug, "pk": done.pk}), **auth).json()
    assert detail["status"] == "succeeded" and detail["message"] == "built" and detail["result"] == {"index": 7}
    assert detail["created_at"] and detail["started_at"] is None and detail["retry_of"] is None
    # Another project's job through this project's URL: 404, as on the pages (no id probing).
    theirs = client.get(reverse("api:job", kwargs={"slug": project.slug, "pk": foreign.pk}), **auth)
    assert theirs.status_code == 404 and theirs.json() == {"error": f"No job {foreign.pk} in this project."}
    outsider = projects.api_token_create(user=make_user(), name="x")
    refused = client.get(url, HTTP_AUTHORIZATION=f"Token {outsider}")
    assert refused.status_code == 404 and refused.json() == {"error": "no such project"}
