"""Project-scoped access: outsiders get 404 (no id probing), members without the role get 403."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse

from workbench.models import Membership, Project, Role
from workbench.roles import Capability, role_allows


def project_role(user: Any, project: Project) -> str | None:
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def resolve_project(user: Any, slug: str, capability: Capability) -> tuple[Project, str]:
    projects = Project.objects.filter(slug=slug)
    if user.is_authenticated and not user.is_superuser:
        # The project and the user's role in one query: this runs on every project request (each judgment saved).
        mine = Membership.objects.filter(project=OuterRef("pk"), user_id=user.pk).values("role")[:1]
        project = projects.annotate(member_role=Subquery(mine)).first()
        role = project.member_role if project else None  # type: ignore[attr-defined]
    else:
        project = projects.first()
        role = project_role(user, project) if project else None
    if project is None or role is None:
        raise Http404("No such project")
    if not role_allows(role, capability):
        raise PermissionDenied(f"Your role ({Role(role).label}) cannot do this here.")
    return project, role


def project_view(capability: Capability) -> Callable:
    """Decorate ``view(request, project, ...)``: login, membership and role checked; ``request.role`` set."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            project, role = resolve_project(request.user, slug, capability)
            request.project, request.role = project, role  # type: ignore[attr-defined]
            return view(request, project, *args, **kwargs)

        wrapped.capability = capability  # type: ignore[attr-defined]
        return wrapped

    return decorate
