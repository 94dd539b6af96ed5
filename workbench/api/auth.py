"""Who is calling, and may they use this project: token or session authentication, then membership and role.

Project endpoints take ``auth=project_auth(capability)``. The check runs before ninja parses the request, so an
outsider gets 404 and a member without the role 403 whatever they sent, as on the pages.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja.errors import AuthenticationError, HttpError
from ninja.security.base import AuthBase
from ninja.utils import check_csrf

from workbench.access import resolve_project
from workbench.errors import NotFoundError
from workbench.models import ApiToken, Project
from workbench.roles import Capability

AUTH_REQUIRED = "authentication required: send 'Authorization: Token <key>'"


class InvalidToken(AuthenticationError):
    def __init__(self) -> None:
        super().__init__(message="invalid API token")


class _ProjectAuth(AuthBase):
    """Authenticate a user, then (when a capability is given) resolve the URL's project for them."""

    def __init__(self, capability: Capability | None = None) -> None:
        self.capability = capability
        super().__init__()

    def user(self, request: HttpRequest) -> Any | None:
        raise NotImplementedError

    def __call__(self, request: HttpRequest) -> Any | None:
        user = self.user(request)
        if user is None:
            return None
        if self.capability is not None:
            slug = request.resolver_match.kwargs["slug"] if request.resolver_match else ""
            try:
                request.project, request.role = resolve_project(user, slug, self.capability)  # type: ignore[attr-defined]
            except Http404:
                raise NotFoundError("no such project") from None
            except PermissionDenied as exc:
                raise HttpError(403, str(exc) or "forbidden") from None
        return user


class TokenAuth(_ProjectAuth):
    """``Authorization: Token <key>`` or ``Bearer <key>``; only the key's sha256 is stored. A bad token is a 401
    (no falling back to the session: the caller meant the token)."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_description = "An API token (create one under API tokens): `Authorization: Token <key>` or `Bearer <key>`."

    def user(self, request: HttpRequest) -> Any | None:
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in {"token", "bearer"} or not key.strip():
            raise InvalidToken
        digest = hashlib.sha256(key.strip().encode()).hexdigest()
        token = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
        if token is None or not token.user.is_active:
            raise InvalidToken
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user


class SessionAuth(_ProjectAuth):
    """The browser's Django session. Unsafe methods need the CSRF token, as every form does (``X-CSRFToken``)."""

    openapi_type = "apiKey"
    openapi_in = "cookie"
    openapi_name = settings.SESSION_COOKIE_NAME
    openapi_description = "The Django session of a signed-in user; POST needs the `X-CSRFToken` header."

    def user(self, request: HttpRequest) -> Any | None:
        if not request.user.is_authenticated:
            return None
        # check_csrf passes safe methods (GET, HEAD, OPTIONS) through.
        if check_csrf(request) is not None:
            raise HttpError(403, "CSRF token missing or incorrect")
        return request.user


def project_auth(capability: Capability) -> list[_ProjectAuth]:
    return [TokenAuth(capability), SessionAuth(capability)]


def project_of(request: HttpRequest) -> Project:
    """The project the auth step resolved for this request."""
    return request.project  # type: ignore[attr-defined]
