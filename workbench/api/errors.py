"""Every API error is JSON ``{"error": "..."}`` (plus ``"fields"`` for invalid requests), with the status a client of
an HTTP API expects: 400 bad input, 401 not authenticated, 403 role or CSRF, 404 no such project or object."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from workbench.api.auth import AUTH_REQUIRED, InvalidToken
from workbench.errors import NotFoundError, WorkbenchError

if TYPE_CHECKING:
    from ninja import NinjaAPI

MAX_BODY_BYTES = 1_000_000
_SOURCES = {"query", "body", "path", "form", "header", "cookie"}


class BodyParser(Parser):
    """JSON (or form-encoded) request bodies, at most ``MAX_BODY_BYTES``; a JSON body must be an object."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
            raise WorkbenchError(f"request body over {MAX_BODY_BYTES:,} bytes")
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return request.POST.dict()
        try:
            data = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WorkbenchError(f"malformed JSON body: {getattr(exc, 'msg', exc)}") from None
        if not isinstance(data, dict):
            raise WorkbenchError("the JSON body must be an object")
        return data


def error_body(message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"error": message, **({"fields": fields} if fields else {})}


def field_errors(errors: list[dict[str, Any]]) -> dict[str, str]:
    """pydantic's errors as ``{"k": "Input should be a valid integer"}``: the location minus where it came from
    (query, body) and the view's parameter name, dotted for nested fields; the first message per field."""
    out: dict[str, str] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in _SOURCES:
            loc = loc[1:]
        if len(loc) > 1 and loc[0] == "params":  # the view argument's name, not a field of the request
            loc = loc[1:]
        out.setdefault(".".join(loc) or "body", str(error.get("msg", "invalid")).removeprefix("Value error, "))
    return out


def install(api: NinjaAPI) -> None:
    def respond(request: HttpRequest, status: int, message: str, fields: dict[str, str] | None = None) -> HttpResponse:
        return api.create_response(request, error_body(message, fields), status=status)

    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return respond(request, 400, "invalid request", field_errors(exc.errors))

    def on_authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        message = exc.message if isinstance(exc, InvalidToken) else AUTH_REQUIRED
        response = respond(request, 401, message)
        response["WWW-Authenticate"] = 'Token realm="api", Bearer realm="api"'
        return response

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # ninja wraps a failing body parser in "Cannot parse request body": say what was wrong with it.
        cause = exc.__cause__
        if isinstance(cause, WorkbenchError):
            return respond(request, 400, str(cause))
        if isinstance(cause, RequestDataTooBig):
            return respond(request, 400, f"request body over {MAX_BODY_BYTES:,} bytes")
        return respond(request, exc.status_code, exc.message)

    def on_not_found(request: HttpRequest, exc: NotFoundError) -> HttpResponse:
        return respond(request, 404, str(exc))

    def on_workbench_error(request: HttpRequest, exc: WorkbenchError) -> HttpResponse:
        return respond(request, 400, str(exc))

    def on_http404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, "not found")

    def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return respond(request, 403, str(exc) or "forbidden")

    # ninja picks the handler of the nearest class in the exception's MRO, so the order here does not matter.
    api.add_exception_handler(ValidationError, on_validation)
    api.add_exception_handler(AuthenticationError, on_authentication)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(NotFoundError, on_not_found)
    api.add_exception_handler(WorkbenchError, on_workbench_error)
    api.add_exception_handler(Http404, on_http404)
    api.add_exception_handler(PermissionDenied, on_permission_denied)
