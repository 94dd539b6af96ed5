"""``/api/p/<slug>/search``: GET with query parameters or POST with a JSON body, the same schema for both."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Body, Query, Router

from workbench.api.auth import project_auth, project_of
from workbench.api.schemas import ErrorOut, SearchIn, SearchOut
from workbench.roles import Capability
from workbench.services import search as search_service

router = Router(tags=["search"])

RESPONSES = {200: SearchOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


def search_request_data(params: SearchIn) -> dict[str, Any]:
    """The validated request as the plain dict the search service parses (dates as ISO text, absent fields left out)."""
    data = params.model_dump(exclude_none=True)
    for name in ("date_from", "date_to"):
        if name in data:
            data[name] = data[name].isoformat()
    return data


def search_response(outcome: search_service.SearchOutcome, params: dict[str, Any]) -> SearchOut:
    """The one place that turns what the service returned into the API's answer."""
    result = outcome.result
    configuration = outcome.configuration
    return SearchOut(
        query=result.query,
        configuration={
            "id": configuration.pk,
            "name": configuration.name or None,
            "served": outcome.served,
            "description": configuration.describe(),
        },
        index={"id": outcome.index.pk, "name": str(outcome.index)},
        mode=result.mode,
        reranker=configuration.reranker.name if configuration.reranker_id else None,
        timings_ms=result.timings_ms,
        per_document=outcome.per_document,
        passages_ranked=outcome.passages_ranked,
        rerank_depth=outcome.rerank_depth,
        backends=outcome.backends or {},
        results=[{k: v for k, v in hit.items() if k != "document_pk"} for hit in outcome.hits],
    )


def _search(request: HttpRequest, params: SearchIn) -> SearchOut:
    project = project_of(request)
    # The caller keeps its release arm across requests (a canary is sticky per user).
    caller = f"user:{request.auth.pk}" if getattr(request.auth, "pk", None) else ""
    parsed = search_service.search_params_parse(project, search_request_data(params), caller=caller)
    outcome = search_service.search_run(project=project, user=request.auth, via="api", **parsed)
    return search_response(outcome, parsed)


@router.get(
    "/p/{slug:slug}/search",
    response=RESPONSES,
    auth=project_auth(Capability.SEARCH),
    url_name="search",
    operation_id="search_get",
    summary="Search the project (query parameters)",
)
def search_get(request: HttpRequest, slug: str, params: Query[SearchIn]) -> SearchOut:
    return _search(request, params)


@router.post(
    "/p/{slug:slug}/search",
    response=RESPONSES,
    auth=project_auth(Capability.SEARCH),
    url_name="search",
    operation_id="search_post",
    summary="Search the project (JSON body)",
)
def search_post(request: HttpRequest, slug: str, params: Body[SearchIn]) -> SearchOut:
    return _search(request, params)
