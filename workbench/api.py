"""JSON API, project-scoped, with token (``Authorization: Token <key>``) or session authentication.

Errors are JSON ``{"error": "..."}``: 400 bad input, 401 not authenticated, 403 role, 404 not a member or no such
object. Nothing is changed by a request that fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from workbench.access import resolve_project
from workbench.errors import NotFoundError, WorkbenchError
from workbench.models import ApiToken, IndexVersion, ModelVersion, Project
from workbench.roles import Capability
from workbench.services import search as search_service

MAX_BODY_BYTES = 1_000_000


def _token_user(request: HttpRequest) -> Any | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() not in {"token", "bearer"} or not key.strip():
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hashlib.sha256(key.strip().encode()).hexdigest())
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def api_view(capability: Capability) -> Callable:
    def decorate(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> JsonResponse:
            user = _token_user(request)
            if user is None:
                if request.headers.get("Authorization"):
                    return _error("invalid API token", 401)
                if not request.user.is_authenticated:
                    return _error("authentication required: send 'Authorization: Token <key>'", 401)
                user = request.user
                # Session-authenticated writes still need the CSRF token, as every form does.
                if request.method == "POST":
                    rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
                    if rejected is not None:
                        return _error("CSRF token missing or incorrect", 403)
            try:
                project, _ = resolve_project(user, slug, capability)
            except Http404:
                return _error("no such project", 404)
            except PermissionDenied as exc:
                return _error(str(exc) or "forbidden", 403)
            request.api_user = user  # type: ignore[attr-defined]
            try:
                return view(request, project, *args, **kwargs)
            except NotFoundError as exc:
                return _error(str(exc), 404)
            except WorkbenchError as exc:
                return _error(str(exc), 400)

        return wrapped

    return decorate


def _params(request: HttpRequest) -> dict[str, Any]:
    if request.method == "POST":
        if len(request.body) > MAX_BODY_BYTES:
            raise WorkbenchError(f"request body over {MAX_BODY_BYTES:,} bytes")
        if request.content_type == "application/json":
            try:
                data = json.loads(request.body or b"{}")
            except json.JSONDecodeError as exc:
                raise WorkbenchError(f"malformed JSON body: {exc.msg}") from None
            if not isinstance(data, dict):
                raise WorkbenchError("the JSON body must be an object")
            return data
        return request.POST.dict()
    return request.GET.dict()


@api_view(Capability.SEARCH)
def search(request: HttpRequest, project: Project) -> JsonResponse:
    if request.method not in {"GET", "POST"}:
        return _error("use GET or POST", 405)
    params = search_service.search_params_parse(project, _params(request))
    outcome = search_service.search_run(project=project, user=request.api_user, via="api", **params)  # type: ignore[attr-defined]
    result = outcome.result
    return JsonResponse(
        {
            "query": result.query,
            "configuration": {
                "id": outcome.configuration.pk,
                "name": outcome.configuration.name or None,
                "served": outcome.served,
            },
            "index": {"id": outcome.index.pk, "name": str(outcome.index)},
            "mode": result.mode,
            "reranker": outcome.configuration.reranker.name if outcome.configuration.reranker_id else None,
            "timings_ms": result.timings_ms,
            "results": [{k: v for k, v in hit.items() if k != "document_pk"} for hit in outcome.hits],
        }
    )


@api_view(Capability.VIEW)
def indexes(request: HttpRequest, project: Project) -> JsonResponse:
    rows = IndexVersion.objects.filter(project=project).select_related("corpus", "encoder")
    return JsonResponse(
        {
            "indexes": [
                {
                    "id": i.pk,
                    "name": str(i),
                    "corpus": i.corpus.name,
                    "corpus_version": i.corpus_version,
                    "stale": i.is_stale,
                    "encoder": i.encoder.name,
                    "index_type": i.index_type,
                    "params": i.params,
                    "passages": i.passage_count,
                    "build_seconds": i.build_seconds,
                    "created_at": i.created_at.isoformat(),
                }
                for i in rows
            ]
        }
    )


@api_view(Capability.VIEW)
def models(request: HttpRequest, project: Project) -> JsonResponse:
    rows = ModelVersion.objects.filter(project=project)
    return JsonResponse(
        {
            "models": [
                {
                    "id": m.pk,
                    "name": m.name,
                    "kind": m.kind,
                    "source": m.source,
                    "dimension": m.dimension,
                    "usable_for_search": m.usable_for_search,
                    "created_at": m.created_at.isoformat(),
                }
                for m in rows
            ]
        }
    )
