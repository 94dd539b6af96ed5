"""The JSON API (django-ninja), mounted at ``/api/``: project-scoped endpoints with token or session authentication,
declared request/response schemas, the OpenAPI document at ``/api/openapi.json`` and Swagger UI at ``/api/docs``.

Errors are JSON ``{"error": "..."}`` (``workbench.api.errors``). Nothing is changed by a request that fails.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger

from workbench.api import catalog, errors, jobs, search


class LocalSwagger(Swagger):
    """Swagger UI from the vendored assets under ``static/vendor/swagger-ui`` (never a CDN), for signed-in users:
    the page is a tool for people who use the API, and "Try it out" runs with their session."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        settings = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        return render(request, "api/docs.html", {"api": api, "swagger_settings": settings})


api = NinjaAPI(
    title="Retrieval workbench API",
    version="1",
    description=(
        "Project-scoped search, indexes, models and jobs. Authenticate with `Authorization: Token <key>` (or "
        "`Bearer <key>`), or with the browser session (POST then needs `X-CSRFToken`). Errors are "
        '`{"error": "..."}`, with `"fields"` (field -> message) when the request is invalid.'
    ),
    urls_namespace="api",
    docs=LocalSwagger(),
    parser=errors.BodyParser(),
)
errors.install(api)
for module in (search, catalog, jobs):
    api.add_router("", module.router)
